"""The admin API application: routers under `/api/v1`, problem errors, docs at `/api/docs`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

import recaudo
from recaudo.api.access_log import AccessLog
from recaudo.api.errors import ProblemGuard, install_error_handlers
from recaudo.api.routers import (
    agreements,
    audit,
    checkout,
    checkout_reports,
    commitments,
    companies,
    coupons,
    creditor_accounts,
    customers,
    debts,
    deliveries,
    exceptions,
    exchanges,
    health,
    holidays,
    imports,
    incidents,
    negotiations,
    payments,
    policies,
    reconciliations,
    remittances,
    returns,
    settlements,
    webhooks,
)
from recaudo.api.schemas import FieldError, Problem
from recaudo.bootstrap import Container
from recaudo.channels.bancoestado.routes import ChannelRoutes
from recaudo.channels.collections_management import routes as collections_management
from recaudo.channels.corresponsal import routes as corresponsal
from recaudo.web import mount_web

PREFIX = "/api/v1"
DOCS_URL = "/api/docs"
OPENAPI_URL = "/api/openapi.json"
# Swagger UI's script and style are served from the package, never from a CDN: the
# docs page must work on a machine without Internet access.
DOCS_ASSETS_URL = "/api/docs-assets"

DESCRIPTION = f"""
The admin REST API of Recaudo, the collections hub.

**Authentication**: `Authorization: Bearer <api key>`. Keys are issued with
`recaudo apikey create`; each is bound to one company and one role: `admin`,
`operator`, or `auditor` (read-only: GET only). A key never sees another company's
data: other companies' objects answer 404.

**Companies** are created with `recaudo company create`; `POST {PREFIX}/companies`
always answers 403 to API keys.

**Errors** are RFC 9457 problems (`application/problem+json`) with a stable `code`;
validation problems list `errors: [{{field, message}}]`.

**Money** travels as strings at the currency's scale (`"1500"` CLP, `"12.50"` EUR)
beside a `currency` field. **Lists** take `page` and `page_size` (at most 500) and
answer `{{items, total, page, page_size}}` with a `Link` header to the next and
previous pages.
"""


def create_app(container: Container) -> FastAPI:
    app = FastAPIOffline(
        title="Recaudo admin API",
        version=recaudo.__version__,
        description=DESCRIPTION,
        docs_url=DOCS_URL,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        static_url=DOCS_ASSETS_URL,
        # No OpenTelemetry here: without this FastAPI asks the OpenTelemetry API on
        # every request whether a provider is configured (a few percent of the bank
        # channel's time per request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    install_error_handlers(app)
    for module in (companies, customers, debts, payments, imports, audit):
        app.include_router(module.router, prefix=PREFIX)
    for module in (agreements, exceptions, incidents):
        app.include_router(module.router, prefix=PREFIX)
    for module in (webhooks, holidays):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(reconciliations.router, prefix=PREFIX)
    app.include_router(settlements.router, prefix=PREFIX)
    app.include_router(exchanges.router, prefix=PREFIX)
    app.include_router(deliveries.router, prefix=PREFIX)
    app.include_router(remittances.router, prefix=PREFIX)
    app.include_router(returns.router, prefix=PREFIX)
    app.include_router(commitments.router, prefix=PREFIX)
    app.include_router(creditor_accounts.router, prefix=PREFIX)
    app.include_router(negotiations.router, prefix=PREFIX)
    app.include_router(policies.router, prefix=PREFIX)
    app.include_router(checkout.router, prefix=PREFIX)
    app.include_router(coupons.router, prefix=PREFIX)
    app.include_router(checkout_reports.router, prefix=PREFIX)
    app.include_router(health.router)
    # Before the collections-management router: its catch-all answers the rest of the prefix.
    app.include_router(corresponsal.router)
    app.include_router(collections_management.router)

    # The back office: its pages under `/` (sign-in at /ingresar), static files at /static.
    mount_web(app, container)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # Problem bodies are referenced by `problem_responses`; register their schemas.
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            ref = "#/components/schemas/{model}"
            components["FieldError"] = FieldError.model_json_schema(ref_template=ref)
            components["Problem"] = Problem.model_json_schema(ref_template=ref)
            components["Problem"].pop("$defs", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Added last so it wraps every route: the size limit and the last-resort 500.
    app.add_middleware(ProblemGuard, max_body_bytes=container.settings.max_upload_bytes)
    # The collections-management contract refuses oversized bodies in its own shape.
    app.add_middleware(collections_management.ContractBodyLimit, container=container)
    # Around the routes: the bank channel's URLs answer in the bank's JSON, never as problems.
    app.add_middleware(ChannelRoutes, container=container)
    # Outside everything: one access line per request, the bank's URLs included.
    app.add_middleware(AccessLog)
    return app
