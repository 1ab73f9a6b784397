"""Coupons and the correspondent check-collection contract through the real HTTP server,
on both backends: issue a coupon with the admin API, download its PDF and scan it, then
a correspondent reads and applies it (replayed apply, tampered barcode, missing headers,
malformed bodies — always the contract's error shape, never a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pypdfium2
import pytest
import zxingcpp
from sqlalchemy import func, select

from recaudo.adapters.db.tables import CheckoutTransaction, Company, Debt, Payment
from recaudo.services import contract_clients, coupons
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Role
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.integration.test_coupons import AGREEMENT, GLN, add_transaction, coupon_service

PREFIX = "/collections-management"
# The frozen clock: 2026-03-02 13:00 UTC, 08:00 in Bogotá; Julian date 6061.
TX_ID = "APIF6061320000000001"
PROCESS_ID = "020000000001"
DUE = date(2026, 4, 1)  # 30 days after issue
BARCODE = f"415{GLN}8020000000000041\x1d39000001168375\x1d9620260401"
HRI = f"(415){GLN}(8020)000000000041(3900)0001168375(96)20260401"

HEADERS = {
    "X-Invoker-Channel": "13",
    "X-Invoker-BranchId": "1108",
    "X-Invoker-TerminalId": "PDS00017",
    "X-Invoker-UserIPAddress": "10.20.30.40",
    "X-Invoker-ServerIPAddress": "10.20.30.1",
    "X-Invoker-UserMACAddress": "00-00-00-00-00-00",
    "X-Invoker-ProcessDate": "2026-03-02",
    "X-Invoker-TxId": TX_ID,
    "X-Invoker-SessionKey": "WxN_AUabcdefghijklmnopqrstuvwx",
    "X-Invoker-Source": "18",
    "X-Invoker-Country": "CO",
    "X-Invoker-ProcessId": PROCESS_ID,
    "X-Invoker-subChannel": "07",
    "X-Invoker-User": "NEWCBSER",
    "X-Invoker-Action": "R",
}


def trn(**changes: Any) -> dict[str, Any]:
    """The document's request example, for coupon 41 read from its barcode."""
    body: dict[str, Any] = {
        "transactionHour": "15:37:59",
        "code": "123456789123456",
        "refId": AGREEMENT,
        "eanCode": BARCODE,
        "curAmt": {"amt": "000000000041"},
        "trnRqUID": "123456",
        "branchName": "MI OFICINA BETTY",
        "cityId": "25386",
        "city": "LA MESA",
        "stateProv": "25",
        "aditionalData": [{"name": "ref1", "value": "000000000041"}],
        "depAcctId": {"acctId": "12321414"},
        "totalCurAmt": {"amt": 1168375},
        "flagAnotherAmt": "0",
        "refType": "",
        "effDt": "20260401",
        "refName": "Matrícula",
    }
    body.update(changes)
    return {"trn": {k: v for k, v in body.items() if v is not None}}


def error(status: int, code: str, desc: str, kind: str = "OTR") -> tuple[int, dict[str, Any]]:
    return status, {
        "responseType": {"value": "ER"},
        "responseDetail": {"errorCode": code, "errorDesc": desc, "errorType": kind},
    }


@dataclass
class Corresponsal:
    api: Api
    company: Company
    admin: httpx.Client
    http: httpx.Client
    client_id: str
    client_secret: str
    token: str = ""

    def headers(self, **changes: str | None) -> dict[str, str]:
        if not self.token:
            response = self.http.post(
                f"{PREFIX}/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
            )
            assert response.status_code == 200, response.text
            self.token = response.json()["access_token"]
        values: dict[str, str | None] = {
            **HEADERS,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v is not None}

    def post(self, body: Any, **headers: str | None) -> httpx.Response:
        return self.http.post(f"{PREFIX}/v1/collection", json=body, headers=self.headers(**headers))

    def answer(self, response: httpx.Response) -> tuple[int, dict[str, Any]]:
        assert response.headers["content-type"] == "application/json"
        return response.status_code, response.json()

    def payments(self) -> int:
        with self.api.uow as uow:
            return uow.session.scalar(select(func.count()).select_from(Payment)) or 0


