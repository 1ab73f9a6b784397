"""Canales pages through the real server, on both backends: administrators only; a new
agreement's secret is shown once (and works on the bank channel), never again; settings,
settlement settings, availability; CSRF."""

from __future__ import annotations

import re
from datetime import date
from types import SimpleNamespace
from typing import Any

import httpx

from recaudo.adapters.db.tables import ChannelAgreement
from recaudo.services import agreements
from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.test_web_imports import cells, web_client


def test_create_agreement_shows_the_secret_once(api: Api) -> None:
    admin = web_client(api, Role.ADMIN)
    page = admin.get("/canales")
    assert page.status_code == 200
    assert "La empresa todavía no tiene convenios con canales." in page.text

    created = admin.post(
        "/canales", {"channel": "caja-vecina", "convenio": "11223", "voucher_name": "Acme"}
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    found = re.search(r'<code class="secret" id="channel-secret">([^<]+)</code>', created.text)
    assert found is not None
    secret = found.group(1)
    assert re.fullmatch(r"ca_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    [stored] = _agreements(api)
    assert stored.secret_hash == agreements.hash_secret(secret)
    # The secret works on the bank channel...
    juana = api.customer(api.acme, "12.345.678-5", "Juana Pérez")
    api.debt(api.acme, juana, "D-1", "4000", date(2026, 3, 10))
    query = _query(api, secret)
    assert query.status_code == 200, query.text
    assert "transaccion" in query.json()
    refused = _query(api, secret[:-1] + ("x" if secret[-1] != "x" else "y"))
    assert "transaccion" not in refused.json()
    # ...and is never shown again: not in the list, the agreement's page or a flash.
    listing = admin.get("/canales")
    assert secret not in listing.text
    assert cells(listing.text, "agreements-table") == [
        [
            "bancoestado",
            "Caja Vecina",
            "11223",
            "14:00",
            "Habilitado",
            f"ca_{stored.secret_prefix}_…",
        ]
    ]
    detail = admin.get(f"/canales/{stored.id}")
    assert detail.status_code == 200
    assert secret not in detail.text

    taken = admin.post("/canales", {"channel": "caja-vecina", "convenio": "99"})
    assert taken.status_code == 409
    assert "acme already has a bancoestado caja-vecina agreement" in taken.text
    bad = admin.post("/canales", {"channel": "caja-vecina", "convenio": "12a"})
    assert bad.status_code == 422
    assert "convenio must be 1 to 20 digits" in bad.text


def _agreements(api: Api) -> list[Any]:
    """Acme's agreements as stored (their columns, readable after the session closed)."""
    with api.uow:
        return [
            SimpleNamespace(**{c.key: getattr(a, c.key) for c in ChannelAgreement.__table__.c})
            for a in agreements.list_agreements(api.uow, api.acme.id)
        ]


def _query(api: Api, secret: str) -> httpx.Response:
    """A debt query on the bank channel with `secret` as its credential."""
    return httpx.get(
        f"{api.url}/consulta/caja-vecina/acme",
        params={"rut_cliente": "12345678-5", "type": "String"},
        headers={"Authorization": f"Bearer {secret}"},
    )


def test_settings_settlement_and_availability(api: Api) -> None:
    admin = web_client(api, Role.ADMIN)
    admin.get("/canales")
    assert admin.post("/canales", {"channel": "internet", "convenio": "44556"}).status_code == 201
    [stored] = _agreements(api)
    url = f"/canales/{stored.id}"
    admin.get(url)
    form = {
        "voucher_name": "Acme Telecom",
        "cutoff": "15:30",
        "enabled": "1",
        "ip_allowlist": "200.1.2.0/24\n200.1.3.4",
        "quote_ttl_seconds": "600",
        "passthrough_url": "",
        "passthrough_timeout_ms": "2000",
    }
    saved = admin.post(url, form)
    assert saved.status_code == 303, saved.text
    page = admin.get(url)
    assert "Convenio actualizado." in page.text
    assert 'value="15:30"' in page.text
    assert "200.1.2.0/24\n200.1.3.4/32</textarea>" in page.text
    [after] = _agreements(api)
    assert (after.voucher_name, after.cutoff.strftime("%H:%M"), after.quote_ttl_seconds) == (
        "Acme Telecom",
        "15:30",
        600,
    )
    assert after.allow_query_token is False
    assert after.ip_allowlist == ["200.1.2.0/24", "200.1.3.4/32"]

    wrong = admin.post(url, {**form, "quote_ttl_seconds": "5"})
    assert wrong.status_code == 422
    assert "quote validity must be 60 seconds to 7 days" in wrong.text

    settlement = admin.post(
        url + "/rendicion",
        {"settlement_layout": "csv", "settlement_time": "23:15", "settlement_enabled": "1"},
    )
    assert settlement.status_code == 303
    page = admin.get(url)
    assert "Configuración de la rendición actualizada." in page.text
    assert '<option value="csv" selected>' in page.text
    unknown = admin.post(
        url + "/rendicion", {"settlement_layout": "nada", "settlement_time": "23:15"}
    )
    assert unknown.status_code == 422

    # Availability: a reason is required to go unavailable.
    no_reason = admin.post("/canales-disponibilidad", {"available": "0"})
    assert no_reason.status_code == 422
    assert "marking a company unavailable needs a reason" in no_reason.text
    down = admin.post("/canales-disponibilidad", {"available": "0", "reason": "mantención"})
    assert down.status_code == 303
    page = admin.get("/canales")
    assert "La empresa está <strong>NO disponible</strong> (mantención): mantención." in page.text
    up = admin.post("/canales-disponibilidad", {"available": "1"})
    assert up.status_code == 303
    assert "La empresa está <strong>disponible</strong>" in admin.get("/canales").text


def test_only_administrators(api: Api) -> None:
    admin = web_client(api, Role.ADMIN)
    admin.get("/canales")
    assert admin.post("/canales", {"channel": "internet", "convenio": "1"}).status_code == 201
    [stored] = _agreements(api)
    for role in (Role.OPERATOR, Role.AUDITOR, Role.CASHIER):
        client = web_client(api, role)
        for path in ("/canales", f"/canales/{stored.id}"):
            assert client.get(path).status_code == 403, (role, path)
        client.get("/importaciones" if role is not Role.CASHIER else "/cartera")
        assert (
            client.post("/canales", {"channel": "caja-vecina", "convenio": "2"}).status_code == 403
        )
        assert (
            client.post("/canales-disponibilidad", {"available": "0", "reason": "x"}).status_code
            == 403
        )
    assert len(_agreements(api)) == 1

    beta = web_client(api, Role.ADMIN, api.beta)
    assert beta.get(f"/canales/{stored.id}").status_code == 404
    beta.get("/canales")
    assert (
        beta.post(
            f"/canales/{stored.id}",
            {"cutoff": "10:00", "quote_ttl_seconds": "600", "passthrough_timeout_ms": "2000"},
        ).status_code
        == 404
    )

    no_token = admin.post("/canales", {"channel": "caja-vecina", "convenio": "3"}, csrf=False)
    assert no_token.status_code == 403
    assert len(_agreements(api)) == 1
