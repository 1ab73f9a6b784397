"""BancoEstado debt query through the real server, at both URL shapes: exact JSON answers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from recaudo.adapters.db.tables import Quote
from recaudo.services.incidents import set_availability
from tests.e2e.bank import (  # noqa: F401 (the fixture)
    ANY_UUID,
    INTERNAL,
    INVALID_QUERY,
    JUANA_RUT,
    MANY_RUT,
    NO_DEBT,
    NOT_FOUND,
    PEDRO_RUT,
    SHAPES,
    UNKNOWN_RUT,
    Bank,
    bank_fixture,
)
from tests.e2e.conftest import ROOT_ACTOR

JUANA_QUOTE = {
    "transaccion": ANY_UUID,
    "rut_cliente": "10379613-K",
    "vencimiento": "2026-01-10",
    "facturas_pagar": 2,
    "id_facturas": [134371, 134372],
    "nombre": "Juana Pérez Soto",
    "total": "4000.00",
}


@pytest.mark.parametrize("shape", SHAPES)
def test_found(bank: Bank, shape: str) -> None:
    response = bank.query(JUANA_RUT, shape)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == JUANA_QUOTE
    with bank.api.uow as uow:
        quote = uow.session.scalar(select(Quote).where(Quote.transaction_id == body["transaccion"]))
        assert quote is not None
        assert (quote.debts, quote.total_minor, quote.customer_id) == (
            ["134371", "134372"],
            4000,
            bank.people["juana"].id,
        )
        assert quote.agreement_id == bank.agreements["caja-vecina"].id


def test_internet_agreement_at_both_shapes(bank: Bank) -> None:
    for shape in ("bank", "canonical"):
        body = bank.quote(JUANA_RUT, shape, channel="internet")
        with bank.api.uow as uow:
            quote = uow.session.scalar(
                select(Quote).where(Quote.transaction_id == body["transaccion"])
            )
            assert quote is not None
            assert quote.agreement_id == bank.agreements["internet"].id
    # The internet secret on the Caja Vecina URL is not Caja Vecina's credential.
    wrong = bank.query(JUANA_RUT, "bank", headers=bank.auth("internet"))
    assert wrong.json() == INVALID_QUERY


@pytest.mark.parametrize(
    "typed",
    [
        "10.379.613-K",
        "10379613-k",
        "10379613K",
        "10379613k",
        "10379613",
        "10.379.613",
        " 10379613-K ",
    ],
)
def test_rut_formats(bank: Bank, typed: str) -> None:
    assert bank.query(typed).json() == JUANA_QUOTE


@pytest.mark.parametrize("shape", SHAPES)
def test_unknown_rut_and_no_debt(bank: Bank, shape: str) -> None:
    assert bank.query(UNKNOWN_RUT, shape).json() == NOT_FOUND
    assert bank.query(PEDRO_RUT, shape).json() == NO_DEBT
    assert bank.query("7654321", shape).json() == NO_DEBT  # without check digit


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "rut", ["10379613-1", "103796131", "10.379.613-0", "abc", "", "1" * 31, "12-34-56", "K"]
)
def test_invalid_rut(bank: Bank, shape: str, rut: str) -> None:
    response = bank.query(rut, shape)
    assert response.status_code == 200
    assert response.json() == INVALID_QUERY


@pytest.mark.parametrize("shape", SHAPES)
def test_more_than_five_debts(bank: Bank, shape: str) -> None:
    assert bank.query(MANY_RUT, shape).json() == {
        "transaccion": ANY_UUID,
        "rut_cliente": "12345678-5",
        "vencimiento": "2026-01-02",
        "facturas_pagar": 5,
        "id_facturas": ["F-4", "F-1", "F-3", "F-5", "F-2"],
        "nombre": "Marta Muñoz",
        "total": "20000.00",
    }


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", [None, "string", "STRING", "Strings", "", "Integer", "String1"])
def test_type_missing_or_wrong(bank: Bank, shape: str, kind: str | None) -> None:
    assert bank.query(JUANA_RUT, shape, kind=kind).json() == INVALID_QUERY


def test_rut_missing(bank: Bank) -> None:
    assert bank.query(None).json() == INVALID_QUERY


@pytest.mark.parametrize("shape", SHAPES)
def test_credentials(bank: Bank, shape: str) -> None:
    secret = bank.secrets["caja-vecina"]
    for rut in (JUANA_RUT, UNKNOWN_RUT, PEDRO_RUT):  # never tells whether a RUT exists
        assert bank.query(rut, shape, headers={}).json() == INVALID_QUERY
        wrong = {"Authorization": f"Bearer {secret[:-2]}xx"}
        assert bank.query(rut, shape, headers=wrong).json() == INVALID_QUERY
        assert bank.query(rut, shape, headers={"Authorization": secret}).json() == INVALID_QUERY
        in_query = bank.query(rut, shape, headers={}, params={"token": secret})
        assert in_query.json() == INVALID_QUERY  # not allowed by this agreement
    assert bank.query(JUANA_RUT, shape, headers={"X-Api-Key": secret}).json() == JUANA_QUOTE
    bank.settings("caja-vecina", allow_query_token=True)
    in_query = bank.query(JUANA_RUT, shape, headers={}, params={"token": secret})
    assert in_query.json() == JUANA_QUOTE
    bank.settings("caja-vecina", ip_allowlist=("10.0.0.0/8", "192.168.1.7"))
    assert bank.query(JUANA_RUT, shape).json() == INVALID_QUERY
    bank.settings("caja-vecina", ip_allowlist=("10.0.0.0/8", "127.0.0.0/30"))
    assert bank.query(JUANA_RUT, shape).json() == JUANA_QUOTE


def test_other_company_and_unknown_company(bank: Bank) -> None:
    for slug in ("beta", "nobody"):
        response = bank.http.get(
            bank.url("bank", "query", slug=slug),
            params={"type": "String", "rut_cliente": JUANA_RUT},
            headers=bank.auth(),
        )
        assert response.status_code == 200
        assert response.json() == INVALID_QUERY


@pytest.mark.parametrize("shape", ["bank", "canonical/"])
def test_company_unavailable(bank: Bank, shape: str) -> None:
    api = bank.api
    set_availability(api.uow, api.acme.id, False, "mantención", actor=ROOT_ACTOR, clock=api.clock)
    assert bank.query(JUANA_RUT, shape).json() == INTERNAL
    assert bank.query(UNKNOWN_RUT, shape).json() == INTERNAL
    incidents = api.client().get("/incidents").json()
    assert incidents["total"] == 2
    assert incidents["items"][0] == {
        "id": 2,
        "occurred_at": incidents["items"][0]["occurred_at"],
        "agreement_id": bank.agreements["caja-vecina"].id,
        "kind": "unavailable",
        "cause": "debt query while unavailable: mantención",
    }
    put = api.client().put("/company/availability", json={"available": True})
    assert put.json() == {"available": True, "reason": None}
    assert bank.query(JUANA_RUT, shape).json() == JUANA_QUOTE


def test_availability_through_api(bank: Bank) -> None:
    client = bank.api.client()
    missing = client.put("/company/availability", json={"available": False})
    assert missing.status_code == 422
    put = client.put("/company/availability", json={"available": False, "reason": "cierre"})
    assert put.json() == {"available": False, "reason": "cierre"}
    assert bank.query(JUANA_RUT).json() == INTERNAL
    assert client.get("/company/availability").json() == {"available": False, "reason": "cierre"}
    assert (
        bank.api.client("acme_auditor")
        .put("/company/availability", json={"available": True})
        .status_code
        == 403
    )


def test_disabled_agreement(bank: Bank) -> None:
    bank.settings("caja-vecina", enabled=False)
    assert bank.query(JUANA_RUT).json() == INTERNAL
    assert bank.query(JUANA_RUT, "canonical").json() == INTERNAL
    assert bank.query(JUANA_RUT, channel="internet").json() == JUANA_QUOTE
    kinds = [i["kind"] for i in bank.api.client().get("/incidents").json()["items"]]
    assert kinds == ["agreement_disabled", "agreement_disabled"]


def test_errors_as_http_statuses_when_configured(bank: Bank) -> None:
    bank.settings("caja-vecina", errors_as_http_200=False)
    unknown = bank.query(UNKNOWN_RUT)
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)
    bad = bank.query("abc")
    assert (bad.status_code, bad.json()) == (400, INVALID_QUERY)
    assert bank.query(JUANA_RUT).status_code == 200


def test_method_not_allowed_and_other_paths(bank: Bank) -> None:
    response = bank.http.post(bank.url("bank", "query"), headers=bank.auth())
    assert response.status_code == 405
    # Paths outside the contract fall through to the admin API.
    assert bank.http.get("/consulta/caja-vecina/").status_code == 404
