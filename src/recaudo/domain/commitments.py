"""Commitments: what a payer promised, when each payment falls due, and how a payment moves.

Pure rules, no database:

- the **schedule**: a commitment's payments fall due on `first_payment_on` and then every
  1, 2, 3, 6 or 12 months after it (one-off: once). The day of the month is the anchor
  day of `first_payment_on`, clamped to the month's last day when the month is shorter
  (a monthly fee first due on 31 January is due on 28 or 29 February, then on 31 March
  again: the anchor never drifts). An end date is inclusive: a payment due on the end
  date is still due. Each payment belongs to the *period* that starts on the first day
  of its due month (`period_start`); one commitment has at most one payment per period.
- the **payment state machine**, per payment method (`TRANSITIONS`, spelled out below
  and in docs/commitments.md);
- the **mandate reference** and the **end-to-end id** Recaudo gives SEPA direct debits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from recaudo.domain.errors import Conflict, ValidationFailed
from recaudo.domain.months import add_months


class Kind(StrEnum):
    FEE = "fee"
    DONATION = "donation"
    IN_KIND = "in_kind"
    SERVICES = "services"


class Method(StrEnum):
    DIRECT_DEBIT = "direct_debit"
    CARD = "card"
    BIZUM = "bizum"
    PAYPAL = "paypal"
    TRANSFER_RECEIVED = "transfer_received"
    TRANSFER_ISSUED = "transfer_issued"
    CASH = "cash"
    CHEQUE = "cheque"
    IN_KIND = "in_kind"


class Periodicity(StrEnum):
    ONE_OFF = "one_off"
    MONTHLY = "monthly"
    BIMONTHLY = "bimonthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    ANNUAL = "annual"


class Direction(StrEnum):
    INCOME = "income"
    EXPENSE = "expense"


class PaymentStatus(StrEnum):
    NOT_REMITTED = "not_remitted"
    REMITTED = "remitted"
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    TO_RECOVER = "to_recover"
    UNPAID = "unpaid"
    DUPLICATE = "duplicate"
    CARD_REJECTED = "card_rejected"


class MandateStatus(StrEnum):
    ACTIVE = "active"
    REPLACED = "replaced"
    INVALID = "invalid"


class GenerateFor(StrEnum):
    """Which month the monthly job generates: the month it runs in, or the next one."""

    CURRENT = "current"
    NEXT = "next"


class InvalidPaymentTransition(Conflict):
    code = "invalid_payment_transition"


# --------------------------------------------------------------------------- the schedule

MONTHS: dict[Periodicity, int] = {
    Periodicity.MONTHLY: 1,
    Periodicity.BIMONTHLY: 2,
    Periodicity.QUARTERLY: 3,
    Periodicity.SEMIANNUAL: 6,
    Periodicity.ANNUAL: 12,
}


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One payment of a commitment: the period it belongs to and the day it falls due."""

    start: date  # first day of the due month
    due_on: date


def month_start(day: date) -> date:
    return day.replace(day=1)


def due_date(first: date, periodicity: Periodicity, n: int) -> date:
    """The n-th (0-based) due date of a schedule anchored on `first`."""
    if n == 0:
        return first
    if periodicity is Periodicity.ONE_OFF:
        raise ValueError("a one-off commitment has a single payment")
    return add_months(first, MONTHS[periodicity] * n, anchor_day=first.day)


