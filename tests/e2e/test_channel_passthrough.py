"""Pass-through agreements: the debt query asks the company's own endpoint (a real server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Response
from stdnum.cl import rut as stdnum_rut

from tests.e2e.bank import (  # noqa: F401 (the fixture)
    ANY_UUID,
    INTERNAL,
    JUANA_RUT,
    NO_DEBT,
    NOT_FOUND,
    OK,
    PEDRO_RUT,
    Bank,
    bank_fixture,
    paid_body,
)
from tests.e2e.conftest import Server

NEW_BODY = "9876543"
NEW_RUT = f"{NEW_BODY}-{stdnum_rut.calc_check_digit(NEW_BODY)}"


class CompanyEndpoint:
    def __init__(self) -> None:
        self.down = False
        self.asked: list[str] = []
        self.app = FastAPI()
        self.app.get("/deudas")(self.deudas)

    def deudas(self, rut: str) -> Any:
        self.asked.append(rut)
        if self.down:
            return Response(status_code=503)
        if rut == JUANA_RUT:
            return {
                "nombre": "Juana Pérez Soto",
                "deudas": [
                    {"id": "900001", "monto": "1200", "vencimiento": "2026-02-01", "concepto": "B"},
                    {"id": "900002", "monto": "800", "vencimiento": "2026-01-15", "concepto": ""},
                ],
            }
        if rut == PEDRO_RUT:
            return {"nombre": "Pedro Rojas", "deudas": []}
        if rut == NEW_RUT:
            return {
                "nombre": "Nueva Clienta",
                "deudas": [{"id": "N-1", "monto": "5000", "vencimiento": "2026-03-01"}],
            }
        return Response(status_code=404)


@pytest.fixture
def endpoint(bank: Bank) -> Iterator[CompanyEndpoint]:
    company = CompanyEndpoint()
    server = Server(company.app)
    server.start()
    bank.settings("caja-vecina", passthrough_url=f"{server.url}/deudas")
    yield company
    server.stop()


def test_query_asks_the_company(bank: Bank, endpoint: CompanyEndpoint) -> None:
    quote = bank.quote("10.379.613-k")
    assert quote == {
        "transaccion": ANY_UUID,
        "rut_cliente": JUANA_RUT,
        "vencimiento": "2026-01-15",
        "facturas_pagar": 2,
        "id_facturas": [900002, 900001],
        "nombre": "Juana Pérez Soto",
        "total": "2000.00",
    }
    assert endpoint.asked == [JUANA_RUT]
    assert bank.notify(paid_body(quote)).json() == OK
    [payment] = bank.api.client().get("/payments").json()["items"]
    assert [(a["debt_id"], a["amount"]) for a in payment["allocations"]] == [
        ("900002", "800"),
        ("900001", "1200"),
    ]
    # Paid in Recaudo: the next query does not offer them again, even if the company does.
    assert bank.query(JUANA_RUT).json() == NO_DEBT
    # The Internet agreement has no pass-through: Recaudo's own debts.
    assert bank.quote(JUANA_RUT, channel="internet")["id_facturas"] == [134371, 134372]


def test_new_customer_unknown_and_nothing_owed(bank: Bank, endpoint: CompanyEndpoint) -> None:
    quote = bank.quote(NEW_BODY)  # without check digit
    assert (quote["rut_cliente"], quote["nombre"], quote["id_facturas"], quote["total"]) == (
        NEW_RUT,
        "Nueva Clienta",
        ["N-1"],
        "5000.00",
    )
    assert bank.query("11111111-1").json() == NOT_FOUND
    assert bank.query(PEDRO_RUT).json() == NO_DEBT


def test_company_endpoint_down(bank: Bank, endpoint: CompanyEndpoint) -> None:
    endpoint.down = True
    assert bank.query(JUANA_RUT).json() == INTERNAL
    [incident] = bank.api.client().get("/incidents").json()["items"]
    assert (incident["kind"], incident["cause"]) == (
        "passthrough_down",
        "pass-through debt query failed: HTTP 503",
    )