@pytest.fixture
def cb(api: Api) -> Iterator[Corresponsal]:
    """A Colombian university with Ana María's 1,168,375 COP tuition debt and the CREATED
    transaction (ticket 41) of a service that allows coupons."""
    uow, clock = api.uow, api.clock
    uni = create_company(
        uow,
        NewCompany("uni", "Universidad de Prueba S.A.S.", "CO", tax_id="900123456-7"),
        actor=ROOT_ACTOR,
        clock=clock,
    )
    ana = api.customer(uni, "1020304050", "Ana María Pérez")
    debt = api.debt(uni, ana, "MAT-2027-1", "1168375", date(2026, 12, 31))
    code = coupon_service(uow, uni, ROOT_ACTOR, clock)
    add_transaction(uow, uni, code, 41, 116_837_500, clock, customer=ana, debts=[debt])
    api.issue(uni, Role.ADMIN, "uni_admin")
    issued = contract_clients.create_client(uow, "uni", actor=ROOT_ACTOR, clock=clock)
    admin = api.client("uni_admin")
    settings = admin.put(
        f"/checkout/services/{code}/coupon-settings",
        json={"gln": GLN, "agreement_code": AGREEMENT, "due_days": 30},
    )
    assert settings.status_code == 200, settings.text
    assert settings.json() == {
        "service_code": "MAT",
        "gln": GLN,
        "agreement_code": AGREEMENT,
        "due_days": 30,
    }
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield Corresponsal(api, uni, admin, http, issued.client_id, issued.client_secret)


