"""The checkout transaction report and user-defined flat files through the real server, on
both backends: every eCollect filter, the columns, CSV and XLSX, flat files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import select

from recaudo.adapters.db.tables import CheckoutTransaction
from recaudo.services import coupons
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Role
from recaudo.services.coupons import CouponConfig
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.integration.test_coupons import AGREEMENT, GLN, add_transaction, coupon_service

HEADERS = [
    "Ticket",
    "Referencia 1",
    "Valor",
    "Moneda",
    "Empresa",
    "Servicio",
    "Fecha",
    "Sistema de pago",
    "Banco",
    "Estado",
    "Código de trazabilidad",
    "Correo del pagador",
    "Cupón",
]


@pytest.fixture
def admin(api: Api) -> Iterator[httpx.Client]:
    """Four transactions of service MAT, one minute apart from 2026-03-02 13:00 UTC:
    41 OK by PSE (Bancolombia), 42 NOT_AUTHORIZED by CARD, 43 CAPTURED with coupon
    000000000043, 44 CREATED."""
    uow, clock = api.uow, api.clock
    uni = create_company(
        uow,
        NewCompany("uni", "Universidad de Prueba S.A.S.", "CO", tax_id="900123456-7"),
        actor=ROOT_ACTOR,
        clock=clock,
    )
    code = coupon_service(uow, uni, ROOT_ACTOR, clock)
    coupons.configure_coupons(
        uow, uni.id, code, CouponConfig(GLN, AGREEMENT, 30), actor=ROOT_ACTOR, clock=clock
    )
    for ticket in (41, 42, 43, 44):
        add_transaction(uow, uni, code, ticket, ticket * 1_000_000, clock)
        clock.advance(minutes=1)
    with uow:
        txs = {t.ticket: t for t in uow.session.scalars(select(CheckoutTransaction)).all()}
        txs[41].state, txs[41].means, txs[41].bank = "OK", "PSE", "BANCOLOMBIA"
        txs[41].trace_code, txs[41].payer_email = "1007202603021300000001", "ana@example.co"
        txs[42].state, txs[42].means, txs[42].bank = "NOT_AUTHORIZED", "CARD", "DAVIVIENDA"
        txs[42].first_reference = "=1+1"  # a formula stays text in CSV
        uow.commit()
    coupons.issue_coupon(uow, uni.id, 43, actor=ROOT_ACTOR, clock=clock)
    api.issue(uni, Role.AUDITOR, "uni_auditor")
    # A flat file is defined in a POST body: writing roles only.
    api.issue(uni, Role.OPERATOR, "uni_operator")
    yield api.client("uni_auditor")


def tickets(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["ticket"] for item in response.json()["items"]]


def test_report_page_and_columns(admin: httpx.Client) -> None:
    response = admin.get("/checkout/reports/transactions")
    assert tickets(response) == [44, 43, 42, 41]
    body = response.json()
    assert body["total"] == 4
    assert body["items"][3] == {
        "ticket": 41,
        "first_reference": "1020304050",
        "amount": "410000.00",
        "currency": "COP",
        "company": "Universidad de Prueba S.A.S.",
        "service_code": "MAT",
        "service": "Matrícula 2027-1",
        "date": body["items"][3]["date"],
        "means": "PSE",
        "bank": "BANCOLOMBIA",
        "state": "OK",
        "trace_code": "1007202603021300000001",
        "payer_email": "ana@example.co",
        "coupon": None,
    }
    assert body["items"][3]["date"].startswith("2026-03-02T13:00:00")
    assert body["items"][1]["coupon"] == "000000000043"
    assert body["items"][1]["state"] == "CAPTURED"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "MAT"}, [44, 43, 42, 41]),
        ({"service": "OTRO"}, []),
        ({"state": "OK"}, [41]),
        ({"state": "CAPTURED"}, [43]),
        ({"means": "CARD"}, [42]),
        ({"bank": "BANCOLOMBIA"}, [41]),
        ({"confirmation": "1007202603021300000001"}, [41]),
        ({"coupon": "000000000043"}, [43]),
        ({"ticket": "44"}, [44]),
        ({"since": "2026-03-02T13:01:00Z"}, [44, 43, 42]),
        ({"until": "2026-03-02T13:02:00Z"}, [42, 41]),
        ({"since": "2026-03-02T13:01:00Z", "until": "2026-03-02T13:03:00Z"}, [43, 42]),
        ({"state": "OK", "means": "CARD"}, []),
        ({"page_size": "2", "page": "2"}, [42, 41]),
    ],
)
def test_report_filters(admin: httpx.Client, params: dict[str, str], expected: list[int]) -> None:
    assert tickets(admin.get("/checkout/reports/transactions", params=params)) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "PAGADO"}, "state"),
        ({"since": "2026-03-02T14:00:00Z", "until": "2026-03-02T13:00:00Z"}, "since"),
        ({"ticket": "0"}, "ticket"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_report_refusals(admin: httpx.Client, params: dict[str, str], field: str) -> None:
    response = admin.get("/checkout/reports/transactions", params=params)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def _csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_export_csv_and_xlsx(admin: httpx.Client) -> None:
    rows = _csv(admin.get("/checkout/reports/transactions/export", params={"state": "OK"}))
    assert rows[0] == HEADERS
    assert rows[1:] == [
        [
            "41",
            "1020304050",
            "410000.00",
            "COP",
            "Universidad de Prueba S.A.S.",
            "Matrícula 2027-1",
            rows[1][6],
            "PSE",
            "BANCOLOMBIA",
            "OK",
            "1007202603021300000001",
            "ana@example.co",
            "",
        ]
    ]
    assert rows[1][6].startswith("2026-03-02T13:00:00")
    everything = _csv(admin.get("/checkout/reports/transactions/export"))
    assert [r[0] for r in everything[1:]] == ["41", "42", "43", "44"]  # oldest first
    assert everything[2][1] == "'=1+1"
    assert everything[3][12] == "000000000043"

    response = admin.get("/checkout/reports/transactions/export", params={"format": "xlsx"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="transacciones-2026-03-02.xlsx"'
    )
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == HEADERS
    assert [v[0] for v in values[1:]] == [41, 42, 43, 44]
    assert values[3][9] == "CAPTURED"


def test_flat_file(admin: httpx.Client, api: Api) -> None:
    denied = admin.post("/checkout/reports/flat-file", json={"fields": []})
    assert denied.status_code == 403
    admin = api.client("uni_operator")
    body: dict[str, Any] = {
        "filters": {"service": "MAT", "until": "2026-03-02T13:03:00Z"},
        "fields": [
            {"kind": "fixed", "header": "Convenio", "value": AGREEMENT},
            {"kind": "column", "header": "Ticket", "value": "ticket"},
            {"kind": "reference", "header": "Periodo", "value": "2"},
            {"kind": "reference", "header": "Ref 5", "value": "5"},
            {"kind": "column", "header": "Valor", "value": "amount"},
            {"kind": "column", "header": "Estado", "value": "state"},
        ],
    }
    rows = _csv(admin.post("/checkout/reports/flat-file", json=body))
    assert rows == [
        ["Convenio", "Ticket", "Periodo", "Ref 5", "Valor", "Estado"],
        [AGREEMENT, "41", "2027-1", "", "410000.00", "OK"],
        [AGREEMENT, "42", "2027-1", "", "420000.00", "NOT_AUTHORIZED"],
        [AGREEMENT, "43", "2027-1", "", "430000.00", "CAPTURED"],
    ]
    xlsx = admin.post("/checkout/reports/flat-file", json={**body, "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    assert [list(r) for r in sheet.iter_rows(values_only=True)][1] == [
        AGREEMENT,
        41,
        "2027-1",
        None,
        410000,
        "OK",
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ([], "fields"),
        ([{"kind": "column", "header": "X", "value": "colour"}], "fields[0].value"),
        ([{"kind": "reference", "header": "X", "value": "0"}], "fields[0].value"),
        ([{"kind": "formula", "header": "X", "value": "1"}], "kind"),
        ([{"kind": "fixed", "header": "", "value": "1"}], "header"),
    ],
)
def test_flat_file_refusals(admin: httpx.Client, api: Api, fields: list[Any], field: str) -> None:
    admin = api.client("uni_operator")
    response = admin.post("/checkout/reports/flat-file", json={"fields": fields})
    assert response.status_code == 422, response.text
    assert field in response.text


def test_control_characters_are_refused(admin: httpx.Client, api: Api) -> None:
    response = admin.get("/checkout/reports/transactions", params={"bank": "BANCO\x00"})
    assert response.status_code == 422, response.text
    assert "control characters" in response.text
    operator = api.client("uni_operator")
    for field in (
        {"kind": "fixed", "header": "A\x0b", "value": "1"},
        {"kind": "fixed", "header": "A", "value": "\x01"},
    ):
        for fmt in ("csv", "xlsx"):
            response = operator.post(
                "/checkout/reports/flat-file", json={"fields": [field], "format": fmt}
            )
            assert response.status_code == 422, response.text
            assert "control characters" in response.text
