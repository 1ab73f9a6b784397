"""The back office's sign-in, sessions, CSRF, throttling and roles, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from recaudo.services.context import Role
from tests.e2e.conftest import Api
from tests.e2e.webauth import PASSWORD, WebClient, add_user, csrf_in

SIGNED_OUT = "/ingresar"


@pytest.fixture
def web(api: Api) -> Iterator[list[WebClient]]:
    clients: list[WebClient] = []
    yield clients
    for client in clients:
        client.close()


def new_client(api: Api, web: list[WebClient]) -> WebClient:
    client = WebClient(api.url)
    web.append(client)
    return client


def test_sign_in_sets_a_secure_http_only_lax_cookie(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web)
    page = client.get("/ingresar")
    assert page.status_code == 200
    assert '<h1 id="titulo">Iniciar sesión</h1>' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    response = client.sign_in("ana@acme.cl", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookies = [
        c for c in response.headers.get_list("set-cookie") if c.startswith("recaudo_session=")
    ]
    assert len(cookies) == 1
    flags = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in flags
    assert "secure" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "max-age=43200" in flags  # the absolute timeout: 12 hours
    token = cookies[0].split(";")[0].split("=", 1)[1]
    assert len(token) >= 43


def test_wrong_password_and_unknown_email_get_the_same_answer(
    api: Api, web: list[WebClient]
) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web)
    wrong = client.sign_in("ana@acme.cl", "not-the-password1")
    unknown = client.sign_in("nadie@acme.cl", "not-the-password1")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Correo o contraseña incorrectos." in response.text
        assert "recaudo_session=" not in response.headers.get("set-cookie", "")
    assert client.get("/usuarios").headers["location"] == "/ingresar?siguiente=%2Fusuarios"


def test_sign_in_without_csrf_token_is_refused(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web)
    page = client.http.get("/ingresar")
    response = client.http.post(
        "/ingresar",
        data={"email": "ana@acme.cl", "password": PASSWORD},
        headers={"Cookie": f"recaudo_csrf={page.cookies['recaudo_csrf']}"},
    )
    assert response.status_code == 403
    assert "El formulario caducó" in response.text
    # The form's token without its cookie (a cross-site post) is refused too.
    response = client.http.post(
        "/ingresar",
        data={"email": "ana@acme.cl", "password": PASSWORD, "csrf_token": csrf_in(page.text)},
    )
    assert response.status_code == 403
    assert "recaudo_session=" not in response.headers.get("set-cookie", "")


def test_forms_without_the_session_csrf_token_are_refused(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web).signed_in("ana@acme.cl")
    missing = client.post("/salir", csrf=False)
    assert missing.status_code == 403
    assert "Formulario no válido" in missing.text
    wrong = client.post("/salir", {"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    header_wrong = client.post("/salir", csrf=False, headers={"X-CSRF-Token": "nope"})
    assert header_wrong.status_code == 403
    # Still signed in: none of those signed out.
    assert client.get("/cuenta/contrasena").status_code == 200
    # The htmx header is accepted in place of the form field.
    assert client.csrf is not None
    ok = client.post("/salir", csrf=False, headers={"X-CSRF-Token": client.csrf})
    assert ok.status_code == 303


def test_sign_out_revokes_the_session_on_the_server(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web).signed_in("ana@acme.cl")
    token = client.session_cookie
    assert client.get("/usuarios").status_code == 200
    response = client.post("/salir")
    assert response.status_code == 303
    assert response.headers["location"] == SIGNED_OUT
    assert 'recaudo_session=""' in response.headers["set-cookie"]
    # The old cookie, replayed, no longer opens anything.
    client.session_cookie = token
    assert client.get("/usuarios").headers["location"] == "/ingresar?siguiente=%2Fusuarios"


def test_idle_and_absolute_timeouts(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web).signed_in("ana@acme.cl")
    api.clock.advance(minutes=29)
    assert client.get("/usuarios").status_code == 200
    api.clock.advance(minutes=29)  # 29 minutes after the last page: still alive
    assert client.get("/usuarios").status_code == 200
    api.clock.advance(minutes=31)
    assert client.get("/usuarios").status_code == 303
    other = new_client(api, web).signed_in("ana@acme.cl")
    for _ in range(25):  # active all along, but 12 hours is the limit
        api.clock.advance(minutes=29)
        other.get("/cuenta/contrasena")
    assert other.get("/usuarios").status_code == 303


def test_throttling_per_email_without_revealing_accounts(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web)
    for email in ("ana@acme.cl", "nadie@acme.cl"):
        for _ in range(5):
            assert client.sign_in(email, "wrong-password-1").status_code == 401
        throttled = client.sign_in(email, "wrong-password-1")
        assert throttled.status_code == 429
        assert (
            "Demasiados intentos fallidos de inicio de sesión. "
            "Espere 15 minutos e inténtelo de nuevo." in throttled.text
        )
    # Even the right password waits out the window.
    assert client.sign_in("ana@acme.cl", PASSWORD).status_code == 429
    api.clock.advance(minutes=15)
    assert client.sign_in("ana@acme.cl", PASSWORD).status_code == 303


def test_throttling_per_address(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web)
    for n in range(20):  # 20 different e-mails, 1 failure each, from one address
        assert client.sign_in(f"user{n}@acme.cl", "wrong-password-1").status_code == 401
    response = client.sign_in("ana@acme.cl", PASSWORD)
    assert response.status_code == 429
    assert "Demasiados intentos fallidos" in response.text


def test_provisional_password_must_be_changed_first(api: Api, web: list[WebClient]) -> None:
    account = add_user(api.uow, api.clock, api.acme, Role.OPERATOR, "olga@acme.cl", password=None)
    client = new_client(api, web)
    response = client.sign_in(account.email, account.password)
    assert response.headers["location"] == "/cuenta/contrasena"
    # Every other page sends back to the change.
    assert client.get("/usuarios").headers["location"] == "/cuenta/contrasena"
    page = client.get("/cuenta/contrasena")
    assert "Su contraseña es provisional" in page.text
    short = client.post(
        "/cuenta/contrasena", {"current": account.password, "new": "abc1", "confirm": "abc1"}
    )
    assert short.status_code == 422
    assert "La contraseña debe tener al menos 8 caracteres." in short.text
    no_digit = client.post(
        "/cuenta/contrasena",
        {"current": account.password, "new": "solo-letras", "confirm": "solo-letras"},
    )
    assert no_digit.status_code == 422
    assert "La contraseña debe contener al menos un dígito." in no_digit.text
    mismatch = client.post(
        "/cuenta/contrasena",
        {"current": account.password, "new": "Nueva-clave-9", "confirm": "Nueva-clave-8"},
    )
    assert "La confirmación no coincide" in mismatch.text
    wrong_current = client.post(
        "/cuenta/contrasena",
        {"current": "Equivocada-1", "new": "Nueva-clave-9", "confirm": "Nueva-clave-9"},
    )
    assert "La contraseña actual no es correcta." in wrong_current.text
    done = client.post(
        "/cuenta/contrasena",
        {"current": account.password, "new": "Nueva-clave-9", "confirm": "Nueva-clave-9"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    # The old provisional password no longer works; the new one does.
    other = new_client(api, web)
    assert other.sign_in(account.email, account.password).status_code == 401
    assert other.sign_in(account.email, "Nueva-clave-9").headers["location"] == "/"


def test_company_chosen_at_sign_in_and_switchable(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "multi@grupo.cl")
    add_user(api.uow, api.clock, api.beta, Role.AUDITOR, "multi@grupo.cl")
    client = new_client(api, web)
    response = client.sign_in("multi@grupo.cl", PASSWORD)
    assert response.headers["location"] == "/empresa"
    assert client.get("/usuarios").headers["location"] == "/empresa"
    page = client.get("/empresa")
    assert "Acme Telecomunicaciones SpA" in page.text
    assert "Beta Servicios Ltda" in page.text
    chosen = client.post("/empresa", {"company_id": str(api.beta.id)})
    assert chosen.headers["location"] == "/"
    # An auditor in beta: the users page is an administrator's.
    assert client.get("/usuarios").status_code == 403
    switched = client.post("/empresa", {"company_id": str(api.acme.id)})
    assert switched.status_code == 303
    users_page = client.get("/usuarios")
    assert users_page.status_code == 200
    assert "Ahora trabaja en Acme Telecomunicaciones SpA." in users_page.text
    assert re.search(
        r'<option value="\d+" selected>Acme Telecomunicaciones SpA</option>', users_page.text
    )


def test_a_company_not_of_the_user_cannot_be_chosen(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web).signed_in("ana@acme.cl")
    response = client.post("/empresa", {"company_id": str(api.beta.id)})
    assert response.status_code == 404
    assert "No pertenece a esa empresa." in response.text


def test_a_cashier_cannot_reach_admin_pages(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.CASHIER, "caja@acme.cl")
    client = new_client(api, web)
    response = client.sign_in("caja@acme.cl", PASSWORD)
    assert response.headers["location"] == "/cartera"
    client.get("/cuenta/contrasena")
    for path in ("/usuarios", "/usuarios/nuevo", "/usuarios/politica"):
        page = client.get(path)
        assert page.status_code == 403, path
        assert "Acceso denegado" in page.text
        assert "Su rol no tiene permiso para ver esta página" in page.text
    posted = client.post("/usuarios/nuevo", {"email": "x@acme.cl", "name": "X", "role": "admin"})
    assert posted.status_code == 403
    # The navigation offers a cashier only what a cashier may use.
    nav = re.findall(r'<li><a href="([^"]+)"', client.get("/cuenta/contrasena").text)
    assert nav == ["/cartera", "/pagos"]


def test_next_url_is_kept_and_never_leaves_the_site(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web)
    assert (
        client.sign_in("ana@acme.cl", PASSWORD, next_url="/usuarios").headers["location"]
        == "/usuarios"
    )
    other = new_client(api, web)
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        assert other.sign_in("ana@acme.cl", PASSWORD, next_url=evil).headers["location"] == "/"


def test_users_admin_pages(api: Api, web: list[WebClient]) -> None:
    ana = add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl", name="Ana Rojas")
    client = new_client(api, web).signed_in("ana@acme.cl")
    created = client.post(
        "/usuarios/nuevo", {"email": "Olga@Acme.cl", "name": "Olga Díaz", "role": "operator"}
    )
    assert created.status_code == 200
    assert '<h1 id="titulo">Usuario creado</h1>' in created.text
    found = re.search(
        r'<code class="secret" id="contrasena-provisional">(\w+)</code>', created.text
    )
    assert found is not None and len(found.group(1)) == 14
    olga = new_client(api, web)
    assert olga.sign_in("olga@acme.cl", found.group(1)).headers["location"] == (
        "/cuenta/contrasena"
    )

    again = client.post(
        "/usuarios/nuevo", {"email": "olga@acme.cl", "name": "Olga", "role": "operator"}
    )
    assert again.status_code == 409
    assert "El usuario olga@acme.cl ya pertenece a esta empresa." in again.text
    bad = client.post("/usuarios/nuevo", {"email": "olga", "name": "Olga", "role": "jefe"})
    assert bad.status_code == 422
    assert "Elija un rol válido." in bad.text

    listing = client.get("/usuarios")
    assert listing.status_code == 200
    assert re.findall(r'<td><a href="/usuarios/(\d+)">([^<]+)</a></td>', listing.text) == [
        (str(ana.user_id), "Ana Rojas"),
        (re.findall(r'/usuarios/(\d+)">Olga', listing.text)[0], "Olga Díaz"),
    ]
    assert "Contraseña provisional" in listing.text

    # The last administrator cannot stop being one: the page says why.
    demote = client.post(f"/usuarios/{ana.user_id}/rol", {"role": "auditor"})
    assert demote.headers["location"] == f"/usuarios/{ana.user_id}"
    page = client.get(f"/usuarios/{ana.user_id}")
    assert "La empresa debe conservar al menos un administrador activo." in page.text
    # Resetting one's own password goes through the password page instead.
    own = client.post(f"/usuarios/{ana.user_id}/restablecer")
    assert own.status_code == 303
    assert "Para cambiar su propia contraseña" in client.get(f"/usuarios/{ana.user_id}").text

    # No such user: the 404 page, in Spanish.
    missing = client.get("/usuarios/999999")
    assert missing.status_code == 404
    assert "No encontrado" in missing.text
    assert "La página o el registro que busca no existe." in missing.text


def test_another_companys_user_is_not_reachable(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    beto = add_user(api.uow, api.clock, api.beta, Role.OPERATOR, "beto@beta.cl")
    client = new_client(api, web).signed_in("ana@acme.cl")
    assert client.get(f"/usuarios/{beto.user_id}").status_code == 404
    for action in ("rol", "desactivar", "restablecer"):
        response = client.post(f"/usuarios/{beto.user_id}/{action}", {"role": "admin"})
        assert response.status_code == 404, action
    # Beto still signs in with his password.
    assert new_client(api, web).sign_in("beto@beta.cl", PASSWORD).status_code == 303


def test_password_policy_page(api: Api, web: list[WebClient]) -> None:
    add_user(api.uow, api.clock, api.acme, Role.ADMIN, "ana@acme.cl")
    client = new_client(api, web).signed_in("ana@acme.cl")
    page = client.get("/usuarios/politica")
    assert 'value="8"' in page.text
    too_short = client.post("/usuarios/politica", {"min_length": "6", "require_digits": "true"})
    assert too_short.status_code == 422
    assert "La longitud mínima debe estar entre 8 y 128." in too_short.text
    saved = client.post("/usuarios/politica", {"min_length": "12", "require_letters": "true"})
    assert saved.headers["location"] == "/usuarios"
    listing = client.get("/usuarios")
    assert "Política de contraseñas guardada." in listing.text
    assert "Contraseñas: al menos 12 caracteres, con letras." in listing.text
    operator = add_user(api.uow, api.clock, api.acme, Role.OPERATOR, "olga@acme.cl", password=None)
    olga = new_client(api, web)
    olga.sign_in(operator.email, operator.password)
    olga.get("/cuenta/contrasena")
    short = olga.post(
        "/cuenta/contrasena",
        {"current": operator.password, "new": "Corta-123", "confirm": "Corta-123"},
    )
    assert "La contraseña debe tener al menos 12 caracteres." in short.text


def _web_routes(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every back-office route, path parameters filled with 1."""
    from recaudo.web import page_routers

    found: list[tuple[str, str]] = []
    for router in page_routers():
        for route in router.routes:
            path = re.sub(r"\{[^}]+\}", "1", getattr(route, "path", ""))
            for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
                found.append((method, path))
    return found


