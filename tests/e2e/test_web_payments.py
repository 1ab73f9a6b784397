"""Pagos pages through the real server, on both backends: the monitoring list with its
filters, pages and CSV/XLSX export; an office payment registered by a cashier with its
receipt (replays register nothing twice); a payment's detail with allocations and audit
trail; reversals; role, CSRF and tenant refusals."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import openpyxl

from recaudo.adapters.db.tables import Company, Customer, Payment
from recaudo.domain.payments import PaymentMethod
from recaudo.services.context import Role
from recaudo.services.payments import ApplyPayment, apply_payment
from tests.e2e.conftest import ROOT_ACTOR, Api
from tests.e2e.webauth import WebClient, add_user


def web_client(api: Api, role: Role, company: Company | None = None) -> WebClient:
    """A signed-in back-office client of `company` (acme by default) with `role`."""
    company = company or api.acme
    email = f"{role.value}@{company.slug}.example"
    add_user(api.uow, api.clock, company, role, email)
    client = WebClient(api.url)
    api._clients.append(client.http)
    return client.signed_in(email)


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with `table_id`."""
    table = re.search(rf'<table[^>]* id="{table_id}".*?</table>', html, re.S)
    assert table is not None, f"no table {table_id}"
    body = table.group(0).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            " ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)
        ]
        for r in rows
    ]


def pay(api: Api, company: Company, customer_id: int, amount: str, key: str, **kw: object) -> int:
    method = kw.pop("method", PaymentMethod.CASH)
    cmd = ApplyPayment(company.id, customer_id, amount, method, key, **kw)  # type: ignore[arg-type]
    return apply_payment(api.uow, cmd, actor=ROOT_ACTOR, clock=api.clock).payment.id


def at(hour: int) -> datetime:
    return datetime(2026, 3, 2, hour, tzinfo=UTC)


def world(api: Api) -> dict[str, Customer]:
    """Ana owes two debts in acme; Beto is beta's. The clock: Monday 02-03-2026 10:00."""
    ana = api.customer(api.acme, "12.345.678-5", "Ana Lagos")
    api.debt(api.acme, ana, "A-1", "10000", date(2026, 1, 10))
    api.debt(api.acme, ana, "A-2", "5000", date(2026, 2, 10))
    beto = api.customer(api.beta, "12.345.678-5", "Beto Beta")
    api.debt(api.beta, beto, "B-1", "7000", date(2026, 1, 10))
    return {"ana": ana, "beto": beto}


