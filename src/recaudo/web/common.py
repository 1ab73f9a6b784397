"""What every back-office page shares: sessions, roles, CSRF, rendering, formatting.

A page is a route on a `web_router()`, whose route class turns the services' errors into
Spanish HTML pages (403, 404, 409, 422) and a missing session into a redirect to the
sign-in page. A page asks for `require_role(...)`: that dependency finds the session from
the cookie, sends the user to change a provisional password or to choose a company
first, refuses other roles with the 403 page, and checks the CSRF token of every unsafe
request (form field `csrf_token`, or header `X-CSRF-Token` which htmx sends from the
`hx-headers` of <body>). It returns a `WebContext`: the session, the container and the
audited `actor`, for calling the same services the API and CLI call.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RecaudoError,
    Unauthenticated,
    ValidationFailed,
)
from recaudo.domain.money import exponent, from_minor
from recaudo.services import users
from recaudo.services.context import Actor, Role
from recaudo.services.users import Limits, SessionView

logger = logging.getLogger("recaudo.web")

SESSION_COOKIE = "recaudo_session"
# Before sign-in there is no session: the sign-in form's CSRF token is a double submit
# of this cookie (HttpOnly, SameSite=Strict) and the form's hidden field.
PRE_SESSION_CSRF_COOKIE = "recaudo_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set on the request when this request pushed a flash message (render pops them then).
FLASH_PUSHED = "web_flash_pushed"
SIGN_IN_URL = "/ingresar"
CHANGE_PASSWORD_URL = "/cuenta/contrasena"  # noqa: S105 - a path, not a password
CHOOSE_COMPANY_URL = "/empresa"

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

ALL_ROLES = tuple(Role)
# Convenience sets for `require_role(*...)`.
READ_ROLES = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)
WRITE_ROLES = (Role.ADMIN, Role.OPERATOR)
ADMIN_ONLY = (Role.ADMIN,)

# Pages send these with every answer: no framing, no sniffing, scripts only from /static.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class NavEntry:
    path: str
    label: str
    roles: tuple[Role, ...]


# The navigation of base.html, in order; each page checks its roles again on the server.
NAV: tuple[NavEntry, ...] = (
    NavEntry("/", "Inicio", READ_ROLES),
    NavEntry("/cartera", "Cartera", ALL_ROLES),
    NavEntry("/pagos", "Pagos", (*READ_ROLES, Role.CASHIER)),
    NavEntry("/importaciones", "Importaciones", READ_ROLES),
    NavEntry("/excepciones", "Excepciones", READ_ROLES),
    NavEntry("/incidentes", "Incidentes", READ_ROLES),
    NavEntry("/rendiciones", "Rendiciones", READ_ROLES),
    NavEntry("/remesas", "Remesas", READ_ROLES),
    NavEntry("/devoluciones", "Devoluciones", READ_ROLES),
    NavEntry("/canales", "Canales", ADMIN_ONLY),
    NavEntry("/usuarios", "Usuarios", ADMIN_ONLY),
)


def home_for(role: Role | None) -> str:
    """Where a user lands after sign-in: a cashier at the customer search."""
    return "/cartera" if role is Role.CASHIER else "/"


# --- errors that pages turn into redirects or pages --------------------------------------


class SignInRequired(Exception):
    """No live session: go to the sign-in page (then back to `next`)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PasswordChangeRequired(Exception):
    """The password is provisional: it must be changed before any other page."""


class CompanyChoiceRequired(Exception):
    """The user belongs to several companies and has not chosen one yet."""


class CsrfRefused(PermissionDenied):
    code = "csrf_refused"


@dataclass(frozen=True, slots=True)
class WebContext:
    """A signed-in request: its session, the container and the audited actor."""

    request: Request
    container: Container
    session: SessionView

    @property
    def actor(self) -> Actor:
        return self.session.actor

    @property
    def role(self) -> Role:
        assert self.session.role is not None
        return self.session.role

    @property
    def company_id(self) -> int:
        assert self.session.company_id is not None
        return self.session.company_id

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.container.clock

    def uow(self, *, write: bool = True) -> UnitOfWork:
        return self.container.uow(write=write)

    def has_role(self, *roles: Role) -> bool:
        return self.session.role in roles

    def flash(self, text: str, kind: str = "ok") -> None:
        """A message for the next page shown (after a redirect). kind: ok | error | info."""
        users.push_flash(self.container.uow(), self.session.id, text, kind)
        self.request.scope[FLASH_PUSHED] = True


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def limits_of(container: Container) -> Limits:
    return Limits.from_settings(container.settings)


def session_of(request: Request) -> SessionView | None:
    """The live session of the request's cookie, if any (cached on the request)."""
    if "web_session" in request.scope:
        cached: SessionView | None = request.scope["web_session"]
        return cached
    container = container_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    view = (
        users.session_for(
            container.uow(write=False), token, limits=limits_of(container), clock=container.clock
        )
        if token
        else None
    )
    request.scope["web_session"] = view
    return view


def _request_target(request: Request) -> str:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return target


