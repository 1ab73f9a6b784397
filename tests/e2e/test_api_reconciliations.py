"""Reconciliations through the real server: upload, summary, items, exports, refusals, scope."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest

from recaudo.adapters.db.tables import Payment
from tests.e2e.conftest import MAX_UPLOAD_BYTES, TIMESTAMP, Api, assert_problem
from tests.integration.reconciliation_builders import (
    ANA,
    JUANA,
    MARTA,
    PEDRO,
    UNKNOWN,
    World,
    build_world,
    online_day,
    rendicion,
)

# T1 matched, T2 amount differs, T3 only in Recaudo, T5 and T6 only in the bank,
# T1 twice (duplicated). REC-4 is in the file under its own id: matched.
LINES = [
    (JUANA, "134371", 1500, "T1", 2),
    (JUANA, "134372", 2500, "T1", 2),
    (PEDRO, "P-1", 1200, "T2", 1),
    (MARTA, "M-2", 700, "REC-4", 1),
    (ANA, "A-1", 5000, "T5", 1),
    (UNKNOWN, "X-9", 800, "T6", 1),
    (JUANA, "134371", 1500, "T1", 2),
    (JUANA, "134372", 2500, "T1", 2),
]


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api.uow, api.acme, api.clock)


def upload(api: Api, world: World, data: bytes, key: str = "acme_admin", **form: str) -> Any:
    return api.client(key).post(
        f"/agreements/{world.agreement.id}/reconciliations",
        files={"file": ("rendicion-20260302.txt", data, "text/plain")},
        data=form,
    )


def summary(world: World, data: bytes, **over: Any) -> dict[str, Any]:
    import hashlib

    body: dict[str, Any] = {
        "id": 1,
        "agreement_id": world.agreement.id,
        "accounting_date": "2026-03-02",
        "file_name": "rendicion-20260302.txt",
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "layout": "bancoestado-rendicion",
        "matched": 2,
        "only_bank": 2,
        "only_recaudo": 1,
        "amount_differs": 1,
        "duplicated": 1,
        "bank_total": "15700",
        "recaudo_total": "8700",
        "currency": "CLP",
        "created_by": "",
        "created_at": TIMESTAMP,
        "recorded_payments": [5, 6],
    }
    body.update(over)
    return body


def test_upload_summary_items_and_idempotence(api: Api, world: World) -> None:
    online_day(api.uow, world, api.clock)
    data = rendicion(LINES)
    response = upload(api, world, data)
    assert response.status_code == 201, response.text
    label = api.label("acme_admin")
    assert response.json() == summary(world, data, created_by=label)

    client = api.client()
    assert client.get("/reconciliations/1").json() == summary(
        world, data, created_by=label, recorded_payments=[]
    )
    items = client.get("/reconciliations/1/items").json()
    assert items["total"] == 7
    assert [(i["kind"], i["transaction_id"], i["payment_id"]) for i in items["items"]] == [
        ("matched", "T1", 1),
        ("amount_differs", "T2", 2),
        ("matched", "REC-4", 4),
        ("only_bank", "T5", 5),
        ("only_bank", "T6", 6),
        ("duplicated", "T1", None),
        ("only_recaudo", "T3", 3),
    ]
    assert items["items"][1] == {
        "id": 2,
        "kind": "amount_differs",
        "payment_id": 2,
        "transaction_id": "T2",
        "reference": "P-1",
        "bank_amount": "1200",
        "recaudo_amount": "1000",
        "paid_on": "2026-03-02",
        "line_no": 4,
        "detail": "bank 1200, Recaudo 1000",
    }
    only_bank = client.get("/reconciliations/1/items", params={"kind": "only_bank"})
    assert [i["transaction_id"] for i in only_bank.json()["items"]] == ["T5", "T6"]
    paged = client.get("/reconciliations/1/items", params={"page_size": 3})
    assert 'rel="next"' in paged.headers["link"]
    assert [i["line_no"] for i in paged.json()["items"]] == [2, 4, 5]

    # The same file again records nothing: the two bank-only payments exist once.
    again = upload(api, world, data)
    assert again.status_code == 201
    assert again.json() == summary(
        world, data, id=2, created_by=label, recorded_payments=[], recaudo_total="14500"
    )
    with api.uow:
        assert api.uow.session.query(Payment).count() == 6
    listed = client.get("/reconciliations", params={"agreement_id": world.agreement.id}).json()
    assert [r["id"] for r in listed["items"]] == [2, 1]
    exceptions = client.get("/exceptions").json()["items"]
    assert [(e["payment_id"], e["reason"]) for e in exceptions] == [
        (6, "not_notified"),
        (5, "not_notified"),
    ]


def test_exports_in_spanish(api: Api, world: World) -> None:
    online_day(api.uow, world, api.clock)
    assert upload(api, world, rendicion(LINES)).status_code == 201
    client = api.client("acme_auditor")
    csv = client.get("/reconciliations/1/export", params={"kind": "amount_differs"})
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == 'attachment; filename="reconciliation-1.csv"'
    assert (
        csv.content
        == (
            "\ufeffTipo,Transacción,Referencia,Monto banco,Monto Recaudo,Fecha,Línea,Pago,"
            "Detalle\r\n"
            'Monto distinto,T2,P-1,1200,1000,2026-03-02,4,2,"bank 1200, Recaudo 1000"\r\n'
        ).encode()
    )
    xlsx = client.get("/reconciliations/1/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == [
        "Tipo",
        "Transacción",
        "Referencia",
        "Monto banco",
        "Monto Recaudo",
        "Fecha",
        "Línea",
        "Pago",
        "Detalle",
    ]
    assert [r[0] for r in rows[1:]] == [
        "Conciliado",
        "Monto distinto",
        "Conciliado",
        "Solo banco",
        "Solo banco",
        "Duplicado",
        "Solo Recaudo",
    ]


def test_a_file_that_does_not_conform_is_refused(api: Api, world: World) -> None:
    online_day(api.uow, world, api.clock)
    data = rendicion(LINES)
    lines = data.split(b"\r\n")
    lines[1] = lines[1][:71] + b"00000000012X0" + lines[1][84:]  # a letter in Monto Pagado
    response = upload(api, world, b"\r\n".join(lines))
    body = assert_problem(response, 422, "file_refused")
    assert body["detail"] == (
        "the file does not conform to layout bancoestado-rendicion (2 errors); nothing was recorded"
    )
    assert body["file_errors"] == [
        {
            "line": 2,
            "record": "detail",
            "field": "debt_amount",
            "start": 72,
            "end": 84,
            "message": "'00000000012X0' is not a number (digits only)",
        },
        {
            "line": 1,
            "record": None,
            "field": None,
            "start": 0,
            "end": 0,
            "message": "header total (sum of Monto Pagado): "
            "the file says 15700, its records give 14200",
        },
    ]
    assert body["errors"] == [
        {
            "field": "file",
            "message": "line 2, record detail, field debt_amount (columns 72-84): "
            "'00000000012X0' is not a number (digits only)",
        },
        {
            "field": "file",
            "message": "line 1: header total (sum of Monto Pagado): "
            "the file says 15700, its records give 14200",
        },
    ]
    assert all(e["field"] == "file" for e in body["errors"])
    assert api.client().get("/reconciliations").json()["total"] == 0
    with api.uow:
        assert api.uow.session.query(Payment).count() == 4


def test_bad_requests_and_scope(api: Api, world: World) -> None:
    data = rendicion(LINES[:1])
    assert_problem(upload(api, world, data, layout="/etc/passwd"), 422, "validation_failed")
    assert_problem(upload(api, world, data, accounting_date="2026-13-01"), 422, "validation_failed")
    assert_problem(
        upload(api, world, data, accounting_date="2026-03-03"),
        422,
        "validation_failed",
        "the file is for accounting date 2026-03-02, not 2026-03-03",
    )
    no_file = api.client().post(
        f"/agreements/{world.agreement.id}/reconciliations", files={"other": ("x", b"x")}
    )
    assert_problem(no_file, 422, "validation_failed")
    too_big = upload(api, world, b"2" * (MAX_UPLOAD_BYTES + 1))
    assert_problem(too_big, 413, "content_too_large")
    assert_problem(upload(api, world, data, key="acme_auditor"), 403, "permission_denied")
    assert_problem(upload(api, world, data, key="beta_admin"), 404, "not_found")
    assert upload(api, world, data, key="acme_operator").status_code == 201
    beta = api.client("beta_admin")
    assert_problem(beta.get("/reconciliations/1"), 404, "not_found")
    assert_problem(beta.get("/reconciliations/1/items"), 404, "not_found")
    assert_problem(beta.get("/reconciliations/1/export"), 404, "not_found")
    assert beta.get("/reconciliations").json()["total"] == 0
    assert api.client().get("/reconciliations/1/items", params={"kind": "x"}).status_code == 422
    assert (
        api.client().get("/reconciliations/1/export", params={"format": "pdf"}).status_code == 422
    )


def test_choose_the_layout(api: Api, world: World) -> None:
    path = f"/agreements/{world.agreement.id}/reconciliation-layout"
    response = api.client().put(path, json={"layout": "asobancaria-2001"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "agreement_id": world.agreement.id,
        "reconciliation_layout": "asobancaria-2001",
        "layout_in_use": "asobancaria-2001",
    }
    # A bancoestado file is now read as Asobancaria: refused, nothing recorded.
    assert_problem(upload(api, world, rendicion(LINES)), 422, "file_refused")
    cleared = api.client().put(path, json={"layout": None})
    assert cleared.json()["layout_in_use"] == "bancoestado-rendicion"
    assert upload(api, world, rendicion(LINES)).status_code == 201
    assert_problem(
        api.client().put(path, json={"layout": "/etc/layout.toml"}), 422, "validation_failed"
    )
    assert_problem(
        api.client("acme_operator").put(path, json={"layout": None}), 403, "permission_denied"
    )
    assert_problem(api.client("beta_admin").put(path, json={"layout": None}), 404, "not_found")
