"""Settlement files through the real HTTP server, on both backends."""

from __future__ import annotations

from datetime import date

from tests.e2e.conftest import ROOT_ACTOR, Api, assert_problem
from tests.integration.test_settlements import DATA, golden_day, set_layout

GOLDEN = (DATA / "bancoestado-rendicion.txt").read_bytes()


def test_run_list_show_and_download(api: Api) -> None:
    acme = golden_day(api.uow, api.acme, ROOT_ACTOR, api.clock)
    operator = api.client("acme_operator")
    body = {"agreement_id": acme.caja_vecina, "accounting_date": "2026-03-02"}

    created = operator.post("/settlements", json=body)
    assert created.status_code == 201, created.text
    run = created.json()
    file_id = run["id"]
    assert run == {
        "id": file_id,
        "agreement_id": acme.caja_vecina,
        "accounting_date": "2026-03-02",
        "version": 1,
        "layout": "bancoestado-rendicion",
        "file_name": "rendicion_caja-vecina_4321_20260302.txt",
        "media_type": "text/plain; charset=iso-8859-1",
        "sha256": run["sha256"],
        "size_bytes": len(GOLDEN),
        "payment_count": 4,
        "record_count": 7,
        "total": "113490",
        "currency": "CLP",
        "status": "generated",
        "generated_by": api.label("acme_operator"),
        "generated_at": "2026-03-02T22:30:05Z",
        "deleted_at": None,
        "created": True,
    }

    # A re-run later in the evening: same bytes, no new version, 200.
    api.clock.advance(hours=1)
    again = operator.post("/settlements", json=body)
    assert again.status_code == 200, again.text
    assert {**again.json(), "created": True} == run

    admin = api.client("acme_admin")
    download = admin.get(f"/settlements/{file_id}/file")
    assert download.status_code == 200
    assert download.content == GOLDEN
    assert download.headers["content-type"] == "text/plain; charset=iso-8859-1"
    assert download.headers["content-disposition"] == (
        'attachment; filename="rendicion_caja-vecina_4321_20260302.txt"'
    )
    assert download.headers["etag"] == f'"{run["sha256"]}"'

    shown = api.client("acme_auditor").get(f"/settlements/{file_id}")
    assert shown.status_code == 200
    assert shown.json() == {k: v for k, v in run.items() if k != "created"}

    # A second version (CSV) for paging and filters.
    set_layout(api.uow, acme.caja_vecina, "csv")
    csv_run = operator.post("/settlements", json=body)
    assert csv_run.status_code == 201, csv_run.text
    assert (csv_run.json()["version"], csv_run.json()["media_type"]) == (
        2,
        "text/csv; charset=utf-8",
    )
    csv_file = admin.get(f"/settlements/{csv_run.json()['id']}/file")
    assert csv_file.content == (DATA / "rendicion.csv").read_bytes()
    assert csv_file.headers["content-type"] == "text/csv; charset=utf-8"

    listing = admin.get("/settlements", params={"page_size": 1})
    assert listing.status_code == 200
    page = listing.json()
    assert (page["total"], page["page"], page["page_size"]) == (2, 1, 1)
    assert [i["version"] for i in page["items"]] == [2]
    assert 'rel="next"' in listing.headers["link"]
    filtered = admin.get(
        "/settlements", params={"agreement_id": acme.caja_vecina, "accounting_date": "2026-03-02"}
    ).json()
    assert [i["version"] for i in filtered["items"]] == [2, 1]
    assert admin.get("/settlements", params={"accounting_date": "2026-03-03"}).json()["total"] == 0
    assert admin.get("/settlements", params={"agreement_id": acme.internet}).json()["total"] == 0


def test_errors_are_problems(api: Api) -> None:
    acme = golden_day(api.uow, api.acme, ROOT_ACTOR, api.clock)
    body = {"agreement_id": acme.caja_vecina, "accounting_date": "2026-03-02"}
    assert_problem(
        api.client("acme_auditor").post("/settlements", json=body), 403, "permission_denied"
    )
    # Another company's agreement and files do not exist for beta.
    beta = api.client("beta_admin")
    assert_problem(
        beta.post("/settlements", json=body),
        404,
        "not_found",
        f"no agreement {acme.caja_vecina}",
    )
    created = api.client("acme_admin").post("/settlements", json=body).json()
    assert_problem(beta.get(f"/settlements/{created['id']}"), 404, "not_found")
    assert_problem(beta.get(f"/settlements/{created['id']}/file"), 404, "not_found")
    assert beta.get("/settlements").json()["total"] == 0

    admin = api.client("acme_admin")
    saturday = {"agreement_id": acme.caja_vecina, "accounting_date": "2026-02-28"}
    assert_problem(
        admin.post("/settlements", json=saturday),
        422,
        "validation_failed",
        "2026-02-28 is not a business day for acme: no payment has it as its accounting date",
    )
    future = {"agreement_id": acme.caja_vecina, "accounting_date": str(date(2026, 3, 3))}
    assert_problem(admin.post("/settlements", json=future), 422, "validation_failed")
    assert_problem(admin.post("/settlements", json={**body, "x": 1}), 422, "invalid_request")
    assert_problem(
        admin.post("/settlements", json={"agreement_id": 0, "accounting_date": "2026-03-02"}),
        422,
        "invalid_request",
    )
    assert_problem(admin.get("/settlements/999999"), 404, "not_found")
    assert_problem(admin.get("/settlements/0"), 422, "invalid_request")
    assert_problem(
        admin.get("/settlements", params={"accounting_date": "mañana"}), 422, "invalid_request"
    )

    assert "storage_path" not in created  # internal, never shown
    set_layout(api.uow, acme.caja_vecina, "no-such-layout")
    api.clock.advance(minutes=1)
    assert_problem(
        admin.post("/settlements", json=body),
        422,
        "validation_failed",
    )


def test_settlement_settings(api: Api) -> None:
    acme = golden_day(api.uow, api.acme, ROOT_ACTOR, api.clock)
    url = f"/agreements/{acme.caja_vecina}/settlement"
    admin = api.client("acme_admin")
    shown = admin.get(url)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "agreement_id": acme.caja_vecina,
        "layout": "bancoestado-rendicion",
        "time": "18:30",
        "enabled": True,
        "control_record": False,
    }
    changed = admin.put(url, json={"layout": "asobancaria-2001", "time": "19:05"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**shown.json(), "layout": "asobancaria-2001", "time": "19:05"}
    assert api.client("acme_auditor").get(url).json() == changed.json()
    # The next run writes the chosen layout.
    run = admin.post(
        "/settlements", json={"agreement_id": acme.caja_vecina, "accounting_date": "2026-03-02"}
    )
    assert run.json()["file_name"] == "asobancaria_caja-vecina_4321_20260302.txt"

    assert_problem(
        admin.put(url, json={"layout": "/etc/passwd"}),
        422,
        "validation_failed",
        "unknown layout '/etc/passwd' (one of asobancaria-2001, bancoestado-rendicion, csv, xlsx)",
    )
    assert_problem(admin.put(url, json={"time": "25:00"}), 422, "invalid_request")
    assert_problem(admin.put(url, json={"colour": "red"}), 422, "invalid_request")
    assert_problem(
        api.client("acme_operator").put(url, json={"enabled": False}), 403, "permission_denied"
    )
    assert_problem(api.client("beta_admin").get(url), 404, "not_found")
    assert_problem(api.client("beta_admin").put(url, json={"enabled": False}), 404, "not_found")
    assert admin.get(url).json() == changed.json()
