"""Commitment rules: schedules across month ends, leap years and end dates; payment states;
mandate references."""

from __future__ import annotations

import re
from datetime import date

import pytest

from recaudo.domain.commitments import (
    TRANSITIONS,
    GenerateFor,
    InvalidPaymentTransition,
    Method,
    PaymentStatus,
    Period,
    Periodicity,
    add_months,
    check_transition,
    end_to_end_id,
    initial_status,
    is_active,
    mandate_reference,
    periods_due,
    target_month,
)
from recaudo.domain.errors import Conflict, ValidationFailed

S = PaymentStatus


def dues(first: date, ends: date | None, periodicity: str, up_to: date) -> list[date]:
    return [p.due_on for p in periods_due(first, ends, periodicity, up_to)]


# --------------------------------------------------------------------------- schedules


def test_monthly_from_the_31st_clamps_and_keeps_the_anchor() -> None:
    assert dues(date(2027, 1, 31), None, "monthly", date(2027, 6, 1)) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
        date(2027, 6, 30),
    ]


def test_monthly_in_a_leap_year_falls_on_the_29th() -> None:
    assert dues(date(2028, 1, 30), None, "monthly", date(2028, 3, 1)) == [
        date(2028, 1, 30),
        date(2028, 2, 29),
        date(2028, 3, 30),
    ]


def test_period_start_is_the_first_day_of_the_due_month() -> None:
    assert periods_due(date(2027, 1, 31), None, "monthly", date(2027, 2, 1)) == [
        Period(date(2027, 1, 1), date(2027, 1, 31)),
        Period(date(2027, 2, 1), date(2027, 2, 28)),
    ]


def test_bimonthly_quarterly_semiannual_annual_steps() -> None:
    up_to = date(2028, 12, 1)
    assert dues(date(2027, 12, 31), None, "bimonthly", date(2028, 8, 1)) == [
        date(2027, 12, 31),
        date(2028, 2, 29),
        date(2028, 4, 30),
        date(2028, 6, 30),
        date(2028, 8, 31),
    ]
    assert dues(date(2027, 11, 30), None, "quarterly", up_to) == [
        date(2027, 11, 30),
        date(2028, 2, 29),
        date(2028, 5, 30),
        date(2028, 8, 30),
        date(2028, 11, 30),
    ]
    assert dues(date(2027, 8, 31), None, "semiannual", up_to) == [
        date(2027, 8, 31),
        date(2028, 2, 29),
        date(2028, 8, 31),
    ]
    assert dues(date(2028, 2, 29), None, "annual", date(2033, 2, 1)) == [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
        date(2033, 2, 28),
    ]


def test_one_off_has_a_single_payment() -> None:
    assert dues(date(2027, 3, 15), None, "one_off", date(2030, 1, 1)) == [date(2027, 3, 15)]
    assert dues(date(2027, 3, 15), None, "one_off", date(2027, 2, 1)) == []


def test_end_date_is_inclusive() -> None:
    assert dues(date(2027, 1, 15), date(2027, 3, 15), "monthly", date(2027, 12, 1)) == [
        date(2027, 1, 15),
        date(2027, 2, 15),
        date(2027, 3, 15),
    ]
    assert dues(date(2027, 1, 15), date(2027, 3, 14), "monthly", date(2027, 12, 1)) == [
        date(2027, 1, 15),
        date(2027, 2, 15),
    ]
    # The clamped day counts: due 28 Feb, end 28 Feb.
    assert dues(date(2027, 1, 31), date(2027, 2, 28), "monthly", date(2027, 12, 1)) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
    ]
    # An end before the first payment leaves nothing.
    assert dues(date(2027, 1, 15), date(2027, 1, 14), "one_off", date(2027, 12, 1)) == []


def test_up_to_month_is_any_day_of_the_month_and_future_months_are_not_due() -> None:
    assert dues(date(2027, 1, 31), None, "monthly", date(2027, 2, 3)) == dues(
        date(2027, 1, 31), None, "monthly", date(2027, 2, 28)
    )
    assert dues(date(2027, 5, 1), None, "monthly", date(2027, 4, 30)) == []


def test_from_month_skips_earlier_periods_without_moving_the_days() -> None:
    full = periods_due(date(2020, 1, 31), None, "monthly", date(2027, 6, 1))
    tail = periods_due(
        date(2020, 1, 31), None, "monthly", date(2027, 6, 1), from_month=date(2027, 3, 1)
    )
    assert tail == [p for p in full if p.start >= date(2027, 3, 1)]
    assert [p.due_on for p in tail] == [
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
        date(2027, 6, 30),
    ]
    quarterly = periods_due(
        date(2026, 2, 28), None, "quarterly", date(2027, 12, 1), from_month=date(2027, 1, 1)
    )
    assert [p.due_on for p in quarterly] == [
        date(2027, 2, 28),
        date(2027, 5, 28),
        date(2027, 8, 28),
        date(2027, 11, 28),
    ]


def test_every_periodicity_never_gives_two_payments_in_one_month() -> None:
    for periodicity in Periodicity:
        periods = periods_due(date(2024, 1, 31), date(2030, 12, 31), periodicity, date(2031, 1, 1))
        starts = [p.start for p in periods]
        assert len(starts) == len(set(starts))
        assert all(p.start == p.due_on.replace(day=1) for p in periods)


