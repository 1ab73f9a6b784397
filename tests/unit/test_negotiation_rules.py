"""Negotiation rules: components by concept, days past due, P…P,T, states, breaking, reinstating."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from recaudo.domain.errors import Conflict, ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.negotiation import (
    DEFAULT_CONCEPT_LABELS,
    TRANSITIONS,
    CommitmentKind,
    Concept,
    Condonation,
    InstallmentStatus,
    NegotiationState,
    Obligation,
    ReinstatePolicy,
    breaking_installment,
    check_commitments,
    concept_labels,
    condone,
    customer_days_past_due,
    days_past_due,
    installments_paid_in_order,
    is_fulfilled,
    not_yet_due,
    overdue,
    overdue_amount,
    parse_concept,
    parse_percentages,
    reinstatement,
    totals_by_concept,
    transition,
)

CAP, CUR, LATE = Concept.CAPITAL, Concept.CURRENT_INTEREST, Concept.LATE_INTEREST


def usd(text: str) -> Money:
    return Money.of(text, "USD")


# --- components and days past due --------------------------------------------------------


def test_without_a_breakdown_everything_is_capital() -> None:
    o = Obligation.of(1, usd("120.50"), date(2026, 5, 31))
    assert o.components == {CAP: usd("120.50")}
    assert o.amount == usd("120.50")
    assert o.component(LATE) == usd("0.00")


def test_a_breakdown_must_add_up() -> None:
    o = Obligation.of(1, usd("100.00"), date(2026, 5, 31), {CAP: usd("90.00"), LATE: usd("10.00")})
    assert o.amount == usd("100.00")
    with pytest.raises(ValidationFailed, match=r"add up to 99.00 USD, not 100.00 USD"):
        Obligation.of(1, usd("100.00"), date(2026, 5, 31), {CAP: usd("89.00"), LATE: usd("10.00")})
    with pytest.raises(ValidationFailed, match="is in EUR"):
        Obligation(1, "USD", date(2026, 5, 31), {CAP: Money.of("1", "EUR")})
    with pytest.raises(ValidationFailed, match="negative"):
        Obligation(1, "USD", date(2026, 5, 31), {CAP: Money(-1, "USD")})
    with pytest.raises(ValidationFailed, match="at least one component"):
        Obligation(1, "USD", date(2026, 5, 31), {})


def test_concept_labels_are_configurable_per_company() -> None:
    labels = concept_labels({"fees": "Gastos de cobranza", "late_interest": " Mora "})
    assert labels[Concept.FEES] == "Gastos de cobranza"
    assert labels[Concept.LATE_INTEREST] == "Mora"
    assert labels[Concept.CAPITAL] == DEFAULT_CONCEPT_LABELS[Concept.CAPITAL] == "Capital"
    assert concept_labels() == dict(DEFAULT_CONCEPT_LABELS)
    with pytest.raises(ValidationFailed, match="unknown concept 'tips'"):
        concept_labels({"tips": "Propinas"})
    with pytest.raises(ValidationFailed, match="is empty"):
        concept_labels({"fees": "  "})
    assert parse_concept(" Insurance ") is Concept.INSURANCE
    assert [c.value for c in Concept] == [
        "capital",
        "current_interest",
        "late_interest",
        "insurance",
        "fees",
        "other_charges",
    ]


def test_percentages_are_parsed_and_bounded() -> None:
    assert parse_percentages({"capital": "30.423", "late_interest": 100}) == {
        CAP: Decimal("30.423"),
        LATE: Decimal(100),
    }
    with pytest.raises(ValidationFailed, match="between 0 and 100"):
        parse_percentages({"capital": "-1"})
    with pytest.raises(ValidationFailed, match="not a number"):
        parse_percentages({"capital": "lots"})


def test_days_past_due_and_overdue_amount_are_computed_from_due_dates() -> None:
    as_of = date(2026, 3, 1)
    assert days_past_due(date(2026, 3, 1), as_of) == 0  # due today: on time
    assert days_past_due(date(2026, 3, 2), as_of) == 0  # not yet due
    assert days_past_due(date(2026, 2, 28), as_of) == 1
    assert days_past_due(date(2025, 12, 1), as_of) == 90  # Dec 31 + Jan 31 + Feb 28
    obls = [
        Obligation.of(1, usd("100.00"), date(2025, 12, 1)),
        Obligation.of(2, usd("50.00"), date(2026, 2, 28)),
        Obligation.of(3, usd("70.00"), date(2026, 3, 1)),
        Obligation.of(4, usd("0.00"), date(2025, 1, 1)),  # nothing open: ignored
    ]
    assert [o.debt_id for o in overdue(obls, as_of)] == [1, 2]
    assert [o.debt_id for o in not_yet_due(obls, as_of)] == [3]
    assert overdue_amount(obls, as_of, "USD") == usd("150.00")
    assert customer_days_past_due(obls, as_of) == 90
    assert customer_days_past_due(obls[2:3], as_of) == 0


def test_totals_and_condonation_by_concept() -> None:
    obls = [
        Obligation.of(1, usd("100.00"), date(2026, 1, 1), {CAP: usd("80.00"), LATE: usd("20.00")}),
        Obligation.of(2, usd("10.01"), date(2026, 2, 1), {LATE: usd("10.01")}),
    ]
    assert totals_by_concept(obls, "USD") == {CAP: usd("80.00"), LATE: usd("30.01")}
    # late 50 %: 20.00 → 10.00; 10.01 → 5.005 → 5.01 (half-up, per debt)
    assert condone(obls, {LATE: Decimal(50)}) == (
        Condonation(1, LATE, usd("10.00")),
        Condonation(2, LATE, usd("5.01")),
    )


# --- commitments: P…P,T ------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [["T"], ["P", "T"], ["P", "P", "P", "T"], ["p", " t "]])
def test_partials_then_one_total_last_is_accepted(kinds: list[str]) -> None:
    parsed = check_commitments(kinds)
    assert parsed[-1] is CommitmentKind.TOTAL
    assert all(k is CommitmentKind.PARTIAL for k in parsed[:-1])


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ([], "needs one total \\('T'\\) commitment, the last one; it has none"),
        (["P"], "the last commitment \\(1 of 1\\) is partial \\('P'\\)"),
        (["P", "P"], "the last commitment \\(2 of 2\\) is partial"),
        (["T", "T"], "commitment 1 of 2 is total \\('T'\\): only the last commitment may be total"),
        (["T", "P"], "commitment 1 of 2 is total"),
        (["P", "T", "P", "T"], "commitment 2 of 4 is total"),
        (["P", "X", "T"], "commitment 2 has type 'X': it must be 'P' \\(partial\\) or 'T'"),
    ],
)
def test_anything_else_is_refused_with_a_clear_message(kinds: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        check_commitments(kinds)


# --- states --------------------------------------------------------------------------------


def test_the_happy_paths() -> None:
    s = NegotiationState.PROPOSED
    s = transition(s, "accepted")
    s = transition(s, NegotiationState.ACTIVE)
    assert transition(s, NegotiationState.FULFILLED) is NegotiationState.FULFILLED
    assert transition(s, NegotiationState.BROKEN) is NegotiationState.BROKEN
    # a plan whose first installment is never paid breaks before becoming active
    assert transition("accepted", "broken") is NegotiationState.BROKEN


def test_every_other_transition_is_a_conflict() -> None:
    allowed = {
        ("proposed", "accepted"),
        ("accepted", "active"),
        ("accepted", "broken"),
        ("active", "fulfilled"),
        ("active", "broken"),
    }
    assert {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets} == allowed
    for a in NegotiationState:
        for b in NegotiationState:
            if (a.value, b.value) in allowed:
                continue
            with pytest.raises(Conflict, match=f"a {a.value} negotiation cannot become {b.value}"):
                transition(a, b)
    with pytest.raises(Conflict, match="allowed: none \\(final state\\)"):
        transition("broken", "active")
    with pytest.raises(Conflict, match="allowed: accepted"):
        transition("proposed", "active")
    with pytest.raises(Conflict, match="allowed: active, broken"):
        transition("accepted", "fulfilled")
    with pytest.raises(ValidationFailed, match="unknown state 'done'"):
        transition("active", "done")


# --- following the plan ----------------------------------------------------------------------


def plan(paid: tuple[str, str, str]) -> list[InstallmentStatus]:
    dues = [date(2027, 1, 15), date(2027, 2, 15), date(2027, 3, 15)]
    return [
        InstallmentStatus(n, due, usd("100.00"), usd(p))
        for n, (due, p) in enumerate(zip(dues, paid, strict=True), start=1)
    ]


def test_an_installment_more_than_n_days_late_breaks_the_plan() -> None:
    p = plan(("100.00", "40.00", "0.00"))  # installment 2 partly paid: still open 60.00
    assert p[1].open == usd("60.00")
    # Feb 15 → Mar 17 is 30 days late: not MORE than 30
    assert breaking_installment(p, as_of=date(2027, 3, 17), break_after_days=30) is None
    # Mar 18: 31 days late → breaks, on installment 2 (the earliest late one)
    broken = breaking_installment(p, as_of=date(2027, 3, 18), break_after_days=30)
    assert broken is not None and broken.number == 2
    # with 0 days allowed, the day after the due date breaks it
    first = breaking_installment(p, as_of=date(2027, 2, 16), break_after_days=0)
    assert first is not None and first.number == 2
    assert breaking_installment(p, as_of=date(2027, 2, 15), break_after_days=0) is None
    # a paid plan never breaks
    assert (
        breaking_installment(plan(("100.00",) * 3), as_of=date(2030, 1, 1), break_after_days=0)
        is None
    )
    with pytest.raises(ValidationFailed, match="cannot be negative"):
        breaking_installment(p, as_of=date(2027, 3, 18), break_after_days=-1)


def test_paid_in_order_and_fulfilled() -> None:
    assert installments_paid_in_order(plan(("100.00", "40.00", "100.00"))) == 1
    assert installments_paid_in_order(plan(("0.00", "100.00", "100.00"))) == 0
    assert installments_paid_in_order(plan(("100.00", "100.00", "100.00"))) == 3
    assert is_fulfilled(plan(("100.00", "100.00", "100.00")))
    assert not is_fulfilled(plan(("100.00", "100.00", "99.99")))
    assert not is_fulfilled([])


CONDONED = (
    Condonation(1, CUR, usd("30.00")),
    Condonation(1, LATE, usd("40.00")),
    Condonation(2, CUR, usd("25.00")),
)


def test_reinstatement_by_policy() -> None:
    never = reinstatement(CONDONED, policy="never", installments_total=3, installments_paid=1)
    assert never.condonations == () and never.total("USD") == usd("0.00")
    always = reinstatement(
        CONDONED, policy=ReinstatePolicy.ALWAYS, installments_total=3, installments_paid=1
    )
    assert always.condonations == CONDONED and always.total("USD") == usd("95.00")
    # proportional, 1 of 3 paid → 2/3 back: 30.00 → 20.00; 40.00 → 26.666… → 26.67;
    # 25.00 → 16.666… → 16.67; total 63.34
    prop = reinstatement(CONDONED, policy="proportional", installments_total=3, installments_paid=1)
    assert prop.condonations == (
        Condonation(1, CUR, usd("20.00")),
        Condonation(1, LATE, usd("26.67")),
        Condonation(2, CUR, usd("16.67")),
    )
    assert prop.total("USD") == usd("63.34")
    done = reinstatement(CONDONED, policy="proportional", installments_total=3, installments_paid=3)
    assert done.condonations == ()


def test_conditional_condonation_not_reached_always_comes_back() -> None:
    # PPPA with K = 2: only one installment paid → never granted → everything back
    back = reinstatement(
        CONDONED, policy="never", installments_total=3, installments_paid=1, condonation_at=2
    )
    assert back.total("USD") == usd("95.00")
    # installment 2 paid → granted; the policy decides
    kept = reinstatement(
        CONDONED, policy="never", installments_total=3, installments_paid=2, condonation_at=2
    )
    assert kept.condonations == ()
    with pytest.raises(ValidationFailed, match="between 0 and the plan's installments"):
        reinstatement(CONDONED, policy="never", installments_total=3, installments_paid=4)
    with pytest.raises(ValidationFailed, match="unknown reinstatement policy 'sometimes'"):
        reinstatement(CONDONED, policy="sometimes", installments_total=3, installments_paid=1)