def test_cashier_registers_an_office_payment_and_prints_the_receipt(api: Api) -> None:
    ids = world(api)
    cashier = web_client(api, Role.CASHIER)
    assert cashier.get("/pagos").headers["location"] == "/pagos/nuevo"
    by_rut = cashier.get("/pagos/nuevo", params={"rut": "12345678-5"})
    assert by_rut.status_code == 200
    assert "Ana Lagos" in by_rut.text and f'name="cliente" value="{ids["ana"].id}"' in by_rut.text
    key = re.search(r'name="clave" value="([0-9a-f]+)"', by_rut.text)
    assert key is not None
    assert cells(by_rut.text, "deudas-pago") == [
        ["", "A-1 · Servicio", "10-01-2026", "$ 10.000"],
        ["", "A-2 · Servicio", "10-02-2026", "$ 5.000"],
    ]
    form = {"cliente": str(ids["ana"].id), "monto": "12000", "medio": "cash", "clave": key.group(1)}
    posted = cashier.post("/pagos/nuevo", form)
    assert posted.status_code == 303, posted.text
    receipt_url = posted.headers["location"]
    payment_id = int(receipt_url.split("/")[2])
    assert receipt_url == f"/pagos/{payment_id}/recibo"
    receipt = cashier.get(receipt_url)
    assert receipt.status_code == 200
    assert f"Pago N° {payment_id} registrado." in receipt.text
    assert f"Comprobante de pago N° {payment_id}" in receipt.text
    assert '<p class="total" id="monto-recibo">$ 12.000</p>' in receipt.text
    assert cells(receipt.text, "receipt-lines") == [["A-1", "$ 10.000"], ["A-2", "$ 2.000"]]
    assert "@media print" in receipt.text and "/static/receipt-print.js" in receipt.text
    assert "Ver detalle del pago" not in receipt.text  # the cashier has no detail page

    # The same form again (a double click, a reload): the same payment, nothing new.
    again = cashier.post("/pagos/nuevo", form)
    assert again.headers["location"] == receipt_url
    with api.uow:
        rows = api.uow.session.query(Payment).filter_by(company_id=api.acme.id).all()
        assert [(p.amount_minor, p.channel, p.method, p.recorded_by) for p in rows] == [
            (12000, "office", "cash", "user:cashier@acme.example")
        ]

    # Back in the browser, the same form with another amount: refused, a fresh key offered.
    changed = cashier.post("/pagos/nuevo", {**form, "monto": "13000"})
    assert changed.status_code == 409
    assert "Este formulario ya registró otro pago" in changed.text
    assert f'name="clave" value="{key.group(1)}"' not in changed.text

    # Not for a cashier: other methods, the list, the detail, reversals, exports.
    transfer = cashier.post("/pagos/nuevo", {**form, "medio": "transfer", "clave": "x1"})
    assert transfer.status_code == 422
    assert "Elija el medio de pago: efectivo o cheque." in transfer.text
    assert cashier.get(f"/pagos/{payment_id}").status_code == 403
    assert cashier.get("/pagos/exportar").status_code == 403
    denied = cashier.post(f"/pagos/{payment_id}/reversar", {"motivo": "no"})
    assert denied.status_code == 403


def test_form_errors_are_shown_in_spanish(api: Api) -> None:
    ids = world(api)
    operator = web_client(api, Role.OPERATOR)
    unknown = operator.get("/pagos/nuevo", params={"rut": "11.111.111-1"})
    assert unknown.status_code == 422
    assert "No hay ningún cliente con ese RUT o documento." in unknown.text
    invalid = operator.get("/pagos/nuevo", params={"rut": "12.345.678-4"})
    assert invalid.status_code == 422 and "El RUT o documento no es válido." in invalid.text
    form = {"cliente": str(ids["ana"].id), "medio": "cheque", "clave": "k-1"}
    bad = operator.post("/pagos/nuevo", {**form, "monto": "12.000,5"})
    assert bad.status_code == 422
    assert "Monto no válido" in bad.text and 'value="12.000,5"' in bad.text
    zero = operator.post("/pagos/nuevo", {**form, "monto": "0"})
    assert zero.status_code == 422
    # A debt that cannot take money: 409, the form again with the choice kept.
    api.debt(api.acme, ids["ana"], "A-9", "100", date(2026, 1, 1), status="paid")
    paid = operator.post("/pagos/nuevo", {**form, "monto": "100", "deudas": "A-9"})
    assert paid.status_code == 409
    assert "Una de las deudas elegidas ya no admite pagos." in paid.text
    other = operator.post("/pagos/nuevo", {**form, "cliente": str(ids["beto"].id), "monto": "100"})
    assert other.status_code == 404  # beta's customer does not exist for acme
    missing_csrf = operator.post(
        "/pagos/nuevo", {**form, "monto": "100", "csrf_token": "wrong"}, csrf=True
    )
    assert missing_csrf.status_code == 403
    with api.uow:
        assert api.uow.session.query(Payment).count() == 0


