"""Sign-in, first password change, company switch, roles and sign-out in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from recaudo.services.context import Role
from tests.browser.conftest import sign_in
from tests.e2e.conftest import Api
from tests.e2e.webauth import PASSWORD, add_user

Shot = Callable[[Page, str], Path | None]


def test_sign_in_and_first_password_change(page: Page, api: Api, screenshot: Shot) -> None:
    account = add_user(
        api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl", name="Ana Rojas", password=None
    )
    add_user(api.uow, api.clock, api.acme, Role.OPERATOR, "olga@acme.cl", name="Olga Díaz")
    add_user(api.uow, api.clock, api.acme, Role.CASHIER, "caja@acme.cl", name="Carlos Muñoz")
    add_user(api.uow, api.clock, api.acme, Role.AUDITOR, "auditoria@acme.cl", name="Inés Soto")

    page.goto("/usuarios")
    expect(page).to_have_url(re.compile(r"/ingresar\?siguiente=%2Fusuarios$"))
    expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    screenshot(page, "sign-in")

    # A wrong password first: one message, nothing revealed.
    sign_in(page, account.email, "no-es-la-clave-1")
    expect(page.get_by_role("alert")).to_have_text("Correo o contraseña incorrectos.")

    sign_in(page, account.email, account.password)
    expect(page).to_have_url(re.compile(r"/cuenta/contrasena$"))
    expect(page.get_by_text("Su contraseña es provisional.")).to_be_visible()
    # The session cookie: HttpOnly, Secure, SameSite=Lax.
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["recaudo_session"]
    assert session["httpOnly"] is True
    assert session["secure"] is True
    assert session["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it

    page.get_by_label("Contraseña actual", exact=True).fill(account.password)
    page.get_by_label("Nueva contraseña", exact=True).fill("corta1")
    page.get_by_label("Repita la nueva contraseña").fill("corta1")
    page.get_by_role("button", name="Guardar contraseña").click()
    expect(page.locator("#error-new")).to_have_text(
        "La contraseña debe tener al menos 8 caracteres."
    )

    page.get_by_label("Contraseña actual", exact=True).fill(account.password)
    page.get_by_label("Nueva contraseña", exact=True).fill("Nueva-clave-2026")
    page.get_by_label("Repita la nueva contraseña").fill("Nueva-clave-2026")
    page.get_by_role("button", name="Guardar contraseña").click()
    page.wait_for_load_state()

    page.goto("/usuarios")
    expect(
        page.get_by_role("heading", name="Usuarios de Acme Telecomunicaciones SpA")
    ).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("Ana Rojas")
    expect(rows.nth(0)).to_contain_text("Administrador")
    expect(rows.nth(0)).to_contain_text("Activo")
    expect(rows.nth(1)).to_contain_text("Carlos Muñoz")
    expect(rows.nth(1)).to_contain_text("Cajero")
    screenshot(page, "users")


def test_an_admin_creates_a_user_who_signs_in_with_the_provisional_password(
    as_role: Callable[..., Page], browser_page_for: Callable[[], Page]
) -> None:
    page = as_role(Role.ADMIN, "ana@acme.cl", "Ana Rojas")
    page.goto("/usuarios/nuevo")
    page.get_by_label("Correo electrónico").fill("Nuevo.Cajero@Acme.cl")
    page.get_by_label("Nombre").fill("Nuevo Cajero")
    page.get_by_label(re.compile("^Cajero")).check()
    page.get_by_role("button", name="Crear usuario").click()
    expect(page.get_by_role("heading", name="Usuario creado")).to_be_visible()
    password = page.locator("#contrasena-provisional").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{14}", password)

    other = browser_page_for()
    sign_in(other, "nuevo.cajero@acme.cl", password)
    expect(other).to_have_url(re.compile(r"/cuenta/contrasena$"))
    other.get_by_label("Contraseña actual", exact=True).fill(password)
    other.get_by_label("Nueva contraseña", exact=True).fill("Cajero-2026-ok")
    other.get_by_label("Repita la nueva contraseña").fill("Cajero-2026-ok")
    other.get_by_role("button", name="Guardar contraseña").click()
    expect(other).to_have_url(re.compile(r"/cartera$"))


def test_a_cashier_cannot_reach_admin_pages(as_role: Callable[..., Page]) -> None:
    page = as_role(Role.CASHIER, "caja@acme.cl", "Carlos Muñoz")
    expect(page).to_have_url(re.compile(r"/cartera$"))
    page.goto("/cuenta/contrasena")
    nav = page.get_by_role("navigation", name="Navegación principal")
    expect(nav.get_by_role("link")).to_have_text(["Cartera", "Pagos"])
    for path in ("/usuarios", "/usuarios/nuevo", "/usuarios/politica", "/canales"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Acceso denegado")).to_be_visible()
        expect(page.get_by_text("Su rol no tiene permiso para ver esta página")).to_be_visible()


def test_company_switch_and_sign_out(page: Page, api: Api) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "multi@grupo.cl", name="Marta Vidal")
    add_user(api.uow, api.clock, api.beta, Role.ADMIN, "multi@grupo.cl")
    sign_in(page, "multi@grupo.cl")
    expect(page).to_have_url(re.compile(r"/empresa$"))
    page.get_by_label(re.compile("^Beta Servicios Ltda")).check()
    page.get_by_role("button", name="Continuar").click()
    # Home (the dashboard) shows the change once.
    expect(page.locator("#mensajes")).to_have_text("Ahora trabaja en Beta Servicios Ltda.")
    page.goto("/usuarios")
    expect(page.get_by_role("heading", name="Usuarios de Beta Servicios Ltda")).to_be_visible()

    page.get_by_label("Empresa").select_option(label="Acme Telecomunicaciones SpA")
    page.get_by_role("button", name="Cambiar").click()
    page.goto("/usuarios")
    expect(
        page.get_by_role("heading", name="Usuarios de Acme Telecomunicaciones SpA")
    ).to_be_visible()

    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page).to_have_url(re.compile(r"/ingresar$"))
    page.goto("/usuarios")
    expect(page).to_have_url(re.compile(r"/ingresar\?siguiente=%2Fusuarios$"))


def test_sign_in_with_the_keyboard_only(page: Page, api: Api) -> None:
    add_user(api.uow, api.clock, api.acme, Role.OPERATOR, "olga@acme.cl")
    page.goto("/ingresar?siguiente=/cuenta/contrasena")
    # The e-mail field has the focus; Tab moves to the password; Enter sends.
    page.keyboard.type("olga@acme.cl")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page).to_have_url(re.compile(r"/cuenta/contrasena$"))
    expect(page.get_by_role("heading", name="Cambiar contraseña")).to_be_visible()


def test_navigation_folds_behind_a_menu_on_small_screens(as_role: Callable[..., Page]) -> None:
    page = as_role(Role.ADMIN, "ana@acme.cl", "Ana Rojas")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/usuarios")
    nav = page.get_by_role("navigation", name="Navegación principal")
    expect(nav).to_be_hidden()
    page.get_by_text("Menú", exact=True).click()
    expect(nav).to_be_visible()
    expect(nav.get_by_role("link", name="Usuarios")).to_have_attribute("aria-current", "page")
    page.get_by_text("Menú", exact=True).click()
    expect(nav).to_be_hidden()
    # With the keyboard: the toggle takes the focus and Space opens the menu.
    page.locator("#nav-toggle").focus()
    page.keyboard.press("Space")
    expect(nav).to_be_visible()
    # On a wide screen the navigation is always there and the toggle is not.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/usuarios")
    expect(page.get_by_role("navigation", name="Navegación principal")).to_be_visible()
    expect(page.get_by_text("Menú", exact=True)).to_be_hidden()


UNLABELLED_FIELDS = """
() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id)
"""


def test_every_field_of_the_account_and_users_pages_has_a_label(
    as_role: Callable[..., Page],
) -> None:
    page = as_role(Role.ADMIN, "ana@acme.cl", "Ana Rojas")
    for path in (
        "/cuenta/contrasena",
        "/usuarios",
        "/usuarios/nuevo",
        "/usuarios/politica",
    ):
        page.goto(path)
        assert page.evaluate(UNLABELLED_FIELDS) == [], path
        assert page.locator("html").get_attribute("lang") == "es"
    page.context.clear_cookies()
    page.goto("/ingresar")
    assert page.evaluate(UNLABELLED_FIELDS) == []
