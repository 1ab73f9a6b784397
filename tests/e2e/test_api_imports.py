"""Debt file uploads through the real server: report, duplicate, rejection, rejected rows CSV."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from tests.e2e.conftest import TIMESTAMP, Api, assert_problem

GOOD = (
    "rut,nombre,id_deuda,vencimiento,monto,concepto\n"
    "12.345.678-5,Juan Pérez,B-1001,2026-04-05,15000,Internet abril\n"
    "11.111.111-1,María Soto,B-1002,05/04/2026,9990,Internet abril\n"
).encode()
BAD = (
    "rut,nombre,id_deuda,vencimiento,monto\n"
    "12.345.678-4,Juan Pérez,B-2001,2026-04-05,15000\n"
    "11.111.111-1,María Soto,B-2002,2026-04-05,12.5\n"
    "7.654.321-6,Pedro Rojas,B-2003,2026-04-05,100\n"
).encode()
BAD_ISSUES = [
    {
        "kind": "rejected",
        "row_number": 2,
        "column": "rut",
        "debt_external_id": "B-2001",
        "reason": "'12.345.678-4' has a wrong check digit for RUT",
    },
    {
        "kind": "rejected",
        "row_number": 3,
        "column": "monto",
        "debt_external_id": "B-2002",
        "reason": "'12.5' has more than 0 decimals for CLP",
    },
]


def upload(client: httpx.Client, name: str, content: bytes, **form: str) -> httpx.Response:
    return client.post(
        "/imports", files={"file": (name, content, "text/csv")}, data={"mode": "upsert", **form}
    )


def report(api: Api, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "import_id": 1,
        "status": "completed",
        "file_name": "deudas.csv",
        "file_sha256": hashlib.sha256(GOOD).hexdigest(),
        "mode": "upsert",
        "skip_invalid": False,
        "rows_total": 2,
        "added": 2,
        "updated": 0,
        "unchanged": 0,
        "cancelled": 0,
        "conflicts": 0,
        "rejected": 0,
        "customers_added": 2,
        "duplicate_of": None,
        "started_at": TIMESTAMP,
        "finished_at": TIMESTAMP,
        "actor": api.label("acme_operator"),
        "issues": [],
    }
    body.update(over)
    return body


def test_upload_then_duplicate(api: Api) -> None:
    client = api.client("acme_operator")
    created = upload(client, "deudas.csv", GOOD)
    assert created.status_code == 201, created.text
    assert created.json() == report(api)
    assert client.get("/imports/1").json() == report(api)

    debts = client.get("/debts").json()
    assert [(d["debt_id"], d["amount"], d["due_date"], d["concept"]) for d in debts["items"]] == [
        ("B-1001", "15000", "2026-04-05", "Internet abril"),
        ("B-1002", "9990", "2026-04-05", "Internet abril"),
    ]
    juan = client.get("/customers", params={"national_id": "123456785"}).json()["items"]
    assert [(c["name"], c["open_total"]) for c in juan] == [("Juan Pérez", "15000")]

    # The same bytes under another name and mode: recognised, nothing imported again.
    again = upload(client, "copia.csv", GOOD, mode="replace")
    assert again.status_code == 200, again.text
    assert again.json() == report(
        api,
        import_id=None,
        status="duplicate",
        file_name="copia.csv",
        mode="replace",
        rows_total=0,
        added=0,
        customers_added=0,
        duplicate_of=1,
    )
    assert client.get("/debts").json()["total"] == 2
    events = client.get("/audit-events", params={"entity_type": "debt_import"}).json()
    assert [(e["action"], e["entity_id"], e["after"]["added"]) for e in events["items"]] == [
        ("debts.imported", "1", 2)
    ]


def test_rejected_file_changes_nothing(api: Api) -> None:
    client = api.client("acme_operator")
    response = upload(client, "malo.csv", BAD)
    body = assert_problem(
        response, 422, "import_rejected", "2 of 3 rows are invalid; nothing was imported"
    )
    assert body["import_id"] == 1
    assert (body["rows_total"], body["rejected"]) == (3, 2)
    assert body["issues"] == BAD_ISSUES
    assert client.get("/debts").json()["total"] == 0
    assert client.get("/imports/1").json() == report(
        api,
        status="rejected",
        file_name="malo.csv",
        file_sha256=hashlib.sha256(BAD).hexdigest(),
        rows_total=3,
        added=0,
        customers_added=0,
        rejected=2,
        issues=BAD_ISSUES,
    )
    rejected = client.get("/imports/1/rejected.csv")
    assert rejected.status_code == 200
    assert rejected.headers["content-type"] == "text/csv; charset=utf-8"
    assert rejected.headers["content-disposition"] == (
        'attachment; filename="import-1-rejected.csv"'
    )
    assert rejected.content.decode("utf-8-sig") == (
        "rut,nombre,id_deuda,vencimiento,monto,row_number,column,reason\r\n"
        "12.345.678-4,Juan Pérez,B-2001,2026-04-05,15000,2,rut,"
        "'12.345.678-4' has a wrong check digit for RUT\r\n"
        "11.111.111-1,María Soto,B-2002,2026-04-05,12.5,3,monto,"
        "'12.5' has more than 0 decimals for CLP\r\n"
    )

    # With skip_invalid the good row goes in and the bad ones are reported.
    skipped = upload(client, "malo.csv", BAD, skip_invalid="true")
    assert skipped.status_code == 201, skipped.text
    assert skipped.json() == report(
        api,
        import_id=2,
        file_name="malo.csv",
        file_sha256=hashlib.sha256(BAD).hexdigest(),
        skip_invalid=True,
        rows_total=3,
        added=1,
        customers_added=1,
        rejected=2,
        issues=BAD_ISSUES,
    )
    assert [d["debt_id"] for d in client.get("/debts").json()["items"]] == ["B-2003"]


def test_unreadable_uploads(api: Api) -> None:
    client = api.client()
    assert_problem(upload(client, "vacio.csv", b""), 422, "validation_failed", "the file is empty")
    wrong = assert_problem(upload(client, "x.csv", b"foo,bar\n1,2\n"), 422, "validation_failed")
    assert wrong["detail"].startswith("missing required column(s): national_id")
    bad_mode = assert_problem(
        upload(client, "deudas.csv", GOOD, mode="merge"), 422, "validation_failed"
    )
    assert bad_mode["errors"] == [
        {"field": "mode", "message": "mode must be one of upsert, replace"}
    ]
    bad_flag = assert_problem(
        upload(client, "deudas.csv", GOOD, skip_invalid="maybe"), 422, "validation_failed"
    )
    assert bad_flag["errors"] == [
        {"field": "skip_invalid", "message": "skip_invalid must be true or false"}
    ]
    no_file = client.post("/imports", data={"mode": "upsert"}, files={"other": ("a", b"b")})
    assert_problem(no_file, 422, "validation_failed", "send exactly one file, in the `file` field")
    as_json = client.post("/imports", json={"mode": "upsert"})
    assert_problem(as_json, 415, "unsupported_media_type", "the body must be multipart/form-data")
    cut = client.post(
        "/imports",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nrut',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_problem(cut, 422, "validation_failed", "the multipart body is incomplete")
    assert_problem(client.get("/imports/9"), 404, "not_found")
    assert_problem(client.get("/imports/9/rejected.csv"), 404, "not_found")
    assert client.get("/debts").json()["total"] == 0
    assert list((api.container.settings.data_dir / "uploads").iterdir()) == []