def test_add_months_and_target_month() -> None:
    assert add_months(date(2027, 12, 15), 1) == date(2028, 1, 15)
    assert add_months(date(2027, 3, 31), -1) == date(2027, 2, 28)
    assert add_months(date(2027, 2, 28), 1, anchor_day=31) == date(2027, 3, 31)
    assert target_month(date(2027, 12, 20), GenerateFor.CURRENT) == date(2027, 12, 1)
    assert target_month(date(2027, 12, 20), "next") == date(2028, 1, 1)


def test_active_while_the_end_date_has_not_passed() -> None:
    today = date(2027, 5, 10)
    assert is_active(None, today)
    assert is_active(date(2027, 5, 10), today)
    assert not is_active(date(2027, 5, 9), today)


# --------------------------------------------------------------------------- payment states


def test_initial_status_by_method() -> None:
    assert initial_status("direct_debit") is S.NOT_REMITTED
    assert initial_status(Method.CARD) is S.NOT_REMITTED
    for method in ("bizum", "paypal", "transfer_received", "transfer_issued", "cash"):
        assert initial_status(method) is S.PENDING
    assert initial_status("cheque") is S.PENDING
    assert initial_status("in_kind") is S.PENDING


def test_the_happy_paths() -> None:
    assert check_transition("direct_debit", "not_remitted", "remitted") is S.REMITTED
    assert check_transition("direct_debit", "remitted", "paid") is S.PAID
    assert check_transition("direct_debit", "paid", "unpaid") is S.UNPAID
    assert check_transition("direct_debit", "unpaid", "to_recover") is S.TO_RECOVER
    assert check_transition("direct_debit", "to_recover", "remitted") is S.REMITTED
    assert check_transition("card", "not_remitted", "card_rejected") is S.CARD_REJECTED
    assert check_transition("card", "card_rejected", "not_remitted") is S.NOT_REMITTED
    assert check_transition("card", "card_rejected", "paid") is S.PAID
    assert check_transition("cash", "pending", "paid") is S.PAID
    assert check_transition("transfer_issued", "pending", "remitted") is S.REMITTED
    assert check_transition("transfer_issued", "remitted", "paid") is S.PAID


# Every (method, from, to) the table refuses: each must raise.
REFUSED = [
    (method, current, target)
    for method, table in TRANSITIONS.items()
    for current in PaymentStatus
    for target in PaymentStatus
    if target not in table.get(current, frozenset())
]


def test_the_refused_list_is_what_the_tables_leave_out() -> None:
    # 9 methods x 81 pairs, minus the allowed ones.
    allowed = sum(len(targets) for table in TRANSITIONS.values() for targets in table.values())
    assert len(REFUSED) == 9 * 81 - allowed
    assert ("direct_debit", S.NOT_REMITTED, S.PAID) in REFUSED
    assert ("cash", S.PENDING, S.REMITTED) in REFUSED
    assert ("direct_debit", S.PAID, S.CARD_REJECTED) in REFUSED


@pytest.mark.parametrize(("method", "current", "target"), REFUSED)
def test_every_invalid_transition_is_refused(
    method: Method, current: PaymentStatus, target: PaymentStatus
) -> None:
    with pytest.raises(InvalidPaymentTransition) as caught:
        check_transition(method, current, target)
    assert isinstance(caught.value, Conflict)
    assert caught.value.code == "invalid_payment_transition"
    assert f"from {current.value} to {target.value}" in caught.value.message


def test_refusal_message_lists_the_allowed_targets() -> None:
    with pytest.raises(InvalidPaymentTransition) as caught:
        check_transition("direct_debit", "not_remitted", "paid")
    assert caught.value.message == (
        "a direct_debit payment cannot go from not_remitted to paid "
        "(from not_remitted it may go to: cancelled, duplicate, remitted)"
    )
    with pytest.raises(InvalidPaymentTransition) as final:
        check_transition("cash", "cancelled", "paid")
    assert final.value.message == (
        "a cash payment cannot go from cancelled to paid "
        "(from cancelled it may go to: none: it is final)"
    )


def test_unknown_status_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed, match="unknown payment status 'lost'"):
        check_transition("cash", "pending", "lost")


def test_cancelled_and_duplicate_are_final_for_every_method() -> None:
    for table in TRANSITIONS.values():
        assert table[S.CANCELLED] == frozenset()
        assert table[S.DUPLICATE] == frozenset()


# --------------------------------------------------------------------------- identifiers

SEPA_ID = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]{1,35}$")


def test_mandate_reference_is_stable_unique_and_sepa_safe() -> None:
    assert mandate_reference("acme", 42, 1) == "ACME-00000042-01"
    assert mandate_reference("fundacion-ejemplo-madrid", 7, 2) == "FUNDACIONE-00000007-02"
    assert mandate_reference("--", 7, 1) == "RCD-00000007-01"
    refs = {mandate_reference("ong", c, n) for c in range(1, 200) for n in range(1, 4)}
    assert len(refs) == 199 * 3
    assert all(SEPA_ID.match(r) for r in refs)
    assert len(mandate_reference("averylongslugname", 10**12, 99)) <= 35


def test_end_to_end_id() -> None:
    assert end_to_end_id(42, date(2027, 2, 1)) == "RCD000000004220270201"
    assert SEPA_ID.match(end_to_end_id(10**10 - 1, date(2027, 2, 1)))
