"""The back office: server-rendered pages in Spanish (Jinja2 + vendored htmx) under `/`.

`mount_web` serves `/static/` from the package and includes the `router` of every page
module of this package (auth, users, dashboard, portfolio, ...): a new area is a new
module with a `router = web_router()`, nothing to register elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from recaudo.bootstrap import Container
from recaudo.web.common import STATIC_DIR, error_page

STATIC_URL = "/static"
# Modules that are not page areas.
NOT_PAGES = frozenset({"common", "charts"})


def page_routers() -> list[APIRouter]:
    """The `router` of each page module, by module name (auth and users included)."""
    routers: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in NOT_PAGES or info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers


def mount_web(app: FastAPI, container: Container) -> None:
    """Add the back-office pages and their static files to the app."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.state.html_error_page = _html_error_page
    for router in page_routers():
        app.include_router(router)


def _html_error_page(request: Request, status: int) -> Response:
    """What a browser gets for a back-office URL that does not exist (api/errors.py)."""
    if status == 405:
        return error_page(request, 405, "Acción no permitida", "Esta página no admite esa acción.")
    return error_page(request, 404, "No encontrado", "La página que busca no existe.")