def test_monitoring_list_filters_pages_and_export(api: Api) -> None:
    ids = world(api)
    ana, cheque = ids["ana"].id, PaymentMethod.CHEQUE
    p1 = pay(api, api.acme, ana, "3000", "caja-1", paid_at=at(13))
    p2 = pay(api, api.acme, ana, "4500", "caja-2", method=cheque, paid_at=at(14))
    p3 = pay(api, api.acme, ana, "100", "caja-3", method=cheque, paid_at=at(15))
    pay(api, api.beta, ids["beto"].id, "999", "beta-1")
    auditor = web_client(api, Role.AUDITOR)
    page = auditor.get("/pagos")
    assert page.status_code == 200
    assert cells(page.text, "payments-table") == [
        [
            str(p3),
            "02-03-2026 12:00",
            "",
            "Oficina",
            "Cheque",
            "caja-3",
            "Ana Lagos 12.345.678-5",
            "$ 100",
            "Aplicado",
        ],
        [
            str(p2),
            "02-03-2026 11:00",
            "",
            "Oficina",
            "Cheque",
            "caja-2",
            "Ana Lagos 12.345.678-5",
            "$ 4.500",
            "Aplicado",
        ],
        [
            str(p1),
            "02-03-2026 10:00",
            "",
            "Oficina",
            "Efectivo",
            "caja-1",
            "Ana Lagos 12.345.678-5",
            "$ 3.000",
            "Aplicado",
        ],
    ]
    assert "Registrar pago en oficina" not in page.text  # an auditor does not register

    def ids_of(**params: str) -> list[str]:
        response = auditor.get("/pagos", params=params)
        assert response.status_code == 200, response.text
        return (
            [row[0] for row in cells(response.text, "payments-table")]
            if "payments-table" in response.text
            else []
        )

    assert ids_of(medio="cheque") == [str(p3), str(p2)]
    assert ids_of(monto_min="200", monto_max="4500") == [str(p2), str(p1)]
    assert ids_of(transaccion="caja-2") == [str(p2)]
    assert ids_of(desde="2026-03-02", hasta="2026-03-02", canal="office") == [
        str(p3),
        str(p2),
        str(p1),
    ]
    assert ids_of(hasta="2026-03-01") == []
    assert ids_of(estado="reversed") == []
    bad = auditor.get("/pagos", params={"desde": "02/03/2026"})
    assert bad.status_code == 422
    assert "Desde: la fecha debe tener el formato aaaa-mm-dd" in bad.text
    # htmx swaps only successful answers in: the same error with 200.
    swapped = auditor.get("/pagos", params={"desde": "x"}, headers={"HX-Request": "true"})
    assert swapped.status_code == 200
    assert "Desde: la fecha debe tener el formato aaaa-mm-dd" in swapped.text
    assert 'hx-get="/pagos" hx-target="#resultados" hx-select="#resultados"' in page.text
    inverted = auditor.get("/pagos", params={"monto_min": "5", "monto_max": "1"})
    assert "El monto mínimo es mayor que el máximo." in inverted.text

    exported = auditor.get("/pagos/exportar", params={"formato": "csv", "medio": "cheque"})
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"] == 'attachment; filename="pagos.csv"'
    assert exported.content.decode("utf-8-sig").splitlines() == [
        "id,fecha_pago,fecha_contable,canal,convenio_canal,medio,transaccion,rut_cliente,"
        "cliente,monto,moneda,estado",
        f"{p3},2026-03-02T15:00:00+00:00,,office,,cheque,caja-3,12.345.678-5,Ana Lagos,100,CLP,applied",  # noqa: E501
        f"{p2},2026-03-02T14:00:00+00:00,,office,,cheque,caja-2,12.345.678-5,Ana Lagos,4500,CLP,applied",  # noqa: E501
    ]
    xlsx = auditor.get("/pagos/exportar", params={"formato": "xlsx", "transaccion": "caja-1"})
    assert xlsx.headers["content-disposition"] == 'attachment; filename="pagos.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[1][0] == p1 and values[1][6:] == [
        "caja-1",
        "12.345.678-5",
        "Ana Lagos",
        3000,
        "CLP",
        "applied",
    ]
    assert auditor.get("/pagos/exportar", params={"formato": "pdf"}).status_code == 422

    # Pages of 50.
    for i in range(50):
        pay(api, api.acme, ana, "1", f"many-{i}", paid_at=at(16))
    first = auditor.get("/pagos")
    assert "53 pago(s): 1–50" in first.text and "Página 1 de 2" in first.text
    second = auditor.get("/pagos", params={"pagina": "2"})
    assert [r[0] for r in cells(second.text, "payments-table")] == [str(p3), str(p2), str(p1)]