PUBLIC = {("GET", "/ingresar"), ("POST", "/ingresar")}
# The hosted payment page is public by design (docs/checkout.md): payers have no account.
PUBLIC_PREFIXES = ("/pagar",)


def test_every_page_needs_a_session(api: Api, web: list[WebClient]) -> None:
    """No back-office route answers anything but the way to sign-in without a session."""
    routes = _web_routes(api)
    assert ("GET", "/usuarios") in routes and ("POST", "/salir") in routes
    client = new_client(api, web)
    for method, path in routes:
        if (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            continue
        response = client.http.request(method, path)
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/ingresar"), (method, path)


def test_administrator_pages_refuse_every_other_role(api: Api, web: list[WebClient]) -> None:
    """Every route under /usuarios (and /canales) answers 403 to the other roles."""
    admin_only = [(m, p) for m, p in _web_routes(api) if p.startswith(("/usuarios", "/canales"))]
    assert len(admin_only) >= 9
    for role in (Role.OPERATOR, Role.CASHIER, Role.AUDITOR):
        add_user(api.uow, api.clock, api.acme, role, f"{role.value}@acme.cl")
        client = new_client(api, web).signed_in(f"{role.value}@acme.cl")
        for method, path in admin_only:
            response = client.get(path) if method == "GET" else client.post(path, {})
            assert response.status_code == 403, (role, method, path, response.status_code)
            assert "Acceso denegado" in response.text
