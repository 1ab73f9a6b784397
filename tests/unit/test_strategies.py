"""Each negotiation strategy on a worked example; the arithmetic is written next to it.

The customer (USD, as of 2026-11-22) has three debts:

    debt 1 due 2026-09-01 (82 days late) capital 400.00 current int. 60.00 late int. 40.00
    debt 2 due 2026-10-01 (52 days late) capital 450.00 current int. 50.00
    debt 3 due 2026-12-01 (not yet due)  no breakdown → capital 500.00

Each debt's balance is 500.00.

Overdue part: debts 1 and 2 = 1000.00; total balance 1500.00.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pytest

from recaudo.domain.errors import ValidationFailed
from recaudo.domain.money import Money
from recaudo.domain.negotiation import Concept, Condonation, Obligation
from recaudo.domain.plans import Installment
from recaudo.domain.strategies import (
    Offer,
    PreapprovedTerms,
    Strategy,
    StrategyParameters,
    bring_current,
    bring_current_deferred,
    build_offer,
    parse_strategy,
    payment_plan,
    payoff,
    plan_with_intermediate_condonation,
    preapproved,
    redeferral,
)

AS_OF = date(2026, 11, 22)
CAP, CUR, LATE = Concept.CAPITAL, Concept.CURRENT_INTEREST, Concept.LATE_INTEREST


def usd(text: str) -> Money:
    return Money.of(text, "USD")


def debts() -> list[Obligation]:
    return [
        Obligation.of(
            1,
            usd("500.00"),
            date(2026, 9, 1),
            {CAP: usd("400.00"), CUR: usd("60.00"), LATE: usd("40.00")},
            product_type="consumer_loan",
        ),
        Obligation.of(2, usd("500.00"), date(2026, 10, 1), {CAP: usd("450.00"), CUR: usd("50.00")}),
        Obligation.of(3, usd("500.00"), date(2026, 12, 1)),
    ]


def rows(installments: Sequence[Installment]) -> list[tuple[date, str, str, str]]:
    return [
        (i.due_on, str(i.principal.amount), str(i.interest.amount), str(i.amount.amount))
        for i in installments
    ]


def adds_up(offer: Offer) -> None:
    financed = offer.financed.minor
    assert offer.balance.minor == (
        offer.payment_today.minor + offer.total_condoned.minor + financed + offer.kept_balance.minor
    )
    if offer.schedule is not None:
        assert sum(i.principal.minor for i in offer.installments) == (
            financed + offer.schedule.capitalized_interest.minor
        )
        assert offer.schedule.total.minor == financed + offer.total_interest.minor


def test_the_example_debts() -> None:
    d = debts()
    assert [o.days_past_due(AS_OF) for o in d] == [82, 52, 0]  # Sep 30 + Oct 31 + Nov 21 = 82
    assert d[2].components == {CAP: usd("500.00")}


def test_cntl_payoff_with_condonation_per_concept() -> None:
    # late interest 100 %: debt 1 40.00
    # current interest 50 %: debt 1 60.00 → 30.00, debt 2 50.00 → 25.00
    # condoned 40.00 + 30.00 + 25.00 = 95.00; payment today 1500.00 − 95.00 = 1405.00
    offer = payoff(debts(), as_of=AS_OF, condonation={LATE: Decimal(100), CUR: Decimal(50)})
    assert offer.strategy is Strategy.CNTL
    assert offer.payment_today == usd("1405.00")
    assert offer.condonations == (
        Condonation(1, CUR, usd("30.00")),
        Condonation(1, LATE, usd("40.00")),
        Condonation(2, CUR, usd("25.00")),
    )
    assert offer.condoned_by_concept == {CUR: usd("55.00"), LATE: usd("40.00")}
    assert offer.total_condoned == usd("95.00")
    assert offer.installments == () and offer.term == 0 and offer.annual_rate == 0
    assert offer.new_balance == usd("0.00")
    assert offer.total_to_pay == usd("1405.00")
    assert offer.debt_ids == (1, 2, 3) and offer.kept_debt_ids == ()
    adds_up(offer)


def test_condonation_rounds_half_up_per_debt_and_concept() -> None:
    # current interest 33.333 %: 60.00 × 0.33333 = 19.9998 → 20.00;
    # 50.00 × 0.33333 = 16.6665 → 16.67
    offer = payoff(debts(), as_of=AS_OF, condonation={CUR: Decimal("33.333")})
    assert offer.condoned_by_concept == {CUR: usd("36.67")}
    assert offer.payment_today == usd("1463.33")  # 1500.00 − 36.67
    # In pesos (no minor unit): 1001 × 50 % = 500.5 → 501
    clp = Obligation.of(9, Money.of("1001", "CLP"), date(2026, 1, 1))
    offer = payoff([clp], as_of=AS_OF, condonation={CAP: Decimal(50)})
    assert offer.condonations == (Condonation(9, CAP, Money.of("501", "CLP")),)
    assert offer.payment_today == Money.of("500", "CLP")


def test_pdia_bring_current() -> None:
    # overdue: debts 1 and 2 = 1000.00; late interest condoned 100 % = 40.00 (debt 1)
    # payment today 1000.00 − 40.00 = 960.00; debt 3 (500.00) keeps its schedule
    offer = bring_current(debts(), as_of=AS_OF, condonation={LATE: Decimal(100)})
    assert offer.payment_today == usd("960.00")
    assert offer.debt_ids == (1, 2)
    assert offer.kept_debt_ids == (3,)
    assert offer.kept_balance == usd("500.00")
    assert offer.new_balance == usd("500.00")
    assert offer.condoned_by_concept == {LATE: usd("40.00")}
    assert offer.schedule is None
    adds_up(offer)


def test_pdia_needs_something_overdue() -> None:
    with pytest.raises(ValidationFailed, match="nothing is overdue on 2026-11-22"):
        bring_current(debts()[2:], as_of=AS_OF)
    # on its due date a debt is not overdue yet
    with pytest.raises(ValidationFailed, match="nothing is overdue"):
        bring_current(debts()[2:], as_of=date(2026, 12, 1))


def test_pdda_overdue_part_deferred() -> None:
    # overdue 1000.00; payment today 100.00; 900.00 deferred over 3 interest-free
    # installments: 900.00 / 3 = 300.00 each, monthly from 2026-12-01; debt 3 keeps its schedule
    offer = bring_current_deferred(
        debts(),
        as_of=AS_OF,
        installments=3,
        first_due=date(2026, 12, 1),
        down_payment=usd("100.00"),
    )
    assert offer.payment_today == usd("100.00")
    assert rows(offer.installments) == [
        (date(2026, 12, 1), "300.00", "0.00", "300.00"),
        (date(2027, 1, 1), "300.00", "0.00", "300.00"),
        (date(2027, 2, 1), "300.00", "0.00", "300.00"),
    ]
    assert offer.debt_ids == (1, 2) and offer.kept_debt_ids == (3,)
    assert offer.new_balance == usd("1400.00")  # 900.00 deferred + 500.00 kept
    assert offer.total_to_pay == usd("1000.00")
    adds_up(offer)


def test_pppl_payment_plan() -> None:
    # 1500.00 over 3 at 12 % nominal (i = 0.01), first due 2026-12-22
    # A = 1500 × 0.01 × 1.030301 / 0.030301 = 510.0331… → 510.03
    # 1: int 15.00, princ 495.03, bal 1004.97
    # 2: int 10.0497 → 10.05, princ 499.98, bal 504.99
    # 3: princ 504.99, int 5.0499 → 5.05, installment 510.04 (absorbs rounding)
    # interest 15.00 + 10.05 + 5.05 = 30.10; total 1530.10
    offer = payment_plan(
        debts(), as_of=AS_OF, term=3, annual_rate=Decimal(12), first_due=date(2026, 12, 22)
    )
    assert rows(offer.installments) == [
        (date(2026, 12, 22), "495.03", "15.00", "510.03"),
        (date(2027, 1, 22), "499.98", "10.05", "510.03"),
        (date(2027, 2, 22), "504.99", "5.05", "510.04"),
    ]
    assert offer.new_installment == usd("510.03")
    assert offer.max_installment == usd("510.04")
    assert offer.total_interest == usd("30.10")
    assert offer.total_to_pay == usd("1530.10")
    assert (offer.term, offer.annual_rate, offer.payment_today) == (3, Decimal(12), usd("0.00"))
    assert offer.total_condoned == usd("0.00")
    adds_up(offer)


def test_pppl_with_grace_and_payment_today() -> None:
    # 1500.00 − 300.00 paid today = 1200.00 financed at i = 0.01, 1 grace month, term 2
    # grace: interest only 1200.00 × 0.01 = 12.00
    # A = 1200 × 0.01 × 1.0201 / 0.0201 = 609.0149… → 609.01
    # 2: int 12.00, princ 597.01, bal 602.99
    # 3: princ 602.99, int 6.0299 → 6.03, installment 609.02
    # interest 12.00 + 12.00 + 6.03 = 30.03; installments 1230.03; total to pay 1530.03
    offer = payment_plan(
        debts(),
        as_of=AS_OF,
        term=2,
        annual_rate=Decimal(12),
        first_due=date(2026, 12, 31),
        grace_months=1,
        down_payment=usd("300.00"),
    )
    assert rows(offer.installments) == [
        (date(2026, 12, 31), "0.00", "12.00", "12.00"),
        (date(2027, 1, 31), "597.01", "12.00", "609.01"),
        (date(2027, 2, 28), "602.99", "6.03", "609.02"),
    ]
    assert offer.term == 2 and offer.grace_months == 1
    assert offer.total_interest == usd("30.03")
    assert offer.total_to_pay == usd("1530.03")
    adds_up(offer)


def test_pppa_condonation_at_installment_k() -> None:
    # condonation as in CNTL: 95.00 (current 55.00, late 40.00), GRANTED at installment 2
    # financed 1500.00 − 95.00 = 1405.00 over 3 at 0 %: 1405.00 / 3 = 468.333… → 468.33,
    # 468.33, last 1405.00 − 936.66 = 468.34
    offer = plan_with_intermediate_condonation(
        debts(),
        as_of=AS_OF,
        term=3,
        annual_rate=Decimal(0),
        first_due=date(2026, 12, 15),
        condonation={LATE: Decimal(100), CUR: Decimal(50)},
        condonation_at=2,
    )
    assert offer.strategy is Strategy.PPPA
    assert offer.condonation_at == 2
    assert offer.total_condoned == usd("95.00")
    assert offer.condoned_by_concept == {CUR: usd("55.00"), LATE: usd("40.00")}
    assert [str(i.amount.amount) for i in offer.installments] == ["468.33", "468.33", "468.34"]
    assert offer.total_to_pay == usd("1405.00")
    adds_up(offer)


def test_pppa_k_must_be_an_installment_and_condonation_given() -> None:
    def pppa(condonation: Decimal, k: int) -> Offer:
        return plan_with_intermediate_condonation(
            debts(),
            as_of=AS_OF,
            term=3,
            annual_rate=Decimal(0),
            first_due=date(2026, 12, 15),
            condonation={LATE: condonation},
            condonation_at=k,
        )

    with pytest.raises(ValidationFailed, match="must be 1 to 3"):
        pppa(Decimal(100), 4)
    with pytest.raises(ValidationFailed, match="at least one concept"):
        pppa(Decimal(0), 1)


def test_ppps_preapproved_with_dead_month() -> None:
    # debt 1 only (capital 400.00, current 60.00, late 40.00); pre-approved offer:
    # term 2, 24 % (i = 0.02), condone capital 10 % = 40.00 and late interest 100 % = 40.00,
    # one dead month (periodGraceDeath). Financed 500.00 − 80.00 = 420.00
    # dead month: 420.00 × 0.02 = 8.40 capitalised → 428.40
    # A = 428.40 × 0.02 × 1.0404 / 0.0404 = 220.6472… → 220.65
    # 1: int 8.568 → 8.57, princ 212.08, bal 216.32
    # 2: princ 216.32, int 4.3264 → 4.33, installment 220.65
    # principal 212.08 + 216.32 = 428.40 = 420.00 + 8.40; interest 8.40 + 8.57 + 4.33 = 21.30
    terms = PreapprovedTerms(
        term=2,
        annual_rate=Decimal(24),
        condonation={CAP: Decimal(10), LATE: Decimal(100)},
        dead_months=1,
    )
    offer = preapproved(
        debts()[:1], strategy=Strategy.PPPS, terms=terms, as_of=AS_OF, first_due=date(2027, 1, 5)
    )
    assert offer.condoned_by_concept == {CAP: usd("40.00"), LATE: usd("40.00")}
    assert offer.financed == usd("420.00")
    assert offer.schedule is not None
    assert offer.schedule.capitalized_interest == usd("8.40")
    assert rows(offer.installments) == [
        (date(2027, 1, 5), "212.08", "8.57", "220.65"),
        (date(2027, 2, 5), "216.32", "4.33", "220.65"),
    ]
    assert offer.total_interest == usd("21.30")
    assert offer.total_to_pay == usd("441.30")  # 420.00 + 21.30
    adds_up(offer)


def test_prerm_preapproved_opencard_percentages() -> None:
    # the document's PRERM example percentages on debt 1: capital 30.4 %, current 21.4 %,
    # late 44.4 % → 400.00 × 0.304 = 121.60; 60.00 × 0.214 = 12.84; 40.00 × 0.444 = 17.76
    # condoned 152.20; financed 347.80 at 12 % (i = 0.01), 1 grace month, term 2
    # grace: 347.80 × 0.01 = 3.478 → 3.48
    # A = 347.80 × 0.01 × 1.0201 / 0.0201 = 176.5128… → 176.51
    # 2: int 3.48, princ 173.03, bal 174.77
    # 3: princ 174.77, int 1.7477 → 1.75, installment 176.52
    terms = PreapprovedTerms(
        term=2,
        annual_rate=Decimal(12),
        condonation={CAP: Decimal("30.4"), CUR: Decimal("21.4"), LATE: Decimal("44.4")},
        grace_months=1,
    )
    offer = preapproved(
        debts()[:1], strategy=Strategy.PRERM, terms=terms, as_of=AS_OF, first_due=date(2027, 1, 5)
    )
    assert offer.strategy is Strategy.PRERM
    assert offer.condoned_by_concept == {CAP: usd("121.60"), CUR: usd("12.84"), LATE: usd("17.76")}
    assert offer.total_condoned == usd("152.20")
    assert rows(offer.installments) == [
        (date(2027, 1, 5), "0.00", "3.48", "3.48"),
        (date(2027, 2, 5), "173.03", "3.48", "176.51"),
        (date(2027, 3, 5), "174.77", "1.75", "176.52"),
    ]
    assert offer.total_interest == usd("8.71")
    adds_up(offer)
    with pytest.raises(ValidationFailed, match="not a pre-approved strategy"):
        preapproved(
            debts(), strategy=Strategy.PPPL, terms=terms, as_of=AS_OF, first_due=date(2027, 1, 5)
        )


def test_redif_redeferral_of_the_whole_revolving_balance() -> None:
    # the card's whole balance 1500.00 (overdue and not) over 2 at the card's 24 % (i = 0.02)
    # A = 1500 × 0.02 × 1.0404 / 0.0404 = 772.5742… → 772.57
    # 1: int 30.00, princ 742.57, bal 757.43
    # 2: princ 757.43, int 15.1486 → 15.15, installment 772.58; interest 45.15
    offer = redeferral(
        debts(), as_of=AS_OF, term=2, annual_rate=Decimal(24), first_due=date(2026, 12, 10)
    )
    assert offer.strategy is Strategy.REDIF
    assert rows(offer.installments) == [
        (date(2026, 12, 10), "742.57", "30.00", "772.57"),
        (date(2027, 1, 10), "757.43", "15.15", "772.58"),
    ]
    assert offer.payment_today == usd("0.00") and offer.condonations == ()
    assert offer.debt_ids == (1, 2, 3)
    assert offer.total_to_pay == usd("1545.15")
    adds_up(offer)


def test_build_offer_dispatches_with_json_parameters() -> None:
    params = StrategyParameters.from_dict(
        {"term": 3, "annual_rate": "12", "first_due": "2026-12-22", "condonation": {}}
    )
    assert StrategyParameters.from_dict(params.to_dict()) == params
    offer = build_offer("pppl", debts(), params, as_of=AS_OF)
    assert offer == payment_plan(
        debts(), as_of=AS_OF, term=3, annual_rate=Decimal(12), first_due=date(2026, 12, 22)
    )
    pppa = StrategyParameters.from_dict(
        {
            "term": 3,
            "annual_rate": 0,
            "first_due": "2026-12-15",
            "condonation": {"late_interest": "100", "current_interest": 50},
            "condonation_at": 2,
            "down_payment": "5.00",
        }
    )
    offer = build_offer(Strategy.PPPA, debts(), pppa, as_of=AS_OF)
    assert offer.payment_today == usd("5.00")
    assert offer.financed == usd("1400.00")  # 1500.00 − 95.00 condoned − 5.00 today
    assert pppa.to_dict()["condonation"] == {"late_interest": "100", "current_interest": "50"}
    for code in Strategy:
        p = StrategyParameters(
            term=2, annual_rate=Decimal(12), first_due=date(2027, 1, 1), condonation_at=1
        )
        if code is Strategy.PPPA:
            p = StrategyParameters(
                term=2,
                annual_rate=Decimal(12),
                first_due=date(2027, 1, 1),
                condonation={LATE: Decimal(100)},
                condonation_at=1,
            )
        adds_up(build_offer(code, debts(), p, as_of=AS_OF))


@pytest.mark.parametrize(
    ("strategy", "data", "message"),
    [
        ("PPPL", {"term": 3}, "PPPL needs first_due"),
        ("PPPL", {"term": 3, "first_due": "2027-01-01"}, "PPPL needs annual_rate"),
        ("PDDA", {"first_due": "2027-01-01"}, "PDDA needs term"),
        (
            "PPPA",
            {"term": 3, "first_due": "2027-01-01", "annual_rate": 1},
            "PPPA needs condonation_at",
        ),
        ("XXXX", {}, "unknown strategy 'XXXX'"),
    ],
)
def test_missing_parameters_are_named(strategy: str, data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        build_offer(strategy, debts(), StrategyParameters.from_dict(data), as_of=AS_OF)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"color": 1}, "unknown strategy parameters: color"),
        ({"term": "3"}, "term must be a whole number"),
        ({"term": True}, "term must be a whole number"),
        ({"annual_rate": "abc"}, "annual_rate must be a number"),
        ({"annual_rate": "-1"}, "annual_rate must be a number ≥ 0"),
        ({"first_due": "tomorrow"}, "first_due must be a date"),
        ({"condonation": {"capital": 101}}, "between 0 and 100"),
        ({"condonation": {"tips": 1}}, "unknown concept 'tips'"),
        ({"condonation": [1]}, "condonation must be an object"),
    ],
)
def test_malformed_parameters_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        StrategyParameters.from_dict(data)


def test_selection_is_checked() -> None:
    with pytest.raises(ValidationFailed, match="at least one obligation"):
        payoff([], as_of=AS_OF)
    eur = Obligation.of(7, Money.of("10.00", "EUR"), date(2026, 1, 1))
    with pytest.raises(ValidationFailed, match="different currencies: EUR, USD"):
        payoff([*debts(), eur], as_of=AS_OF)
    with pytest.raises(ValidationFailed, match="selected twice"):
        payoff([*debts(), debts()[0]], as_of=AS_OF)
    with pytest.raises(ValidationFailed, match="to pay everything today use CNTL"):
        payment_plan(
            debts(),
            as_of=AS_OF,
            term=3,
            annual_rate=Decimal(0),
            first_due=date(2027, 1, 1),
            down_payment=usd("1500.00"),
        )
    assert parse_strategy(" redif ") is Strategy.REDIF


def test_an_offer_that_does_not_add_up_cannot_exist() -> None:
    good = payoff(debts(), as_of=AS_OF)
    with pytest.raises(ValidationFailed, match="offer does not add up"):
        Offer(
            strategy=Strategy.CNTL,
            currency="USD",
            as_of=AS_OF,
            debt_ids=good.debt_ids,
            kept_debt_ids=(),
            balance=good.balance,
            kept_balance=usd("0.00"),
            payment_today=usd("1499.99"),  # one cent short of the balance, nothing condoned
            condonations=(),
            schedule=None,
        )