def periods_due(
    first: date,
    ends_on: date | None,
    periodicity: Periodicity | str,
    up_to_month: date,
    *,
    from_month: date | None = None,
) -> list[Period]:
    """Every period of the schedule whose due month is on or before `up_to_month` (any day
    of that month) and whose due date is on or before `ends_on` (inclusive), oldest first.

    `from_month` skips the periods due before that month (a catch-up that already has the
    earlier ones); it never changes which days are due.
    """
    periodicity = Periodicity(periodicity)
    last_month = month_start(up_to_month)
    lower = month_start(from_month) if from_month is not None else None
    out: list[Period] = []
    if periodicity is Periodicity.ONE_OFF:
        candidates = [first]
    else:
        step = MONTHS[periodicity]
        n = 0
        if lower is not None and lower > first:
            # Jump close to `from_month` instead of walking decades of monthly periods.
            months_between = (lower.year - first.year) * 12 + lower.month - first.month
            n = max(0, months_between // step - 1)
        candidates = []
        while True:
            day = due_date(first, periodicity, n)
            if month_start(day) > last_month or (ends_on is not None and day > ends_on):
                break
            candidates.append(day)
            n += 1
    for day in candidates:
        if month_start(day) > last_month or (ends_on is not None and day > ends_on):
            continue
        if lower is not None and month_start(day) < lower:
            continue
        out.append(Period(month_start(day), day))
    return out


def target_month(local_today: date, generate_for: GenerateFor | str) -> date:
    """The last month whose payments exist on `local_today`: this month, or the next."""
    this = month_start(local_today)
    return add_months(this, 1) if GenerateFor(generate_for) is GenerateFor.NEXT else this


def is_active(ends_on: date | None, local_today: date) -> bool:
    """Active while there is no end date or the end date has not passed (it is inclusive)."""
    return ends_on is None or ends_on >= local_today


# --------------------------------------------------------------------------- payment states

S = PaymentStatus

# Methods whose payments go through a remittance (a SEPA file or a card run) and start
# `not_remitted`. Issued transfers are "other methods" (they start `pending`) but a
# transfer remittance (pain.001) takes pending ones and marks them `remitted`.
REMITTED_METHODS = frozenset({Method.DIRECT_DEBIT, Method.CARD})


def initial_status(method: Method | str) -> PaymentStatus:
    return S.NOT_REMITTED if Method(method) in REMITTED_METHODS else S.PENDING


_DIRECT_DEBIT: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # Generated, not in any file yet. Cancelled or found to be a duplicate by hand.
    S.NOT_REMITTED: frozenset({S.REMITTED, S.CANCELLED, S.DUPLICATE}),
    # In a generated file: the remittance is marked sent (paid), the payment is taken out
    # of a file that was not sent (back to not_remitted), or the bank rejects it before
    # settlement (pain.002: unpaid, or to_recover for insufficient funds).
    S.REMITTED: frozenset({S.PAID, S.NOT_REMITTED, S.UNPAID, S.TO_RECOVER, S.CANCELLED}),
    # Paid "waiting for returns": a return file makes it unpaid (or to_recover directly
    # for AM04/MS03); a payment collected twice is a duplicate.
    S.PAID: frozenset({S.UNPAID, S.TO_RECOVER, S.DUPLICATE}),
    # Returned: to be collected again (to_recover), given up (cancelled), or paid by
    # other means (paid).
    S.UNPAID: frozenset({S.TO_RECOVER, S.CANCELLED, S.PAID}),
    # Waiting for a later remittance, which re-remits it; or given up, or paid otherwise.
    S.TO_RECOVER: frozenset({S.REMITTED, S.CANCELLED, S.PAID}),
    S.CANCELLED: frozenset(),
    S.DUPLICATE: frozenset(),
}

_CARD: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # A card remittance charges each payment through the gateway: paid or card_rejected.
    # The remitted step exists for a run in progress.
    S.NOT_REMITTED: frozenset({S.REMITTED, S.PAID, S.CARD_REJECTED, S.CANCELLED, S.DUPLICATE}),
    S.REMITTED: frozenset({S.PAID, S.CARD_REJECTED, S.NOT_REMITTED, S.CANCELLED}),
    # A charge refunded or disputed afterwards.
    S.PAID: frozenset({S.UNPAID, S.TO_RECOVER, S.DUPLICATE}),
    # Declined: retried in a later run (back to not_remitted, or charged again directly).
    S.CARD_REJECTED: frozenset({S.NOT_REMITTED, S.REMITTED, S.PAID, S.CANCELLED, S.TO_RECOVER}),
    S.UNPAID: frozenset({S.TO_RECOVER, S.CANCELLED, S.PAID}),
    S.TO_RECOVER: frozenset({S.NOT_REMITTED, S.REMITTED, S.PAID, S.CANCELLED}),
    S.CANCELLED: frozenset(),
    S.DUPLICATE: frozenset(),
}

