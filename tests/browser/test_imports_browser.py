"""Importaciones in Chromium: upload a debts file with bad rows through the htmx form,
read the report (counts, each rejected row with its reason), download the rejected rows;
then a good file. Screenshots of the upload page and of the report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.test_web_imports import BAD, GOOD

Shot = Callable[[Page, str], Path | None]


def choose_file(page: Page, name: str, content: bytes) -> None:
    page.get_by_label("Archivo", exact=True).set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": content}
    )


def test_upload_a_file_with_bad_rows_and_read_the_report(
    as_role: Callable[..., Page], api: Api, screenshot: Shot, tmp_path: Path
) -> None:
    page = as_role(Role.OPERATOR, name="Olga Díaz")
    page.get_by_role("link", name="Importaciones").click()
    expect(page.get_by_role("heading", name="Importaciones de deudas")).to_be_visible()
    expect(page.get_by_text("Todavía no hay importaciones.")).to_be_visible()
    # The progress element is there, hidden until an upload starts.
    expect(page.locator("#import-progress")).to_be_hidden()

    choose_file(page, "deudas-marzo.csv", BAD)
    page.get_by_label(re.compile("^Agregar y actualizar")).check()
    screenshot(page, "imports-upload")
    page.get_by_role("button", name="Importar").click()

    # htmx answers with HX-Redirect: the browser lands on the report.
    expect(page).to_have_url(re.compile(r"/importaciones/1$"))
    expect(page.get_by_role("heading", name="Importación 1: deudas-marzo.csv")).to_be_visible()
    expect(page.get_by_role("alert").first).to_contain_text(
        "2 de 3 filas tienen errores: no se importó nada."
    )
    expect(page.locator("#import-status")).to_have_text("Rechazada: no se importó nada")
    counts = page.locator("#import-counts")
    expect(counts.get_by_role("row", name="Filas en el archivo")).to_contain_text("3")
    expect(counts.get_by_role("row", name="Filas rechazadas")).to_contain_text("2")
    expect(counts.get_by_role("row", name="Deudas agregadas")).to_contain_text("0")
    issues = page.locator("#import-issues tbody tr")
    expect(issues).to_have_count(2)
    expect(issues.nth(0)).to_contain_text("12.345.678-4")
    expect(issues.nth(0)).to_contain_text("has a wrong check digit for RUT")
    expect(issues.nth(0).locator("td").nth(2)).to_have_text("rut")
    expect(issues.nth(1)).to_contain_text("'12.5' has more than 0 decimals for CLP")
    screenshot(page, "imports-report")

    with page.expect_download() as info:
        page.get_by_role("link", name="Descargar las filas rechazadas (CSV)").click()
    download = info.value
    assert download.suggested_filename == "importacion-1-rechazadas.csv"
    saved = tmp_path / "rechazadas.csv"
    download.save_as(saved)
    lines = saved.read_bytes().decode("utf-8-sig").splitlines()
    assert lines[0] == "rut,nombre,id_deuda,vencimiento,monto,row_number,column,reason"
    assert [line.split(",")[2] for line in lines[1:]] == ["B-2001", "B-2002"]

    # A good file: completed, and the list shows both imports, newest first.
    page.get_by_role("link", name="← Importaciones").click()
    choose_file(page, "deudas-buenas.csv", GOOD)
    page.get_by_role("button", name="Importar").click()
    expect(page).to_have_url(re.compile(r"/importaciones/2$"))
    expect(page.locator("#import-status")).to_have_text("Completada")
    expect(
        page.locator("#import-counts").get_by_role("row", name="Deudas agregadas")
    ).to_contain_text("2")
    page.get_by_role("link", name="← Importaciones").click()
    rows = page.locator("#recent-imports tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("deudas-buenas.csv")
    expect(rows.nth(1)).to_contain_text("deudas-marzo.csv")
    assert api.client("acme_admin").get("/debts").json()["total"] == 2


def test_a_refused_file_is_shown_in_place(as_role: Callable[..., Page]) -> None:
    page = as_role(Role.ADMIN)
    page.goto("/importaciones")
    choose_file(page, "raro.csv", b"a,b\n1,2\n")
    page.get_by_role("button", name="Importar").click()
    expect(page.locator("#upload-error")).to_contain_text("No se pudo importar el archivo:")
    expect(page).to_have_url(re.compile(r"/importaciones$"))
    # The swapped-in form works again.
    choose_file(page, "deudas.csv", GOOD)
    page.get_by_role("button", name="Importar").click()
    expect(page).to_have_url(re.compile(r"/importaciones/\d+$"))
    expect(page.locator("#import-status")).to_have_text("Completada")


def test_the_progress_bar_follows_the_upload(as_role: Callable[..., Page], api: Api) -> None:
    """On a slow link (Chromium's network emulation) the bar moves with the bytes sent,
    then says the server is processing the rows."""
    rows = "".join(f"12.345.678-5,Juan Pérez,L-{n:05d},2026-04-05,15000\n" for n in range(4000))
    content = ("rut,nombre,id_deuda,vencimiento,monto\n" + rows).encode()
    page = as_role(Role.OPERATOR)
    page.goto("/importaciones")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 60_000},
    )
    seen: list[str] = []
    choose_file(page, "grande.csv", content)
    page.get_by_role("button", name="Importar").click()
    text = page.locator("#import-progress-text")
    expect(text).to_contain_text("Subiendo el archivo:")
    expect(page.get_by_role("button", name="Importar")).to_be_disabled()
    value = page.locator("#import-progress-bar").get_attribute("value")
    seen.append(value or "")
    expect(page).to_have_url(re.compile(r"/importaciones/1$"), timeout=30_000)
    assert seen[0] != ""
    assert 0 <= int(seen[0]) < 100
    expect(
        page.locator("#import-counts").get_by_role("row", name="Deudas agregadas")
    ).to_contain_text("4.000")