def _issue(cb: Corresponsal) -> dict[str, Any]:
    response = cb.admin.post("/coupons", json={"ticket": 41})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_issue_download_read_apply_and_replay(cb: Corresponsal) -> None:
    coupon = _issue(cb)
    created_at = coupon.pop("created_at")
    assert created_at.startswith("2026-03-02T13:00:00")
    assert coupon == {
        "number": "000000000041",
        "ticket": 41,
        "service_code": "MAT",
        "service_name": "Matrícula 2027-1",
        "references": [
            {"title": "Documento", "value": "1020304050"},
            {"title": "Periodo", "value": "2027-1"},
        ],
        "amount": "1168375.00",
        "currency": "COP",
        "due_date": "2026-04-01",
        "gln": GLN,
        "barcode": BARCODE,
        "human_readable": HRI,
        "state": "ISSUED",
        "approval_id": None,
        "payment_id": None,
        "paid_at": None,
    }
    with cb.api.uow as uow:
        tx = uow.session.scalar(select(CheckoutTransaction).where(CheckoutTransaction.ticket == 41))
        assert tx is not None and tx.state == "CAPTURED"
    # The PDF, scanned like a till would.
    pdf = cb.admin.get("/coupons/000000000041/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="cupon-000000000041.pdf"'
    image = pypdfium2.PdfDocument(pdf.content)[0].render(scale=3).to_pil()
    (scan,) = zxingcpp.read_barcodes(image)
    scanned = bytes(scan.bytes).decode("ascii")
    assert scanned == BARCODE

    # Read, with the scanned barcode as the till sends it.
    status, body = cb.answer(cb.post(trn(eanCode=scanned)))
    expected = {
        "responseType": {"value": "OK"},
        "trn": {
            "personName": {"fullName": "Ana María Pérez"},
            "approvalId": "",
            "aditionalData": {"curAmt": [{"name": "Valor a pagar", "value": 1168375}]},
            "pmtRefId": "000000000041",
            "dueDt": "2026-04-01",
            "flagUpdate": "0",
            "acctId": "000000000041",
            "refType": "",
        },
    }
    assert (status, body) == (200, expected)
    assert cb.payments() == 0

    # Apply.
    status, body = cb.answer(cb.post(trn(eanCode=scanned), **{"X-Invoker-Action": "C"}))
    assert status == 200
    with cb.api.uow as uow:
        (payment,) = uow.session.scalars(select(Payment)).all()
        assert (payment.channel, payment.external_id, payment.amount_minor) == (
            "corresponsal",
            TX_ID,
            116_837_500,
        )
        debt = uow.session.scalar(select(Debt).where(Debt.external_id == "MAT-2027-1"))
        assert debt is not None and debt.status == "paid"
        payment_id = payment.id
        approval = str(payment_id).rjust(20, "0")
    assert body == {**expected, "trn": {**expected["trn"], "approvalId": approval}}

    # Replayed (the till did not get the answer): the same answer, no second payment.
    replay = cb.answer(cb.post(trn(eanCode=scanned), **{"X-Invoker-Action": "C"}))
    assert replay == (200, body)
    assert cb.payments() == 1

    # Another transaction id for the paid coupon, and reading it again: refused.
    other = cb.post(
        trn(),
        **{
            "X-Invoker-Action": "C",
            "X-Invoker-TxId": "APIF6061320000000002",
            "X-Invoker-ProcessId": "020000000002",
        },
    )
    assert cb.answer(other) == error(
        409, "10001", "Error al ejecutar el PL: coupon 000000000041 is already paid"
    )
    assert cb.answer(cb.post(trn())) == error(
        409, "10001", "Error al ejecutar el PL: coupon 000000000041 is already paid"
    )
    assert cb.payments() == 1
    shown = cb.admin.get("/coupons/000000000041").json()
    assert (shown["state"], shown["approval_id"], shown["payment_id"]) == (
        "PAID",
        approval,
        payment_id,
    )


def test_typed_by_hand(cb: Corresponsal) -> None:
    _issue(cb)
    # No barcode: eanCode and effDt in spaces, totalCurAmt zeros, the reference typed.
    manual = trn(
        eanCode="   ",
        effDt="  ",
        totalCurAmt={"amt": 0},
        aditionalData=[{"name": "ref1", "value": "41"}],
    )
    status, body = cb.answer(cb.post(manual, **{"X-Invoker-Action": "C"}))
    assert status == 200
    assert body["trn"]["pmtRefId"] == "000000000041"
    assert body["trn"]["aditionalData"] == {"curAmt": [{"name": "Valor a pagar", "value": 1168375}]}
    assert cb.payments() == 1


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"eanCode": BARCODE.replace("39000001168375", "39000000001000")},
            error(
                422,
                "10001",
                "Error al ejecutar el PL: the scanned barcode does not match its coupon: amount",
            ),
        ),
        (
            {"eanCode": BARCODE.replace("9620260401", "9620261231")},
            error(
                422,
                "10001",
                "Error al ejecutar el PL: the scanned barcode does not match its coupon: due date",
            ),
        ),
        (
            {"eanCode": BARCODE.replace(GLN, "7709998726789")},
            error(
                422,
                "10001",
                "Error al ejecutar el PL: the scanned barcode does not match its coupon: GLN",
            ),
        ),
        (
            {"totalCurAmt": {"amt": 1000}},
            error(
                422,
                "10001",
                "Error al ejecutar el PL: coupon 000000000041 is paid with exactly "
                "1168375.00, not 1000",
            ),
        ),
        (
            {"effDt": "20260501"},
            error(
                422,
                "10001",
                "Error al ejecutar el PL: coupon 000000000041 is due 2026-04-01, not 2026-05-01",
            ),
        ),
        (
            {"flagAnotherAmt": "1"},
            error(422, "10001", "Error al ejecutar el PL: el cupon se paga por su valor exacto"),
        ),
        (
            {"refId": "999"},
            error(404, "00502", "CUENTA NO EXISTE. no agreement '999'", "DBA"),
        ),
        (
            {"aditionalData": [{"name": "ref1", "value": "77"}], "eanCode": ""},
            error(404, "00502", "CUENTA NO EXISTE. no coupon '77'", "DBA"),
        ),
    ],
)
def test_tampered_or_wrong_requests_are_refused(
    cb: Corresponsal, changes: dict[str, Any], expected: tuple[int, dict[str, Any]]
) -> None:
    _issue(cb)
    for action in ("R", "C"):
        assert cb.answer(cb.post(trn(**changes), **{"X-Invoker-Action": action})) == expected
    assert cb.payments() == 0


