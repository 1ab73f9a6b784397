"""Rendiciones pages through the real server, on both backends: generate a settlement
file for an agreement and accounting date, list it, download its exact bytes, re-run it
unchanged, re-deliver it; roles, other companies and CSRF."""

from __future__ import annotations

from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.e2e.test_web_imports import cells, web_client
from tests.integration.test_settlements import DATA, golden_day

GOLDEN = (DATA / "bancoestado-rendicion.txt").read_bytes()
FILE_NAME = "rendicion_caja-vecina_4321_20260302.txt"


def test_generate_list_download_and_rerun(api: Api) -> None:
    acme = golden_day(api.uow, api.acme, ROOT_ACTOR, api.clock)
    operator = web_client(api, Role.OPERATOR)
    page = operator.get("/rendiciones")
    assert page.status_code == 200
    assert "No hay rendiciones." in page.text
    assert f'<option value="{acme.caja_vecina}"' in page.text

    body = {"agreement_id": str(acme.caja_vecina), "accounting_date": "2026-03-02"}
    created = operator.post("/rendiciones", body)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/rendiciones/1"
    detail = operator.get("/rendiciones/1")
    assert f"Rendición generada: {FILE_NAME} (versión 1, 4 pago(s))." in detail.text
    assert 'id="settlement-status">Generada<' in detail.text
    assert "Este archivo no tiene entregas" in detail.text

    listing = operator.get("/rendiciones")
    assert cells(listing.text, "settlements-table") == [
        [
            "02-03-2026",
            "Caja Vecina (convenio 4321)",
            "1",
            FILE_NAME,
            "4",
            "$ 113.490",
            "Generada",
            "02-03-2026 19:30",
        ]
    ]
    filtered = operator.get("/rendiciones", params={"fecha": "2026-03-03"})
    assert "No hay rendiciones con estos filtros." in filtered.text
    bad_filter = operator.get("/rendiciones", params={"fecha": "mañana"})
    assert bad_filter.status_code == 422
    assert "la fecha &#39;mañana&#39; no es válida (aaaa-mm-dd)" in bad_filter.text

    download = operator.get("/rendiciones/1/archivo")
    assert download.status_code == 200
    assert download.content == GOLDEN
    assert download.headers["content-type"] == "text/plain; charset=iso-8859-1"
    assert download.headers["content-disposition"] == f'attachment; filename="{FILE_NAME}"'

    # Unchanged day: the same file, no new version.
    api.clock.advance(minutes=5)
    again = operator.post("/rendiciones", body)
    assert again.status_code == 303
    assert again.headers["location"] == "/rendiciones/1"
    assert (
        f"Sin cambios desde la versión 1: se conserva {FILE_NAME}."
        in operator.get("/rendiciones/1").text
    )

    # Re-delivery needs a delivery target of the agreement.
    redeliver = operator.post("/rendiciones/1/reenviar")
    assert redeliver.status_code == 409
    assert "No se pudo reenviar: settlement file 1 has no enabled delivery target" in (
        redeliver.text
    )

    # The form's mistakes: a date in the future, a weekend, no agreement.
    future = operator.post("/rendiciones", {**body, "accounting_date": "2026-03-03"})
    assert future.status_code == 422
    assert "2026-03-03 is in the future for acme" in future.text
    saturday = operator.post("/rendiciones", {**body, "accounting_date": "2026-02-28"})
    assert saturday.status_code == 422
    assert "2026-02-28 is not a business day for acme" in saturday.text
    nothing = operator.post("/rendiciones", {"accounting_date": "2026-03-02"})
    assert nothing.status_code == 422
    assert "elija el convenio" in nothing.text


def test_settlement_roles_companies_and_csrf(api: Api) -> None:
    acme = golden_day(api.uow, api.acme, ROOT_ACTOR, api.clock)
    operator = web_client(api, Role.OPERATOR)
    operator.get("/rendiciones")
    body = {"agreement_id": str(acme.caja_vecina), "accounting_date": "2026-03-02"}
    refused = operator.post("/rendiciones", body, csrf=False)
    assert refused.status_code == 403
    assert "Formulario no válido" in refused.text
    assert operator.post("/rendiciones", body).status_code == 303

    auditor = web_client(api, Role.AUDITOR)
    assert auditor.get("/rendiciones").status_code == 200
    assert 'method="post" action="/rendiciones"' not in auditor.get("/rendiciones").text
    assert auditor.get("/rendiciones/1").status_code == 200
    assert auditor.get("/rendiciones/1/archivo").content == GOLDEN
    assert auditor.post("/rendiciones", body).status_code == 403
    assert auditor.post("/rendiciones/1/reenviar").status_code == 403

    cashier = web_client(api, Role.CASHIER)
    for path in ("/rendiciones", "/rendiciones/1", "/rendiciones/1/archivo"):
        assert cashier.get(path).status_code == 403, path

    beta = web_client(api, Role.ADMIN, api.beta)
    assert beta.get("/rendiciones/1").status_code == 404
    assert beta.get("/rendiciones/1/archivo").status_code == 404
    assert beta.post("/rendiciones/1/reenviar").status_code == 404
    assert beta.post("/rendiciones", body).status_code == 422  # not its agreement
