"""File exchanges through the real HTTP server, on both backends: configure an inbox, run
it, list its files with their reports, download a report; roles and isolation."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import TIMESTAMP, Api, assert_problem
from tests.integration.test_file_exchange import BAD, GOOD, add_target, drop, tree


def inbox_target(api: Api, tmp_path: Path) -> tuple[int, Path]:
    directory = tmp_path / "inbox"
    directory.mkdir()
    target = add_target(
        api.uow, api.acme, "in-dir", "local", {"directory": str(directory)}, api.clock
    )
    return target.id, directory


def test_configure_run_and_read_an_inbox(api: Api, tmp_path: Path) -> None:
    target_id, directory = inbox_target(api, tmp_path)
    admin = api.client("acme_admin")
    body = {
        "name": "deudas",
        "direction": "inbox",
        "target_id": target_id,
        "import_mode": "replace",
        "report_recipients": ["cobranza@acme.cl"],
        "poll_seconds": 120,
    }
    created = admin.post("/exchanges", json=body)
    assert created.status_code == 201, created.text
    exchange = created.json()
    exchange_id = exchange["id"]
    assert exchange == {
        "id": exchange_id,
        "name": "deudas",
        "direction": "inbox",
        "target_id": target_id,
        "target_name": "in-dir",
        "target_kind": "local",
        "import_mode": "replace",
        "file_format": "csv",
        "report_recipients": ["cobranza@acme.cl"],
        "poll_seconds": 120,
        "write_time": None,
        "enabled": True,
        "last_run_at": None,
        "created_at": TIMESTAMP,
    }
    assert_problem(admin.post("/exchanges", json=body), 409, "conflict")
    assert admin.get("/exchanges").json() == [exchange]

    drop(directory, "a_deudas.csv", GOOD, api.clock)
    drop(directory, "b_malo.csv", BAD, api.clock)
    ran = api.client("acme_operator").post(f"/exchanges/{exchange_id}/run")
    assert ran.status_code == 200, ran.text
    result = ran.json()
    assert (result["exchange_id"], result["direction"], result["skipped"]) == (
        exchange_id,
        "inbox",
        0,
    )
    good, bad = result["files"]
    assert good == {
        "id": good["id"],
        "exchange_id": exchange_id,
        "file_name": "a_deudas.csv",
        "sha256": good["sha256"],
        "status": "imported",
        "detail": "imported (replace): 3 rows, 3 added, 0 updated, 0 cancelled, 0 conflicts, "
        "0 rejected",
        "processed_at": TIMESTAMP,
        "debt_import_id": good["debt_import_id"],
        "report": {
            "rows_total": 3,
            "added": 3,
            "updated": 0,
            "unchanged": 0,
            "cancelled": 0,
            "conflicts": 0,
            "rejected": 0,
        },
        "accounting_date": None,
        "delivery_status": None,
    }
    assert (bad["status"], bad["report"]["rejected"], bad["report"]["added"]) == ("rejected", 1, 0)

    listed = api.client("acme_auditor").get(f"/exchanges/{exchange_id}/files")
    assert listed.status_code == 200
    assert listed.json()["total"] == 2
    assert [f["file_name"] for f in listed.json()["items"]] == ["b_malo.csv", "a_deudas.csv"]
    only = admin.get(f"/exchanges/{exchange_id}/files", params={"status": "rejected"}).json()
    assert [f["id"] for f in only["items"]] == [bad["id"]]
    assert admin.get(f"/exchanges/{exchange_id}/files/{good['id']}").json() == good

    report = admin.get(f"/exchanges/{exchange_id}/files/{bad['id']}/report")
    assert report.status_code == 200
    assert report.headers["content-type"] == "text/csv; charset=utf-8"
    assert report.headers["content-disposition"] == 'attachment; filename="b_malo.csv.report.csv"'
    assert report.content == tree(directory)["rejected/b_malo.csv.report.csv"]
    text = admin.get(f"/exchanges/{exchange_id}/files/{good['id']}/report")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text.startswith("File: a_deudas.csv\n")

    assert_problem(
        admin.post(f"/exchanges/{exchange_id}/run", json={"date": "2026-03-01"}),
        422,
        "validation_failed",
        "a date is only for an outbox",
    )
    changed = admin.patch(
        f"/exchanges/{exchange_id}",
        json={"enabled": False, "import_mode": "upsert", "report_recipients": []},
    )
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("enabled", "import_mode", "report_recipients")} == {
        "enabled": False,
        "import_mode": "upsert",
        "report_recipients": [],
    }
    assert_problem(
        admin.patch(f"/exchanges/{exchange_id}", json={"write_time": "06:00"}),
        422,
        "validation_failed",
        "write_time is for an outbox, not an inbox",
    )
    assert_problem(
        api.client("acme_operator").patch(f"/exchanges/{exchange_id}", json={"enabled": True}),
        403,
        "permission_denied",
    )
    removed = admin.delete(f"/exchanges/{exchange_id}")
    assert removed.status_code == 200
    assert_problem(
        admin.get(f"/exchanges/{exchange_id}"), 404, "not_found", f"no exchange {exchange_id}"
    )


def test_roles_isolation_and_errors(api: Api, tmp_path: Path) -> None:
    target_id, directory = inbox_target(api, tmp_path)
    body = {"name": "deudas", "direction": "inbox", "target_id": target_id}
    assert_problem(
        api.client("acme_operator").post("/exchanges", json=body),
        403,
        "permission_denied",
        "role operator may not do this (needs admin)",
    )
    admin = api.client("acme_admin")
    # The operator's local folder cannot be pointed elsewhere through the API (an inbox
    # moves every file it finds there); its other settings can change.
    moved = admin.patch(f"/delivery-targets/{target_id}", json={"settings": {"directory": "/etc"}})
    assert_problem(moved, 422, "validation_failed")
    renamed = admin.patch(f"/delivery-targets/{target_id}", json={"name": "entrada"})
    assert (renamed.status_code, renamed.json()["settings"]) == (200, {"directory": str(directory)})
    assert_problem(
        admin.post("/exchanges", json={**body, "target_id": 999}),
        404,
        "not_found",
        "no delivery target 999",
    )
    assert_problem(
        admin.post("/exchanges", json={**body, "direction": "sideways"}), 422, "invalid_request"
    )
    assert_problem(
        admin.post("/exchanges", json={**body, "direction": "outbox", "file_format": "pdf"}),
        422,
        "validation_failed",
    )
    exchange_id = admin.post("/exchanges", json=body).json()["id"]
    # An outbox's write time reads back as HH:MM local (default 23:30), like a cut-off.
    outbox = {**body, "name": "pagos", "direction": "outbox"}
    created = admin.post("/exchanges", json=outbox)
    assert (created.status_code, created.json()["write_time"]) == (201, "23:30")
    changed = admin.patch(f"/exchanges/{created.json()['id']}", json={"write_time": "06:15"})
    assert changed.json()["write_time"] == "06:15"

    assert_problem(
        api.client("acme_auditor").post(f"/exchanges/{exchange_id}/run"),
        403,
        "permission_denied",
    )
    beta = api.client("beta_admin")
    assert beta.get("/exchanges").json() == []
    assert_problem(beta.get(f"/exchanges/{exchange_id}"), 404, "not_found")
    assert_problem(beta.post(f"/exchanges/{exchange_id}/run"), 404, "not_found")
    assert_problem(beta.get(f"/exchanges/{exchange_id}/files"), 404, "not_found")
    assert_problem(beta.delete(f"/exchanges/{exchange_id}"), 404, "not_found")
    assert_problem(beta.post("/exchanges", json=body), 404, "not_found")

    # The inbox's directory vanished: 409, not 500.
    directory.rmdir()
    assert_problem(
        admin.post(f"/exchanges/{exchange_id}/run"),
        409,
        "conflict",
        f"the inbox cannot be read: directory {directory} does not exist",
    )
    assert_problem(admin.get(f"/exchanges/{exchange_id}/files/1/report"), 404, "not_found")