REQUIRED = [
    "X-Invoker-Channel",
    "X-Invoker-BranchId",
    "X-Invoker-TerminalId",
    "X-Invoker-UserIPAddress",
    "X-Invoker-ServerIPAddress",
    "X-Invoker-ProcessDate",
    "X-Invoker-TxId",
    "X-Invoker-SessionKey",
    "X-Invoker-Country",
    "X-Invoker-subChannel",
    "X-Invoker-User",
    "X-Invoker-Action",
]


@pytest.mark.parametrize("header", REQUIRED)
def test_missing_headers(cb: Corresponsal, header: str) -> None:
    response = cb.post(trn(), **{header: None})
    assert cb.answer(response) == error(
        400, "10002", f"El objeto de Entrada es nulo: header {header}"
    )


@pytest.mark.parametrize(
    ("headers", "desc"),
    [
        ({"X-Invoker-Channel": "14"}, "header X-Invoker-Channel: valor fijo 13"),
        ({"X-Invoker-BranchId": "1"}, "header X-Invoker-BranchId: valor fijo 1108"),
        ({"X-Invoker-Country": "CL"}, "header X-Invoker-Country: valor fijo CO"),
        ({"X-Invoker-subChannel": "7"}, "header X-Invoker-subChannel: valor fijo 07"),
        ({"X-Invoker-User": "OTRO"}, "header X-Invoker-User: valor fijo NEWCBSER"),
        ({"X-Invoker-Source": "19"}, "header X-Invoker-Source: valor fijo 18"),
        ({"X-Invoker-Action": "D"}, "header X-Invoker-Action: R (consulta) o C (aplicacion)"),
        (
            {"X-Invoker-ProcessDate": "02/03/2026"},
            "header X-Invoker-ProcessDate: formato AAAA-MM-DD",
        ),
        (
            {"X-Invoker-TxId": "APIF606132000001"},
            "header X-Invoker-TxId: APIF + fecha juliana (4) + codigo de banco 32 "
            "+ autorizacion (10)",
        ),
        (
            {"X-Invoker-TxId": "APIF6062320000000001"},
            "header X-Invoker-TxId: la fecha juliana 6062 no es la de X-Invoker-ProcessDate (6061)",
        ),
        (
            {"X-Invoker-ProcessId": "000000000001"},
            "header X-Invoker-ProcessId: son los ultimos 11 digitos de X-Invoker-TxId: "
            "020000000001",
        ),
        (
            {"X-Invoker-UserIPAddress": "terminal"},
            "header X-Invoker-UserIPAddress: no es una direccion IP",
        ),
    ],
)
def test_malformed_headers(cb: Corresponsal, headers: dict[str, str], desc: str) -> None:
    assert cb.answer(cb.post(trn(), **headers)) == error(
        400, "10007", f"Error al transformar: {desc}"
    )


def test_apply_needs_the_process_id(cb: Corresponsal) -> None:
    _issue(cb)
    response = cb.post(trn(), **{"X-Invoker-Action": "C", "X-Invoker-ProcessId": None})
    assert cb.answer(response) == error(
        400, "10002", "El objeto de Entrada es nulo: header X-Invoker-ProcessId"
    )
    # Reading does not need it.
    assert cb.post(trn(), **{"X-Invoker-ProcessId": None}).status_code == 200
    assert cb.payments() == 0


def test_credentials(cb: Corresponsal) -> None:
    response = cb.post(trn(), client_id=None)
    assert cb.answer(response) == error(
        401, "10401", "No autorizado: faltan los headers client_id y client_secret", "SEG"
    )
    assert response.headers["www-authenticate"] == "Bearer"
    bad = cb.answer(cb.post(trn(), Authorization="Bearer nope"))
    assert bad[0] == 401 and bad[1]["responseDetail"]["errorCode"] == "10401"


