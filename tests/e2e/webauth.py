"""Back-office helpers for page tests: users with known passwords, signed-in httpx clients.

`add_user` creates a user through the service and then sets a known, final password
(straight in the database: a test should not pay for the provisional-password dance
unless that is what it tests). `WebClient` signs in like a browser: it reads the sign-in
form's CSRF token, posts the form and keeps the session cookie. The cookie is Secure, so
httpx's cookie jar would not send it to http://127.0.0.1: the client sends it by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from recaudo.adapters.db.tables import Company, User
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services import users
from recaudo.services.context import Actor, Role
from tests.conftest import FrozenClock

PASSWORD = "Clave-segura-2026"
SETUP_ACTOR = Actor("test:setup", Role.ADMIN)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Account:
    user_id: int
    email: str
    password: str


def add_user(
    uow: UnitOfWork,
    clock: FrozenClock,
    company: Company,
    role: Role,
    email: str,
    *,
    name: str | None = None,
    password: str | None = PASSWORD,
) -> Account:
    """A user of `company` with `role`; `password=None` keeps the provisional one."""
    created = users.create_user(
        uow,
        users.NewUser(email, name or email.split("@")[0].title(), company.id, role),
        actor=SETUP_ACTOR,
        clock=clock,
    )
    if password is None:
        assert created.provisional_password is not None
        return Account(created.user_id, created.email, created.provisional_password)
    with uow:
        user = uow.session.get(User, created.user_id)
        assert user is not None
        user.password_hash = users.hash_password(password)
        user.must_change_password = False
        uow.commit()
    return Account(created.user_id, created.email, password)


def csrf_in(html: str) -> str:
    """The first CSRF token of a page's forms."""
    found = _CSRF.search(html)
    assert found is not None, "no csrf_token field in the page"
    return found.group(1)


class WebClient:
    """A browser-like client of the back office (no redirects followed unless asked)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
        self.session_cookie: str | None = None
        self.csrf: str | None = None

    def close(self) -> None:
        self.http.close()

    def _cookies(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        cookies = dict(extra or {})
        if self.session_cookie is not None:
            cookies["recaudo_session"] = self.session_cookie
        return cookies

    def _send(
        self,
        method: str,
        path: str,
        *,
        extra_cookies: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        files: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        cookies = self._cookies(extra_cookies)
        all_headers = dict(headers or {})
        if cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        response = self.http.request(
            method, path, headers=all_headers, data=data, files=files, params=params
        )
        set_cookie = response.cookies.get("recaudo_session")
        if set_cookie is not None:
            self.session_cookie = set_cookie
        for header in response.headers.get_list("set-cookie"):
            if header.startswith("recaudo_session=") and "Max-Age=0" in header:
                self.session_cookie = None
        if response.headers.get("content-type", "").startswith("text/html"):
            found = _CSRF.search(response.text)
            if found is not None and self.session_cookie is not None:
                self.csrf = found.group(1)
        return response

    def get(
        self,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self._send("GET", path, params=params, headers=headers)

    def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        files: Any = None,
    ) -> httpx.Response:
        """A form post carrying the session's CSRF token (unless `csrf=False`).

        `files` makes it multipart (an upload); the token still travels as a form field.
        """
        form = dict(data or {})
        if csrf and "csrf_token" not in form:
            assert self.csrf is not None, "no page with a CSRF token seen yet"
            form["csrf_token"] = self.csrf
        return self._send("POST", path, data=form, headers=headers, files=files)

    def sign_in(self, email: str, password: str, *, next_url: str = "") -> httpx.Response:
        page = self.http.get("/ingresar")
        assert page.status_code == 200, page.text
        token = page.cookies["recaudo_csrf"]
        return self._send(
            "POST",
            "/ingresar",
            data={
                "email": email,
                "password": password,
                "csrf_token": csrf_in(page.text),
                "siguiente": next_url,
            },
            extra_cookies={"recaudo_csrf": token},
        )

    def signed_in(self, email: str, password: str = PASSWORD) -> WebClient:
        """Sign in and load a page so that the session's CSRF token is known."""
        response = self.sign_in(email, password)
        assert response.status_code == 303, response.text
        page = self.get("/cuenta/contrasena")
        assert page.status_code == 200, page.text
        return self
