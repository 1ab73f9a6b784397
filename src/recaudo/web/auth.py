"""Sign-in, the company choice, the password change and sign-out."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request, Response

from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.services import users
from recaudo.services.users import SessionView, SignInFailed, SignInThrottled
from recaudo.web.common import (
    CHANGE_PASSWORD_URL,
    CHOOSE_COMPANY_URL,
    PRE_SESSION_CSRF_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_URL,
    container_of,
    home_for,
    limits_of,
    new_csrf_token,
    redirect,
    render,
    safe_next,
    session_of,
    signed_in_session,
    web_router,
)

router = web_router()

SessionDep = Annotated[SessionView, Depends(signed_in_session)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _sign_in_page(
    request: Request,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    container = container_of(request)
    token = request.cookies.get(PRE_SESSION_CSRF_COOKIE) or new_csrf_token()
    response = render(
        request,
        "auth/sign_in.html",
        status_code=status_code,
        form_csrf=token,
        next_url=next_url,
        email=email,
        error=error,
    )
    response.set_cookie(
        PRE_SESSION_CSRF_COOKIE,
        token,
        httponly=True,
        secure=container.settings.cookie_secure,
        samesite="strict",
        path=SIGN_IN_URL,
    )
    return response


def _after_sign_in(session: SessionView, next_url: str) -> str:
    if session.must_change_password:
        return CHANGE_PASSWORD_URL
    if session.company_id is None:
        return CHOOSE_COMPANY_URL
    return safe_next(next_url, home_for(session.role))


@router.get(SIGN_IN_URL)
def sign_in_form(request: Request, siguiente: str = "") -> Response:
    session = session_of(request)
    if session is not None:
        return redirect(request, _after_sign_in(session, siguiente))
    return _sign_in_page(request, next_url=safe_next(siguiente, ""))


@router.post(SIGN_IN_URL)
def sign_in(
    request: Request,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    siguiente: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    next_url = safe_next(siguiente, "")
    cookie = request.cookies.get(PRE_SESSION_CSRF_COOKIE, "")
    if not cookie or not csrf_token or not hmac.compare_digest(cookie, csrf_token):
        return _sign_in_page(
            request,
            next_url=next_url,
            email=email,
            error="El formulario caducó. Vuelva a intentarlo.",
            status_code=403,
        )
    if not email.strip() or not password:
        return _sign_in_page(
            request,
            next_url=next_url,
            email=email,
            error="Ingrese su correo y su contraseña.",
            status_code=422,
        )
    container = container_of(request)
    try:
        signed = users.sign_in(
            container.uow(),
            email,
            password,
            _client_ip(request),
            limits=limits_of(container),
            clock=container.clock,
        )
    except SignInThrottled as exc:
        return _sign_in_page(
            request, next_url=next_url, email=email, error=exc.message, status_code=429
        )
    except SignInFailed as exc:
        return _sign_in_page(
            request, next_url=next_url, email=email, error=exc.message, status_code=401
        )
    # A session cookie the browser may still hold belongs to the previous sign-in.
    previous = session_of(request)
    if previous is not None:
        users.sign_out(container.uow(), previous.id, clock=container.clock)
    target = _after_sign_in(signed.session, next_url)
    if signed.session.company_id is None and next_url:
        target += "?siguiente=" + quote(next_url, safe="")
    response = redirect(request, target)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=int(limits_of(container).absolute.total_seconds()),
        httponly=True,
        secure=container.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    response.delete_cookie(PRE_SESSION_CSRF_COOKIE, path=SIGN_IN_URL)
    return response


@router.get(CHOOSE_COMPANY_URL)
def choose_company_form(request: Request, session: SessionDep, siguiente: str = "") -> Response:
    if session.must_change_password:
        return redirect(request, CHANGE_PASSWORD_URL)
    return render(
        request,
        "auth/choose_company.html",
        memberships=session.memberships,
        next_url=safe_next(siguiente, ""),
    )


@router.post(CHOOSE_COMPANY_URL)
def choose_company(
    request: Request,
    session: SessionDep,
    company_id: Annotated[int, Form()],
    siguiente: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if session.must_change_password:
        return redirect(request, CHANGE_PASSWORD_URL)
    container = container_of(request)
    try:
        chosen = users.choose_company(
            container.uow(), session.id, company_id, clock=container.clock
        )
    except NotFound:
        return render(
            request,
            "auth/choose_company.html",
            status_code=404,
            memberships=session.memberships,
            next_url=safe_next(siguiente, ""),
            error="No pertenece a esa empresa.",
        )
    users.push_flash(
        container.uow(), session.id, f"Ahora trabaja en {chosen.company_name}.", "info"
    )
    # Pages of the previous company do not make sense in the new one: go home.
    return redirect(request, safe_next(siguiente, home_for(chosen.role)))


@router.get(CHANGE_PASSWORD_URL)
def change_password_form(request: Request, session: SessionDep) -> Response:
    return render(request, "auth/change_password.html", forced=session.must_change_password)


@router.post(CHANGE_PASSWORD_URL)
def change_password(
    request: Request,
    session: SessionDep,
    current: Annotated[str, Form(max_length=1024)] = "",
    new: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    errors: dict[str, str] = {}
    if new != confirm:
        errors["confirm"] = "La confirmación no coincide con la nueva contraseña."
    else:
        container = container_of(request)
        try:
            users.change_password(container.uow(), session.id, current, new, clock=container.clock)
        except ValidationFailed as exc:
            errors[str(exc.details.get("field", "new"))] = exc.message
    if errors:
        return render(
            request,
            "auth/change_password.html",
            status_code=422,
            forced=session.must_change_password,
            errors=errors,
        )
    users.push_flash(container.uow(), session.id, "Su contraseña fue actualizada.")
    if session.company_id is None:
        return redirect(request, CHOOSE_COMPANY_URL)
    return redirect(request, home_for(session.role))


@router.post("/salir")
def sign_out(request: Request, session: SessionDep) -> Response:
    container = container_of(request)
    users.sign_out(container.uow(), session.id, clock=container.clock)
    request.scope["web_session"] = None
    response = redirect(request, SIGN_IN_URL)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        secure=container.settings.cookie_secure,
        samesite="lax",
    )
    return response