def safe_next(url: str | None, default: str = "/") -> str:
    """A local path to return to (never another site: no scheme, host or `//`)."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return default
    if "\\" in url:
        return default
    return url


async def check_csrf(request: Request, expected: str) -> None:
    """Unsafe methods carry the token as header or form field; else `CsrfRefused`."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("missing or wrong CSRF token")


async def _signed_in(request: Request) -> SessionView:
    session = session_of(request)
    if session is None:
        raise SignInRequired(_request_target(request))
    return session


def require_role(
    *roles: Role,
) -> Callable[[Request], Coroutine[Any, Any, WebContext]]:
    """A dependency: a signed-in user of one of `roles` in the chosen company.

    Also: provisional password → change it first; no company chosen → choose it first;
    unsafe method → the CSRF token must match.
    """
    allowed = frozenset(roles or ALL_ROLES)

    async def dependency(request: Request) -> WebContext:
        session = await _signed_in(request)
        if session.must_change_password:
            raise PasswordChangeRequired()
        if session.company_id is None or session.role is None:
            raise CompanyChoiceRequired()
        await check_csrf(request, session.csrf_token)
        if session.role not in allowed:
            raise PermissionDenied(f"role {session.role} may not see {request.url.path}")
        context = WebContext(request, container_of(request), session)
        request.scope["web_context"] = context
        return context

    return dependency


async def signed_in_session(request: Request) -> SessionView:
    """A dependency for the account pages: signed in, CSRF checked, nothing else required."""
    session = await _signed_in(request)
    await check_csrf(request, session.csrf_token)
    return session


# --- formatting ---------------------------------------------------------------------------


def _group(digits: str) -> str:
    out: list[str] = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return ".".join(out)


def format_number(value: Decimal | int, places: int = 0) -> str:
    """Spanish number: dots for thousands, comma for decimals ("1.234,56")."""
    quantized = Decimal(value).quantize(Decimal(1).scaleb(-places)) if places else Decimal(value)
    sign = "-" if quantized < 0 else ""
    text = f"{abs(quantized):.{places}f}"
    whole, _, fraction = text.partition(".")
    return sign + _group(whole) + ("," + fraction if fraction else "")


CURRENCY_SYMBOL_BEFORE = {"CLP": "$", "COP": "$", "MXN": "$", "ARS": "$", "USD": "US$"}
CURRENCY_SYMBOL_AFTER = {"EUR": "€"}


def format_money(amount: Decimal | int | str | None, currency: str | None) -> str:
    """ "$ 1.234.567" for CLP, "1.234,56 €" for EUR, "1.234,56 PEN" otherwise."""
    if amount is None:
        return ""
    currency = (currency or "").upper()
    value = Decimal(str(amount))
    places = exponent(currency) if currency else 0
    number = format_number(value, places)
    if currency in CURRENCY_SYMBOL_BEFORE:
        symbol = CURRENCY_SYMBOL_BEFORE[currency]
        return f"-{symbol} {number[1:]}" if number.startswith("-") else f"{symbol} {number}"
    if currency in CURRENCY_SYMBOL_AFTER:
        return f"{number} {CURRENCY_SYMBOL_AFTER[currency]}"
    return f"{number} {currency}".strip()


def format_minor(amount_minor: int | None, currency: str | None) -> str:
    """Money kept in minor units (the database's `amount_minor`)."""
    if amount_minor is None or not currency:
        return ""
    return format_money(from_minor(amount_minor, currency), currency)


def format_date(value: date | datetime | None, timezone: str | None = None) -> str:
    """dd-mm-aaaa (a datetime in the company's time zone when given)."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone:
        value = value.astimezone(ZoneInfo(timezone))
    return value.strftime("%d-%m-%Y")


def format_datetime(value: datetime | None, timezone: str | None = None) -> str:
    """dd-mm-aaaa HH:MM in the company's time zone (UTC when none is given)."""
    if value is None:
        return ""
    if timezone:
        value = value.astimezone(ZoneInfo(timezone))
    return value.strftime("%d-%m-%Y %H:%M")


