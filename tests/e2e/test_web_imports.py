"""Importaciones pages through the real server, on both backends: upload (plain form post
and htmx), the report with its rejected rows and reasons, the rejected rows CSV,
duplicates, role refusals and CSRF refusals."""

from __future__ import annotations

import re

import httpx

from recaudo.adapters.db.tables import Company
from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.webauth import WebClient, add_user

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


def web_client(api: Api, role: Role, company: Company | None = None) -> WebClient:
    """A signed-in back-office client of `company` (acme by default) with `role`."""
    company = company or api.acme
    email = f"{role.value}@{company.slug}.example"
    add_user(api.uow, api.clock, company, role, email)
    client = WebClient(api.url)
    api._clients.append(client.http)
    return client.signed_in(email)


def upload(
    client: WebClient,
    content: bytes,
    *,
    name: str = "deudas.csv",
    mode: str = "upsert",
    htmx: bool = False,
    csrf: str | None = None,
    **fields: str,
) -> httpx.Response:
    """Post the import form: as a plain form (token in a field) or as htmx does it
    (token in the X-CSRF-Token header, HX-Request)."""
    data = {"mode": mode, **fields}
    headers: dict[str, str] = {}
    token = client.csrf if csrf is None else csrf
    assert token is not None
    if htmx:
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
    else:
        data["csrf_token"] = token
    return client._send(
        "POST",
        "/importaciones",
        data=data,
        files={"file": (name, content, "text/csv")},
        headers=headers,
    )


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with `table_id`."""
    table = re.search(rf'<table[^>]* id="{table_id}".*?</table>', html, re.S)
    assert table is not None, f"no table {table_id}"
    body = table.group(0).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)
        ]
        for r in rows
    ]


def test_upload_form_post_then_report(api: Api) -> None:
    operator = web_client(api, Role.OPERATOR)
    page = operator.get("/importaciones")
    assert page.status_code == 200
    assert 'name="mode" value="upsert"' in page.text
    assert "Todavía no hay importaciones." in page.text

    posted = upload(operator, GOOD)
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"] == "/importaciones/1"

    report = operator.get("/importaciones/1")
    assert report.status_code == 200
    assert "Importación 1 completada." in report.text  # the flash, shown once
    assert cells(report.text, "import-counts") == [
        ["Filas en el archivo", "2"],
        ["Deudas agregadas", "2"],
        ["Deudas actualizadas", "0"],
        ["Sin cambios", "0"],
        ["Deudas anuladas", "0"],
        ["Conflictos", "0"],
        ["Filas rechazadas", "0"],
        ["Clientes nuevos", "2"],
    ]
    assert "Ninguna fila rechazada ni en conflicto." in report.text
    assert "rechazadas.csv" not in report.text
    assert "Importación 1 completada." not in operator.get("/importaciones/1").text

    listing = operator.get("/importaciones")
    assert cells(listing.text, "recent-imports") == [
        [
            "1",
            "02-03-2026 10:00",  # the company's time zone (Santiago, UTC-3)
            "deudas.csv",
            "Agregar y actualizar",
            "Completada",
            "2",
            "2",
            "0",
            "0",
            "0",
            "0",
        ]
    ]

    # The same bytes again: nothing changes, the report of the first import is shown.
    again = upload(operator, GOOD, name="otra-vez.csv")
    assert again.status_code == 303
    assert again.headers["location"] == "/importaciones/1"
    shown = operator.get("/importaciones/1")
    assert "Este archivo ya se importó (importación 1); no cambió nada." in shown.text


def test_bad_rows_reject_the_file_and_the_report_lists_them(api: Api) -> None:
    operator = web_client(api, Role.OPERATOR)
    operator.get("/importaciones")
    posted = upload(operator, BAD, name="malas.csv", htmx=True)
    # htmx: the whole page goes to the report.
    assert posted.status_code == 204
    assert posted.headers["hx-redirect"] == "/importaciones/1"

    report = operator.get("/importaciones/1")
    assert report.status_code == 200
    assert "2 de 3 filas tienen errores: no se importó nada." in report.text
    assert 'id="import-status">Rechazada: no se importó nada<' in report.text
    assert cells(report.text, "import-issues") == [
        [
            "Fila rechazada",
            "2",
            "rut",
            "B-2001",
            "&#39;12.345.678-4&#39; has a wrong check digit for RUT",
        ],
        [
            "Fila rechazada",
            "3",
            "monto",
            "B-2002",
            "&#39;12.5&#39; has more than 0 decimals for CLP",
        ],
    ]
    assert 'href="/importaciones/1/rechazadas.csv"' in report.text

    csv = operator.get("/importaciones/1/rechazadas.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        csv.headers["content-disposition"] == 'attachment; filename="importacion-1-rechazadas.csv"'
    )
    assert csv.content.decode("utf-8-sig").splitlines() == [
        "rut,nombre,id_deuda,vencimiento,monto,row_number,column,reason",
        "12.345.678-4,Juan Pérez,B-2001,2026-04-05,15000,2,rut,'12.345.678-4' has a wrong check "
        "digit for RUT",
        "11.111.111-1,María Soto,B-2002,2026-04-05,12.5,3,monto,'12.5' has more than 0 decimals "
        "for CLP",
    ]
    # Nothing was imported.
    assert api.client("acme_admin").get("/debts").json()["total"] == 0

    # skip_invalid: the good row goes in, the two bad ones are reported.
    kept = upload(operator, BAD, name="malas.csv", skip_invalid="1")
    assert kept.status_code == 303
    assert kept.headers["location"] == "/importaciones/2"
    second = operator.get("/importaciones/2")
    assert cells(second.text, "import-counts")[1] == ["Deudas agregadas", "1"]
    assert cells(second.text, "import-counts")[6] == ["Filas rechazadas", "2"]


def test_unreadable_files_are_refused_on_the_form(api: Api) -> None:
    operator = web_client(api, Role.OPERATOR)
    operator.get("/importaciones")
    empty = upload(operator, b"", name="vacio.csv")
    assert empty.status_code == 422
    assert "elija un archivo de deudas (CSV o Excel) que no esté vacío" in empty.text
    no_header = upload(operator, b"a,b\n1,2\n", name="raro.csv")
    assert no_header.status_code == 422
    assert "No se pudo importar el archivo:" in no_header.text
    bad_mode = upload(operator, GOOD, mode="todo")
    assert bad_mode.status_code == 422
    assert "elija el modo: agregar y actualizar, o reemplazar la cartera" in bad_mode.text
    # htmx: answered 200 so that htmx swaps the form with its error in place.
    swapped = upload(operator, b"", htmx=True)
    assert swapped.status_code == 200
    assert 'id="upload-error"' in swapped.text
    assert api.client("acme_admin").get("/debts").json()["total"] == 0


def test_roles_and_csrf(api: Api) -> None:
    operator = web_client(api, Role.OPERATOR)
    upload(operator, BAD)
    auditor = web_client(api, Role.AUDITOR)
    # The auditor reads the reports and the rejected rows, and has no upload form.
    listing = auditor.get("/importaciones")
    assert listing.status_code == 200
    assert 'id="import-form"' not in listing.text
    assert auditor.get("/importaciones/1").status_code == 200
    assert auditor.get("/importaciones/1/rechazadas.csv").status_code == 200
    refused = upload(auditor, GOOD)
    assert refused.status_code == 403
    assert "Acceso denegado" in refused.text

    cashier = web_client(api, Role.CASHIER)
    for path in ("/importaciones", "/importaciones/1", "/importaciones/1/rechazadas.csv"):
        assert cashier.get(path).status_code == 403, path

    # Another company's import is not found.
    beta = web_client(api, Role.ADMIN, api.beta)
    assert beta.get("/importaciones/1").status_code == 404
    assert beta.get("/importaciones/1/rechazadas.csv").status_code == 404

    # CSRF: a wrong token or none at all is refused, nothing imported.
    wrong = upload(operator, GOOD, csrf="not-the-token")
    assert wrong.status_code == 403
    assert "Formulario no válido" in wrong.text
    missing = operator._send(
        "POST",
        "/importaciones",
        data={"mode": "upsert"},
        files={"file": ("deudas.csv", GOOD, "text/csv")},
    )
    assert missing.status_code == 403
    assert operator.get("/importaciones/2").status_code == 404

    # Signed out: the sign-in page.
    anonymous = httpx.get(f"{api.url}/importaciones", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/ingresar?siguiente=%2Fimportaciones"