_MANUAL: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # Other methods: someone confirms the money arrived (paid), or it never will.
    S.PENDING: frozenset({S.PAID, S.CANCELLED, S.UNPAID, S.DUPLICATE}),
    # A cheque that bounced, a transfer recalled.
    S.PAID: frozenset({S.UNPAID, S.DUPLICATE}),
    S.UNPAID: frozenset({S.PENDING, S.TO_RECOVER, S.PAID, S.CANCELLED}),
    S.TO_RECOVER: frozenset({S.PENDING, S.PAID, S.CANCELLED}),
    S.CANCELLED: frozenset(),
    S.DUPLICATE: frozenset(),
}

# Issued transfers also go out in a transfer remittance (pain.001): pending → remitted
# when the file is generated, remitted → paid when it is marked sent.
_TRANSFER_ISSUED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    **_MANUAL,
    S.PENDING: _MANUAL[S.PENDING] | {S.REMITTED},
    S.REMITTED: frozenset({S.PAID, S.PENDING, S.UNPAID, S.CANCELLED}),
    S.TO_RECOVER: _MANUAL[S.TO_RECOVER] | {S.REMITTED},
}

TRANSITIONS: dict[Method, dict[PaymentStatus, frozenset[PaymentStatus]]] = {
    Method.DIRECT_DEBIT: _DIRECT_DEBIT,
    Method.CARD: _CARD,
    Method.TRANSFER_ISSUED: _TRANSFER_ISSUED,
    **{
        m: _MANUAL
        for m in Method
        if m not in (Method.DIRECT_DEBIT, Method.CARD, Method.TRANSFER_ISSUED)
    },
}

# Payments an edit of the commitment may still rewrite: nothing was sent or paid yet.
OPEN_STATUSES = frozenset({S.NOT_REMITTED, S.PENDING})


def allowed_transitions(method: Method | str, current: PaymentStatus | str) -> frozenset[S]:
    return TRANSITIONS[Method(method)].get(PaymentStatus(current), frozenset())


def check_transition(
    method: Method | str, current: PaymentStatus | str, new: PaymentStatus | str
) -> PaymentStatus:
    """`new` as a status when a `method` payment may go from `current` to it; otherwise
    `InvalidPaymentTransition` naming the statuses it may go to."""
    try:
        target = PaymentStatus(new)
    except ValueError:
        known = ", ".join(s.value for s in PaymentStatus)
        raise ValidationFailed(
            f"unknown payment status {new!r} (one of {known})", field="status"
        ) from None
    method = Method(method)
    current = PaymentStatus(current)
    allowed = allowed_transitions(method, current)
    if target not in allowed:
        options = ", ".join(sorted(s.value for s in allowed)) or "none: it is final"
        raise InvalidPaymentTransition(
            f"a {method.value} payment cannot go from {current.value} to {target.value} "
            f"(from {current.value} it may go to: {options})",
            current=current.value,
            requested=target.value,
            allowed=sorted(s.value for s in allowed),
        )
    return target


# --------------------------------------------------------------------------- identifiers

_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")


def mandate_reference(company_slug: str, commitment_id: int, n: int) -> str:
    """The unique mandate reference (UMR) of a commitment's n-th mandate (n from 1).

    `ACME-00000042-01`: the company's slug (letters and digits, up to 10), the commitment's
    id and the mandate's number within it. Unique per company because commitment ids are;
    stable (nothing in it changes later); within the SEPA character set and 35 characters.
    """
    if commitment_id < 1 or n < 1:
        raise ValueError("commitment id and mandate number start at 1")
    prefix = _NOT_ALNUM.sub("", company_slug.upper())[:10] or "RCD"
    reference = f"{prefix}-{commitment_id:08d}-{n:02d}"
    if len(reference) > 35:
        raise ValueError(f"mandate reference {reference!r} is longer than 35 characters")
    return reference


def end_to_end_id(commitment_id: int, period_start: date) -> str:
    """The payment's SEPA end-to-end id: unique because (commitment, period) is."""
    return f"RCD{commitment_id:010d}{period_start:%Y%m%d}"
