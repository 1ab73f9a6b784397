"""Cartera pages through the real server, on both backends: customer search by national id
in any formatting or by name, the customer page (debts, payments with allocations,
credit, commitments, negotiations), the debt list with filters and CSV/XLSX export; role
and tenant refusals (another company's customer by URL is 404)."""

from __future__ import annotations

import io
from datetime import date

import openpyxl

from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.test_web_payments import cells, pay, web_client, world


def test_search_by_national_id_in_any_formatting_or_by_name(api: Api) -> None:
    ids = world(api)
    api.customer(api.acme, "9.876.543-3", "Pedro Rojas Pérez")
    cashier = web_client(api, Role.CASHIER)
    empty = cashier.get("/cartera")
    assert empty.status_code == 200 and "customers-table" not in empty.text
    assert "Ver todas las deudas" not in empty.text  # the debt list is not a cashier's
    for typed in ("12.345.678-5", "123456785", "12345678-5", " 12.345.678-5 "):
        found = cashier.get("/cartera", params={"q": typed})
        assert found.status_code == 200, typed
        assert cells(found.text, "customers-table") == [
            ["12.345.678-5", "Ana Lagos", "$ 15.000", "$ 0"]
        ], typed
        assert f'href="/cartera/clientes/{ids["ana"].id}"' in found.text
    by_name = cashier.get("/cartera", params={"q": "pérez"})
    assert [r[1] for r in cells(by_name.text, "customers-table")] == ["Pedro Rojas Pérez"]
    both = cashier.get("/cartera", params={"q": "a"})
    assert [r[1] for r in cells(both.text, "customers-table")] == ["Ana Lagos", "Pedro Rojas Pérez"]
    # A wrong check digit is no customer of ours (searched as text: nothing).
    wrong = cashier.get("/cartera", params={"q": "12.345.678-4"})
    assert wrong.status_code == 200
    assert "No se encontraron clientes para «12.345.678-4»." in wrong.text
    # beta's customer with the same RUT is never listed for acme.
    assert "Beto Beta" not in cashier.get("/cartera", params={"q": "12345678-5"}).text


def test_customer_page(api: Api) -> None:
    ids = world(api)
    ana = ids["ana"].id
    api.debt(api.acme, ids["ana"], "A-0", "800", date(2025, 12, 1), status="cancelled")
    paid = pay(api, api.acme, ana, "10500", "caja-1")  # A-1 paid, 500 to A-2
    credit = pay(api, api.acme, ana, "4700", "caja-2")  # A-2 paid (4500), 200 credit
    operator = web_client(api, Role.OPERATOR)
    page = operator.get(f"/cartera/clientes/{ana}")
    assert page.status_code == 200
    assert '<div class="value" id="deuda-pendiente">$ 0</div>' in page.text
    assert '<div class="value" id="saldo-favor">$ 200</div>' in page.text
    assert "Sin deudas pendientes." in page.text
    assert cells(page.text, "closed-debts") == [
        ["A-2", "Servicio", "10-02-2026", "$ 5.000", "$ 5.000", "Pagada"],
        ["A-1", "Servicio", "10-01-2026", "$ 10.000", "$ 10.000", "Pagada"],
        ["A-0", "Servicio", "01-12-2025", "$ 800", "$ 0", "Anulada"],
    ]
    rows = cells(page.text, "customer-payments")
    assert [r[0] for r in rows] == [str(credit), str(paid)]
    assert rows[0][4:] == ["$ 4.700", "A-2: $ 4.500 Saldo a favor: $ 200", "Aplicado"]
    assert rows[1][4:] == ["$ 10.500", "A-1: $ 10.000 A-2: $ 500", "Aplicado"]
    assert f'href="/pagos/{paid}"' in page.text
    assert "Sin compromisos de pago." in page.text and "Sin negociaciones." in page.text
    assert f'href="/pagos/nuevo?cliente={ana}"' in page.text

    cashier = web_client(api, Role.CASHIER)
    seen = cashier.get(f"/cartera/clientes/{ana}")
    assert seen.status_code == 200
    assert f'href="/pagos/{paid}/recibo"' in seen.text  # receipts, not the detail
    assert "negotiations-table" not in seen.text and "Negociaciones" not in seen.text

    auditor = web_client(api, Role.AUDITOR)
    assert "Registrar pago" not in auditor.get(f"/cartera/clientes/{ana}").text


