"""The BancoEstado channel under test: agreements, customers and the two URL shapes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest

from recaudo.adapters.db.tables import ChannelAgreement, Customer
from recaudo.services.agreements import AgreementSettings, create_agreement, update_agreement
from tests.e2e.conftest import ROOT_ACTOR, Api

# Quote transaction ids are time-ordered UUIDs, version 7 (RFC 9562).
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SHAPES = ["bank", "bank/", "canonical", "canonical/"]
JUANA_RUT = "10379613-K"
PEDRO_RUT = "7654321-6"
MANY_RUT = "12345678-5"
UNKNOWN_RUT = "11111111-1"


class _Uuid:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(UUID.match(other))

    def __repr__(self) -> str:
        return "<uuid7>"


ANY_UUID: Any = _Uuid()


@dataclass
class Bank:
    api: Api
    secrets: dict[str, str] = field(default_factory=dict)
    agreements: dict[str, ChannelAgreement] = field(default_factory=dict)
    people: dict[str, Customer] = field(default_factory=dict)
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.api.url, timeout=30)

    def url(self, shape: str, kind: str, channel: str = "caja-vecina", slug: str = "acme") -> str:
        slash = "/" if shape.endswith("/") else ""
        if shape.startswith("bank"):
            prefix = "consulta" if kind == "query" else "webhook"
            return f"/{prefix}/{channel}/{slug}{slash}"
        tail = "debts" if kind == "query" else "payments"
        return f"/channels/bancoestado/{slug}/{tail}{slash}"

    def auth(self, channel: str = "caja-vecina") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[channel]}"}

    def query(
        self,
        rut: str | None,
        shape: str = "bank",
        *,
        channel: str = "caja-vecina",
        kind: str | None = "String",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        query: dict[str, str] = {}
        if kind is not None:
            query["type"] = kind
        if rut is not None:
            query["rut_cliente"] = rut
        query.update(params or {})
        return self.http.get(
            self.url(shape, "query", channel),
            params=query,
            headers=self.auth(channel) if headers is None else headers,
        )

    def quote(self, rut: str, shape: str = "bank", channel: str = "caja-vecina") -> dict[str, Any]:
        response = self.query(rut, shape, channel=channel)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "transaccion" in body, body
        return body

    def notify(
        self,
        body: dict[str, Any] | bytes,
        shape: str = "bank",
        *,
        channel: str = "caja-vecina",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {**self.auth(channel), **(headers or {})}
        url = self.url(shape, "notify", channel)
        if isinstance(body, bytes):
            return self.http.post(url, content=body, headers=all_headers)
        return self.http.post(url, json=body, headers=all_headers)

    def settings(self, channel: str, **values: Any) -> None:
        update_agreement(
            self.api.uow,
            self.api.acme.id,
            self.agreements[channel].id,
            AgreementSettings(**values),
            actor=ROOT_ACTOR,
            clock=self.api.clock,
            allow_private_targets=True,  # the company's test endpoint is on 127.0.0.1
        )


def paid_body(quote: dict[str, Any], when: str = "2026-03-02 10:00", **over: Any) -> dict[str, Any]:
    body = {
        "fecha-pago": when,
        "transaccion": quote["transaccion"],
        "rut_cliente": quote["rut_cliente"],
        "vencimiento": quote["vencimiento"],
        "facturas_pagar": quote["facturas_pagar"],
        "id_facturas": quote["id_facturas"],
        "nombre": quote["nombre"],
        "total": quote["total"],
    }
    body.update(over)
    return body


OK = {"resultado": "Informacion obtenida con exito", "codigo_resultado": 1000}
INVALID_REQUEST = {"resultado": "Peticion Invalida.", "codigo_resultado": 1003}
INTERNAL = {"codigo_error": 1002, "mensaje_error": "Error interno del servidor."}
INVALID_QUERY = {"codigo_error": 1003, "mensaje_error": "Consulta Invalida."}
NOT_FOUND = {"codigo_error": 1004, "mensaje_error": "RUT del cliente no encontrado."}
NO_DEBT = {"codigo_error": 1005, "mensaje_error": "RUT sin adeudo."}


@pytest.fixture(name="bank")
def bank_fixture(api: Api) -> Iterator[Bank]:
    b = Bank(api)
    for channel, convenio in (("caja-vecina", "11223"), ("internet", "44556")):
        issued = create_agreement(
            api.uow, "acme", channel, convenio, actor=ROOT_ACTOR, clock=api.clock
        )
        b.secrets[channel] = issued.secret
        b.agreements[channel] = issued.agreement
    juana = api.customer(api.acme, JUANA_RUT, "Juana Pérez Soto")
    api.debt(api.acme, juana, "134372", "2500", date(2026, 2, 10))
    api.debt(api.acme, juana, "134371", "1500", date(2026, 1, 10))
    pedro = api.customer(api.acme, PEDRO_RUT, "Pedro Rojas")
    api.debt(api.acme, pedro, "P-1", "900", date(2026, 1, 5), status="paid")
    many = api.customer(api.acme, MANY_RUT, "Marta Muñoz")
    for n, (month, day) in enumerate([(5, 1), (1, 3), (4, 1), (2, 1), (1, 2), (3, 1), (6, 1)]):
        api.debt(api.acme, many, f"F-{n}", f"{1000 * (n + 1)}", date(2026, month, day))
    b.people.update(juana=juana, pedro=pedro, many=many)
    yield b
    b.http.close()