def test_detail_audit_trail_and_reversal(api: Api) -> None:
    ids = world(api)
    payment_id = pay(api, api.acme, ids["ana"].id, "12000", "caja-1")
    beta_payment = pay(api, api.beta, ids["beto"].id, "999", "beta-1")
    operator = web_client(api, Role.OPERATOR)
    detail = operator.get(f"/pagos/{payment_id}")
    assert detail.status_code == 200
    assert cells(detail.text, "allocations-table") == [["A-1", "$ 10.000"], ["A-2", "$ 2.000"]]
    assert [r[1:] for r in cells(detail.text, "audit-table")][:1] == [
        ["Cambio de estado de deuda A-1", "test:root", "Abierta → Pagada"]
    ]
    assert [r[1:3] for r in cells(detail.text, "audit-table")][1:] == [
        ["Pago aplicado", "test:root"]
    ]
    assert f'action="/pagos/{payment_id}/reversar"' in detail.text
    assert operator.get(f"/pagos/{beta_payment}").status_code == 404
    assert operator.get(f"/pagos/{beta_payment}/recibo").status_code == 404

    no_reason = operator.post(f"/pagos/{payment_id}/reversar", {"motivo": "  "})
    assert no_reason.headers["location"] == f"/pagos/{payment_id}"
    assert "Indique el motivo de la reversa" in operator.get(f"/pagos/{payment_id}").text
    no_csrf = operator.post(f"/pagos/{payment_id}/reversar", {"motivo": "x"}, csrf=False)
    assert no_csrf.status_code == 403
    auditor = web_client(api, Role.AUDITOR)
    auditor_page = auditor.get(f"/pagos/{payment_id}")
    assert "reversar" not in auditor_page.text.lower().replace("reversado", "")
    assert auditor.post(f"/pagos/{payment_id}/reversar", {"motivo": "x"}).status_code == 403

    done = operator.post(f"/pagos/{payment_id}/reversar", {"motivo": "Cheque sin fondos"})
    assert done.status_code == 303
    after = operator.get(f"/pagos/{payment_id}")
    assert f"Pago N° {payment_id} reversado." in after.text
    assert '<dd id="estado-pago">Reversado</dd>' in after.text
    assert "Cheque sin fondos" in after.text
    assert [r[1] for r in cells(after.text, "audit-table")] == [
        "Cambio de estado de deuda A-1",
        "Pago aplicado",
        "Cambio de estado de deuda A-1",
        "Pago reversado",
    ]
    assert cells(after.text, "audit-table")[2][3] == "Pagada → Abierta"
    assert f'action="/pagos/{payment_id}/reversar"' not in after.text
    twice = operator.post(f"/pagos/{payment_id}/reversar", {"motivo": "otra vez"})
    assert twice.status_code == 303
    assert "El pago ya estaba reversado." in operator.get(f"/pagos/{payment_id}").text
    receipt = operator.get(f"/pagos/{payment_id}/recibo")
    assert '<p class="void">ANULADO</p>' in receipt.text


def test_pages_need_a_session(api: Api) -> None:
    anonymous = WebClient(api.url)
    api._clients.append(anonymous.http)
    for path in ("/pagos", "/pagos/nuevo", "/pagos/1", "/pagos/1/recibo", "/pagos/exportar"):
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ingresar?siguiente=")