@pytest.mark.parametrize(
    ("content", "desc", "code"),
    [
        (b"", "El objeto de Entrada es nulo: body", "10002"),
        (b"{not json", "Error al transformar: body: no es JSON valido", "10007"),
        (b"[]", "Error al transformar: body: debe ser un objeto JSON", "10007"),
        (b"{}", "El objeto de Entrada es nulo: trn", "10002"),
        (b'{"trn": 5}', "Error al transformar: trn: debe ser un objeto", "10007"),
        (b'{"trn": {"trnRqUID": "123456"}}', "El objeto de Entrada es nulo: trn.refId", "10002"),
        (
            b'{"trn": {"refId": "ABC", "trnRqUID": "123456"}}',
            "Error al transformar: trn.refId: codigo de convenio numerico",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356"}}',
            "El objeto de Entrada es nulo: trn.trnRqUID",
            "10002",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "12"}}',
            "Error al transformar: trn.trnRqUID: 6 digitos",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456"}}',
            "El objeto de Entrada es nulo: trn.aditionalData ref1",
            "10002",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "aditionalData": {}}}',
            "Error al transformar: trn.aditionalData: lista de hasta 3 referencias",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "aditionalData": [7]}}',
            "Error al transformar: trn.aditionalData[0]: debe ser un objeto {name, value}",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "eanCode": "(415)123"}}',
            "Error al transformar: trn.eanCode: codigo de barras invalido: "
            "the barcode has no (8020)",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "curAmt": {"amt": "41"},'
            b' "totalCurAmt": {"amt": "muchos"}}}',
            "Error al transformar: trn.totalCurAmt.amt: debe ser un numero",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "curAmt": {"amt": "41"},'
            b' "totalCurAmt": {"amt": -5}}}',
            "Error al transformar: trn.totalCurAmt.amt: fuera de rango",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "curAmt": {"amt": "41"},'
            b' "effDt": "2026-13-45"}}',
            "Error al transformar: trn.effDt: no es una fecha",
            "10007",
        ),
        (
            b'{"trn": {"refId": "15907356", "trnRqUID": "123456", "curAmt": {"amt": "41"},'
            b' "flagAnotherAmt": "x"}}',
            "Error al transformar: trn.flagAnotherAmt: 0 o 1",
            "10007",
        ),
        (
            b'{"trn": {"refId": ["1"], "trnRqUID": "123456"}}',
            "Error al transformar: trn.refId: debe ser texto",
            "10007",
        ),
    ],
)
def test_malformed_bodies(cb: Corresponsal, content: bytes, desc: str, code: str) -> None:
    _issue(cb)
    for action in ("R", "C"):
        headers = {**cb.headers(**{"X-Invoker-Action": action}), "Content-Type": "application/json"}
        response = cb.http.post(f"{PREFIX}/v1/collection", content=content, headers=headers)
        assert cb.answer(response) == error(400, code, desc)
    assert cb.payments() == 0


def test_other_methods_and_media_types(cb: Corresponsal) -> None:
    response = cb.http.get(f"{PREFIX}/v1/collection", headers=cb.headers())
    assert cb.answer(response) == error(
        405, "10405", f"Metodo GET no permitido en {PREFIX}/v1/collection"
    )
    headers = {**cb.headers(), "Content-Type": "text/plain"}
    response = cb.http.post(f"{PREFIX}/v1/collection", content=b"x", headers=headers)
    assert cb.answer(response) == error(415, "10415", "El cuerpo debe ser application/json")


def test_coupon_api_refusals(cb: Corresponsal) -> None:
    assert cb.admin.post("/coupons", json={"ticket": 99}).json()["code"] == "not_found"
    assert cb.admin.get("/coupons/123").status_code == 404
    bad = cb.admin.put(
        "/checkout/services/MAT/coupon-settings",
        json={"gln": "7709998013712", "agreement_code": AGREEMENT},
    )
    assert bad.status_code == 422
    assert "check digit is 2, expected 1" in bad.text
    assert coupons.CHANNEL == "corresponsal"