def test_another_companys_customer_is_not_found(api: Api) -> None:
    ids = world(api)
    for role in (Role.ADMIN, Role.CASHIER):
        client = web_client(api, role)
        response = client.get(f"/cartera/clientes/{ids['beto'].id}")
        assert response.status_code == 404
        assert "No encontrado" in response.text and "Beto" not in response.text
        assert client.get("/cartera/clientes/999999").status_code == 404
    beta_admin = web_client(api, Role.ADMIN, api.beta)
    assert beta_admin.get(f"/cartera/clientes/{ids['ana'].id}").status_code == 404
    assert beta_admin.get(f"/cartera/clientes/{ids['beto'].id}").status_code == 200


def test_debt_list_filters_and_export(api: Api) -> None:
    ids = world(api)
    pedro = api.customer(api.acme, "9.876.543-3", "Pedro Rojas")
    api.debt(api.acme, pedro, "P-1", "2500", date(2026, 2, 1))
    pay(api, api.acme, ids["ana"].id, "10000", "caja-1")  # A-1 paid
    auditor = web_client(api, Role.AUDITOR)
    page = auditor.get("/cartera/deudas")
    assert page.status_code == 200
    assert cells(page.text, "debts-table") == [
        ["A-1", "Ana Lagos 12.345.678-5", "10-01-2026", "$ 10.000", "$ 0", "Pagada"],
        ["P-1", "Pedro Rojas 9.876.543-3", "01-02-2026", "$ 2.500", "$ 2.500", "Abierta"],
        ["A-2", "Ana Lagos 12.345.678-5", "10-02-2026", "$ 5.000", "$ 5.000", "Abierta"],
    ]  # beta's B-1 is not there

    def refs(**params: str) -> list[str]:
        response = auditor.get("/cartera/deudas", params=params)
        assert response.status_code == 200, response.text
        if "debts-table" not in response.text:
            return []
        return [r[0] for r in cells(response.text, "debts-table")]

    assert refs(estado="payable") == ["P-1", "A-2"]
    assert refs(estado="paid") == ["A-1"]
    assert refs(vence_desde="2026-02-01", vence_hasta="2026-02-09") == ["P-1"]
    assert refs(monto_min="2500", monto_max="5000") == ["P-1", "A-2"]
    assert refs(estado="written_off") == []
    bad = auditor.get(
        "/cartera/deudas", params={"vence_desde": "2026-03-01", "vence_hasta": "2026-02-01"}
    )
    assert bad.status_code == 422
    assert "El rango de fechas termina antes de comenzar." in bad.text

    csv = auditor.get("/cartera/deudas/exportar", params={"formato": "csv", "estado": "payable"})
    assert csv.status_code == 200
    assert csv.headers["content-disposition"] == 'attachment; filename="deudas.csv"'
    assert csv.content.decode("utf-8-sig").splitlines() == [
        "id_deuda,rut_cliente,cliente,concepto,emision,vencimiento,monto,pagado,saldo,moneda,estado",
        "P-1,9.876.543-3,Pedro Rojas,Servicio,,2026-02-01,2500,0,2500,CLP,open",
        "A-2,12.345.678-5,Ana Lagos,Servicio,,2026-02-10,5000,0,5000,CLP,open",
    ]
    xlsx = auditor.get("/cartera/deudas/exportar", params={"formato": "xlsx", "estado": "paid"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[1][:3] == ["A-1", "12.345.678-5", "Ana Lagos"]
    assert rows[1][6:] == [10000, 10000, 0, "CLP", "paid"]

    cashier = web_client(api, Role.CASHIER)
    assert cashier.get("/cartera/deudas").status_code == 403
    assert cashier.get("/cartera/deudas/exportar").status_code == 403