# --- pagination -----------------------------------------------------------------------------

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        """1-based position of the first item shown (0 when empty)."""
        return 0 if not self.items else (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return 0 if not self.items else self.first_index + len(self.items) - 1


def page_number(request: Request) -> int:
    """The `pagina` query parameter (1 when missing or not a positive number)."""
    raw = request.query_params.get("pagina", "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def paginate(items: Sequence[T], page: int, page_size: int = DEFAULT_PAGE_SIZE) -> Page[T]:
    """A page of an in-memory list (services that page themselves give `Page` directly)."""
    start = (page - 1) * page_size
    return Page(items[start : start + page_size], len(items), page, page_size)


def page_url(request: Request, page: int) -> str:
    """The current URL with `pagina` set (keeps the filters)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "pagina"]
    params.append(("pagina", str(page)))
    return request.url.path + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params)


# --- rendering ------------------------------------------------------------------------------

ROLE_NAMES = users.ROLE_NAMES_ES


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "svg", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = format_money
    env.filters["minor"] = format_minor
    env.filters["fecha"] = format_date
    env.filters["fecha_hora"] = format_datetime
    env.filters["numero"] = format_number
    env.filters["role_name"] = lambda role: ROLE_NAMES.get(Role(role), str(role)) if role else ""
    env.globals["NAV"] = NAV
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return env


templates = _environment()


def nav_for(role: Role | None) -> list[NavEntry]:
    return [entry for entry in NAV if role is not None and role in entry.roles]


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A template with the page's shared context.

    Templates see: `request`, `session` (or None), `ctx` (the WebContext, when the page
    asked for one), `csrf_token`, `nav` (the entries for the role), `flashes` (popped),
    `current_path`, `page_url(n)`, plus `context`. htmx requests (`HX-Request`) get the
    template as it is; a partial template simply does not extend base.html.
    """
    web: WebContext | None = request.scope.get("web_context")
    session: SessionView | None = request.scope.get("web_session")
    flashes: list[dict[str, str]] = []
    pending = session is not None and (session.has_flashes or request.scope.get(FLASH_PUSHED))
    if session is not None and pending and request.headers.get("HX-Request") != "true":
        flashes = users.pop_flashes(container_of(request).uow(), session.id)
    values: dict[str, Any] = {
        "request": request,
        "session": session,
        "ctx": web,
        "csrf_token": session.csrf_token if session is not None else "",
        "nav": nav_for(session.role if session is not None else None),
        "flashes": flashes,
        "current_path": request.url.path,
        "page_url": lambda n: page_url(request, n),
        "timezone": session.timezone if session is not None else None,
        "currency": session.currency if session is not None else None,
    }
    values.update(context)
    body = templates.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code)
    for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
        response.headers[name] = value
    return response


def redirect(request: Request, url: str) -> Response:
    """303 to `url`; an htmx request gets `HX-Redirect` so the whole page changes."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def csrf_input(token: str) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


templates.globals["csrf_input"] = csrf_input


# --- the route class: errors as Spanish pages -------------------------------------------------

ERROR_PAGES: tuple[tuple[type[RecaudoError], int, str, str], ...] = (
    (
        CsrfRefused,
        403,
        "Formulario no válido",
        "El formulario caducó o no proviene de esta aplicación. Vuelva a cargar la página "
        "e inténtelo de nuevo.",
    ),
    (
        PermissionDenied,
        403,
        "Acceso denegado",
        "Su rol no tiene permiso para ver esta página o realizar esta acción.",
    ),
    (NotFound, 404, "No encontrado", "La página o el registro que busca no existe."),
    (Conflict, 409, "No se pudo completar", ""),
    (ValidationFailed, 422, "Datos no válidos", ""),
    (Unauthenticated, 401, "Sesión no válida", "Inicie sesión de nuevo."),
)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(
        request,
        "errors/error.html",
        status_code=status,
        status=status,
        title=title,
        message=message,
    )


def _sign_in_redirect(request: Request, next_url: str) -> Response:
    target = SIGN_IN_URL
    if next_url and next_url != "/":
        target += "?siguiente=" + quote(next_url, safe="")
    return redirect(request, target)


def handle_web_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInRequired):
        return _sign_in_redirect(request, exc.next_url)
    if isinstance(exc, PasswordChangeRequired):
        return redirect(request, CHANGE_PASSWORD_URL)
    if isinstance(exc, CompanyChoiceRequired):
        return redirect(request, CHOOSE_COMPANY_URL)
    if isinstance(exc, RequestValidationError):
        return error_page(
            request,
            422,
            "Datos no válidos",
            "Faltan datos o alguno no tiene el formato esperado. Revise el formulario.",
        )
    for error_type, status, title, message in ERROR_PAGES:
        if isinstance(exc, error_type):
            return error_page(request, status, title, message or exc.message)
    error_id = uuid.uuid4().hex[:12]
    logger.exception("web page failed (error id %s)", error_id)
    return error_page(
        request,
        500,
        "Error interno",
        f"Ocurrió un error inesperado. Si se repite, informe este código: {error_id}.",
    )


class WebRoute(APIRoute):
    """Routes whose failures are HTML pages in Spanish, never problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (
                RecaudoError,
                RequestValidationError,
                SignInRequired,
                PasswordChangeRequired,
                CompanyChoiceRequired,
            ) as exc:
                return handle_web_error(request, exc)
            except Exception as exc:  # a page never answers problem+json
                return handle_web_error(request, exc)

        return route


def web_router(**kwargs: Any) -> APIRouter:
    """An APIRouter for pages: WebRoute, HTML by default, out of the OpenAPI schema."""
    return APIRouter(
        route_class=WebRoute,
        include_in_schema=False,
        default_response_class=HTMLResponse,
        **kwargs,
    )


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def form_value(form: Iterable[tuple[str, Any]], name: str) -> str:
    """A text field of a submitted form ('' when absent or a file)."""
    for key, value in form:
        if key == name and isinstance(value, str):
            return value
    return ""
