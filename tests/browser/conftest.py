"""Browser tests: Playwright (sync API) driving Debian's Chromium against the real server.

The server is the e2e one (`tests/e2e/conftest.py`: uvicorn on a loopback port, per test
and per backend, with the companies `acme` and `beta`). Chromium is `/usr/bin/chromium`
(`apt-get install -y chromium`; `playwright install` cannot download browsers here), run
headless without the sandbox. When it is missing the tests FAIL with the reason, unless
`RECAUDO_SKIP_BROWSER_TESTS=1` says to skip them.

Fixtures: `browser` (one per worker), `page` (a fresh context at 1280x800, Spanish),
`as_role(role, email=...)` (a page signed in as a new user of acme with that role), and
`screenshot(page, name)` writes `docs/screenshots/<name>.png`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from recaudo.services.context import Role
from tests.e2e.conftest import Api, api, serve  # noqa: F401 - fixtures reused here
from tests.e2e.webauth import PASSWORD, add_user

CHROMIUM = os.environ.get("RECAUDO_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}


def _chromium_or_fail() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("RECAUDO_SKIP_BROWSER_TESTS") == "1":
        pytest.skip(f"no Chromium at {CHROMIUM} and RECAUDO_SKIP_BROWSER_TESTS=1")
    pytest.fail(
        f"browser tests need Chromium at {CHROMIUM}: `apt-get install -y chromium` "
        "(scripts/run-tests.sh does it when run as root), point RECAUDO_CHROMIUM at another "
        "build, or set RECAUDO_SKIP_BROWSER_TESTS=1 to skip these tests",
        pytrace=False,
    )


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in the
# main thread while it is open, and every other test on the same xdist worker that calls
# asyncio.run() would fail. pytest closes a module's fixtures as soon as the worker moves
# to a test of another module.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    _chromium_or_fail()
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(
        executable_path=_chromium_or_fail(), headless=True, args=["--no-sandbox"]
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, api: Api) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(
        base_url=api.url, viewport=VIEWPORT, locale="es-CL", timezone_id="America/Santiago"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def browser_page_for(browser: Browser, api: Api) -> Iterator[Callable[[], Page]]:  # noqa: F811
    """Another browser (its own cookies) for a second person in the same test."""
    contexts: list[BrowserContext] = []

    def new_page() -> Page:
        context = browser.new_context(base_url=api.url, viewport=VIEWPORT, locale="es-CL")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill and send the sign-in form (the page is wherever the server sends it next)."""
    if "/ingresar" not in page.url:
        page.goto("/ingresar")
    page.get_by_label("Correo electrónico").fill(email)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Ingresar").click()
    page.wait_for_load_state()


@pytest.fixture
def as_role(page: Page, api: Api) -> Callable[..., Page]:  # noqa: F811
    """Sign `page` in as a new acme user with `role` (final password, no forced change)."""

    def sign_in_as(role: Role, email: str | None = None, name: str | None = None) -> Page:
        address = email or f"{role.value}@acme.cl"
        add_user(api.uow, api.clock, api.acme, role, address, name=name)
        sign_in(page, address)
        return page

    return sign_in_as


def save_screenshot(page: Page, name: str) -> Path:
    """docs/screenshots/<name>.png at 1280x800 (written whole, then moved into place)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    partial = target.with_name(f".{name}.{os.getpid()}.png")
    page.set_viewport_size(VIEWPORT)
    page.screenshot(path=str(partial))
    partial.replace(target)
    return target


@pytest.fixture
def screenshot(backend: str) -> Callable[[Page, str], Path | None]:
    """Save a screenshot once per run: on the SQLite run (both backends draw the same)."""

    def take(page: Page, name: str) -> Path | None:
        if backend != "sqlite" and "sqlite" in os.environ.get(
            "RECAUDO_TEST_BACKENDS", "sqlite,postgresql"
        ):
            return None
        return save_screenshot(page, name)

    return take
