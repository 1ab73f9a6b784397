"""The collections-management contract's translation, without a server: amounts with two
implied decimals, padded obligation numbers, ids, dates, flags and the error shape."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from recaudo.channels.collections_management import contract as c
from recaudo.domain.money import Money
from recaudo.domain.negotiation import Concept
from recaudo.domain.strategies import Strategy


def node(**data: Any) -> c.Node:
    return c.Node(data, "x")


def refused_with(error: pytest.ExceptionInfo[c.ContractError]) -> tuple[int, str, str]:
    return error.value.status, error.value.code, error.value.desc


@pytest.mark.parametrize(
    ("cents", "currency", "minor"),
    [
        (1244, "COP", 1244),  # 12.44
        (0, "COP", 0),
        (25000000, "CLP", 250000),  # 250,000 pesos: no decimals in CLP
        (1244, "CLF", 124400),  # 12.4400 UF
        (1244, "EUR", 1244),
    ],
)
def test_money_of(cents: int, currency: str, minor: int) -> None:
    assert c.money_of(cents, currency, "amt") == Money(minor, currency)
    assert c.cents_of(Money(minor, currency)) == cents


def test_money_of_refuses_impossible_precision_and_range() -> None:
    with pytest.raises(c.ContractError) as error:
        c.money_of(25000050, "CLP", "incomeAmt")
    assert refused_with(error) == (
        400,
        "10007",
        "Error al transformar: incomeAmt: CLP no admite decimales: el monto debe terminar en 00",
    )
    with pytest.raises(c.ContractError):
        c.money_of(10**16 + 1, "COP", "amt")  # over Recaudo's 10**15 minor units
    with pytest.raises(c.ContractError, match="no se expresa con dos decimales"):
        c.cents_of(Money(124401, "CLF"))  # 12.4401 UF


@pytest.mark.parametrize(
    ("value", "cents"),
    [(1244, 1244), (1529675.0, 1529675), ("1244", 1244), ("3.0", 3), (None, None), ("", None)],
)
def test_cents_accepts_the_documents_forms(value: Any, cents: int | None) -> None:
    assert node(amt=value).cents("amt") == cents


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (12.5, "monto sin separador decimal: los dos ultimos digitos son decimales"),
        (-1, "el monto no puede ser negativo"),
        (True, "debe ser numerico"),
        ("12,5", "debe ser numerico"),
        ([1], "debe ser numerico"),
        (float("inf"), "debe ser un numero finito"),
        (10**18, "fuera de rango"),
        ("1e400", "fuera de rango"),
    ],
)
def test_cents_refusals(value: Any, reason: str) -> None:
    with pytest.raises(c.ContractError) as error:
        node(amt=value).cents("amt")
    assert refused_with(error) == (400, "10007", f"Error al transformar: x.amt: {reason}")


def test_required_fields_are_null_input() -> None:
    with pytest.raises(c.ContractError) as error:
        node(amt=None).cents("amt", required=True)
    assert refused_with(error) == (400, "10002", "El objeto de Entrada es nulo: x.amt")


@pytest.mark.parametrize(
    ("raw", "account"),
    [
        ("872452983283", "872452983283"),
        ("872452983283        ", "872452983283"),  # right-padded to 20
        ("12345678901234567890", "12345678901234567890"),
        (4570215061040388, "4570215061040388"),  # the profile table says Number
    ],
)
def test_account_padding(raw: Any, account: str) -> None:
    assert node(acctId=raw).account("acctId") == account


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("123456789012345678901", "a lo mas 20 caracteres sin espacios"),
        ("12345678901234567890 ", "relleno a mas de 20 caracteres"),
        (" 123", "a lo mas 20 caracteres sin espacios"),
        ("12\t3", "a lo mas 20 caracteres sin espacios"),
        (1.5, "debe ser texto"),
    ],
)
def test_account_refusals(raw: Any, reason: str) -> None:
    with pytest.raises(c.ContractError, match=reason):
        node(acctId=raw).account("acctId")


def test_dates_flags_and_percentages() -> None:
    assert node(d="2022-09-22").day("d") == date(2022, 9, 22)
    assert node(d="20220922").day("d") == date(2022, 9, 22)
    with pytest.raises(c.ContractError, match="fecha invalida"):
        node(d="2022-02-30").day("d")
    assert [node(f=v).flag("f") for v in (True, "true", "Si", "false", "No", None, "")] == [
        True,
        True,
        True,
        False,
        False,
        None,
        None,
    ]
    assert node(p=30.423).percent("p") == Decimal("30.423")
    with pytest.raises(c.ContractError, match="porcentaje entre 0 y 100"):
        node(p=100.01).percent("p")


def test_party_ids_match_by_number_and_type() -> None:
    party = c.parse_party(
        node(govIssueIdentType="cc", identSerialNum="1.234.567.890"), "g", required=True
    )
    assert party == c.PartyId("CC", "1234567890")
    assert party.matches("CC", "1234567890")
    assert not party.matches("NIT", "1234567890")  # a CC is not a NIT of the same digits
    assert not party.matches("CC", "1234567891")
    rut = c.PartyId("OT", "10379613K")
    assert rut.matches("RUT", "10379613K")
    assert c.contract_id_type("NIT") == "NI" and c.contract_id_type("RUT") == "OT"


def test_strategy_aliases_of_the_document() -> None:
    for code, strategy in (
        ("CNT", Strategy.CNTL),
        ("pdd", Strategy.PDDA),
        ("PPP", Strategy.PPPL),
        ("REDIFERIDO", Strategy.REDIF),
        ("PRERM", Strategy.PRERM),
    ):
        assert c.parse_strategy_code(node(s=code), "s", required=True) is strategy


def test_condonation_names_fall_on_concepts_and_must_agree() -> None:
    items = c.Node(
        {
            "a": [
                {"name": "PORCONDONAINTCTE", "value": 30},
                {"name": "PORCONDONACONTIN", "value": 30},
                {"name": "% A CONDONAR POR INTERES DE DE MORA ", "value": 44.4},
            ]
        },
        "",
    ).list("a")
    assert c.parse_condonation_list(items) == {
        Concept.CURRENT_INTEREST: Decimal(30),
        Concept.LATE_INTEREST: Decimal("44.4"),
    }
    clash = c.Node(
        {
            "a": [
                {"name": "PORCONDONAINTCTE", "value": 30},
                {"name": "PORCONDONACONTIN", "value": 31},
            ]
        },
        "",
    ).list("a")
    with pytest.raises(c.ContractError, match=r"porcentajes distintos \(30 y 31\)"):
        c.parse_condonation_list(clash)


def test_recalculation_flags_choose_the_overrides() -> None:
    def item(flags: list[dict[str, str]], term: Any) -> dict[str, Any]:
        return {
            "creditAnalysis": [
                {
                    "collection": {
                        "transaction": {"trnRqUID": "1"},
                        "strategyType": "PPPL",
                        "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "1"},
                        "partyAcctRelRec": {"acctId": "A-1", "amt": 50000},
                        "pmtStatus": {"flagRecalculate": True},
                        "indebtedness": {"numAsignInstallments": term, "rate": 18.5},
                        "additionalData": flags,
                    }
                }
            ]
        }

    flagged = c.parse_analysis(item([{"name": " FLAG_NUEVA_TASA", "value": "1"}], 12.0))[0]
    assert flagged.overrides == c.Overrides(annual_rate=Decimal("18.5"))
    assert c.analysis_parameters(flagged, "COP") == {"annual_rate": "18.5"}
    unflagged = c.parse_analysis(item([], 12))[0]
    assert unflagged.overrides == c.Overrides(
        payment_today=50000, term=12, annual_rate=Decimal("18.5")
    )
    assert c.analysis_parameters(unflagged, "COP") == {
        "term": 12,
        "annual_rate": "18.5",
        "down_payment": "500.00",
    }
    with pytest.raises(c.ContractError, match="nombre desconocido 'FLAG_X'"):
        c.parse_analysis(item([{"name": "FLAG_X", "value": "1"}], 12))


def test_error_shape() -> None:
    error = c.account_not_found()
    assert (error.status, error.body()) == (
        404,
        {
            "responseType": {"value": "ER"},
            "responseDetail": {
                "errorCode": "00502",
                "errorDesc": "CUENTA NO EXISTE.",
                "errorType": "DBA",
            },
        },
    )
