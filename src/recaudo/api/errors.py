"""Every failure of the admin API as an RFC 9457 problem (`application/problem+json`).

Domain errors map by class; FastAPI's request validation, Starlette's routing errors
(404, 405) and the body-size limit keep their status; anything unexpected becomes a 500
whose body says nothing about the internals, while the log keeps the traceback under an
error id the client can quote.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recaudo.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RecaudoError,
    Unauthenticated,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:recaudo:problem:"

logger = logging.getLogger("recaudo.api")

# Most specific first: subclasses (InvalidAmount, DebtNotPayable, ...) inherit the status.
STATUS_BY_ERROR: tuple[tuple[type[RecaudoError], int], ...] = (
    (ValidationFailed, 422),
    (NotFound, 404),
    (Conflict, 409),
    (PermissionDenied, 403),
    (Unauthenticated, 401),
)

# Codes of the problems that are not domain errors, by HTTP status.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}

# Members a problem defines itself: error details may never overwrite them.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "code", "errors"})


def title_of(code: str) -> str:
    return code.replace("_", " ").capitalize()


def problem(
    request: Request | None,
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, object]] | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> JSONResponse:
    """A problem response; `code` names the problem type and is stable for clients."""
    body: dict[str, object] = {
        "type": f"{TYPE_PREFIX}{code}",
        "title": title_of(code),
        "status": status,
        "detail": detail,
        "instance": instance or (request.url.path if request is not None else ""),
        "code": code,
    }
    if errors:
        body["errors"] = [dict(e) for e in errors]
    body.update({k: v for k, v in (extra or {}).items() if k not in _RESERVED})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def status_of(error: RecaudoError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 400


def recaudo_error_response(request: Request, error: RecaudoError) -> JSONResponse:
    status = status_of(error)
    field = error.details.get("field")
    errors = [{"field": field, "message": error.message}] if isinstance(field, str) else None
    # Other details are ids the service chose to expose (the payment a reused key
    # belongs to, ...): scalars only, never objects.
    extra = {
        k: v for k, v in error.details.items() if k != "field" and isinstance(v, str | int | bool)
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(
        request, status, error.code, error.message, errors=errors, headers=headers, extra=extra
    )


def _field_of(loc: Sequence[int | str]) -> str:
    # ("body", "debt_ids", 0) -> "debt_ids.0"; ("query", "page") -> "page"; ("body",) -> "body"
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            out.append({"field": "body", "message": f"the body is not valid JSON: {reason}"})
            continue
        # The rejected input is never echoed: it may be a national id or a name.
        out.append({"field": _field_of(loc), "message": str(error.get("msg", "invalid"))})
    return out


def _request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    detail = f"{first['field']}: {first['message']}{more}"
    return problem(request, 422, "invalid_request", detail, errors=errors)


# Paths that belong to machines (API clients, banks, partners): their errors stay JSON
# whatever the client accepts.
MACHINE_PATHS = ("/api/", "/collections-management", "/channels/", "/consulta/", "/webhook/")


def _wants_page(request: Request) -> bool:
    """A browser asking for a back-office URL that does not exist gets a page, not JSON."""
    return not request.url.path.startswith(MACHINE_PATHS) and "text/html" in request.headers.get(
        "accept", ""
    )


def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    # The back office (web/) registers its Spanish error page here when it is mounted.
    page = getattr(request.app.state, "html_error_page", None)
    if status in (404, 405) and page is not None and _wants_page(request):
        response: Response = page(request, status)
        return response
    code = HTTP_CODES.get(status, "http_error")
    detail = str(exc.detail)
    if status == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no resource at {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(request, status, code, detail, headers=headers)


def _recaudo_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RecaudoError)
    return recaudo_error_response(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RecaudoError, _recaudo_error_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)


class BodyTooLarge(HTTPException):
    """Raised while reading a body that grows past the limit.

    A FastAPI `HTTPException` on purpose: FastAPI turns any other exception raised while
    it reads a body into a 400, but re-raises its own HTTP exceptions untouched.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def describe(exc: BaseException) -> str:
    """What the log may say about an unexpected error.

    SQLAlchemy's messages carry the statement's parameters (national ids, names), so
    database errors are described by their classes only.
    """
    if isinstance(exc, StatementError):
        orig = exc.orig
        return f"{type(exc).__name__} from {type(orig).__name__ if orig else 'the database'}"
    return f"{type(exc).__name__}: {exc}"


class ProblemGuard:
    """Outermost ASGI layer of the app: request size limit and last-resort 500s.

    The limit is checked twice: a declared Content-Length over it is refused before the
    body is read, and the bytes actually received are counted (chunked uploads declare
    no length; a client may also lie). Unexpected exceptions are answered here rather
    than by Starlette's ServerErrorMiddleware, which would re-raise them into the
    server's log with their unfiltered message.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._send_too_large(request, scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._send_too_large(request, scope, receive, send)
        except ClientDisconnect:
            # The client went away mid-body: nobody is left to answer, nothing was written.
            logger.info("client disconnected during %s %s", request.method, request.url.path)
        except Exception as exc:
            if started:
                raise
            error_id = uuid.uuid4()
            tb = "".join(traceback.format_tb(exc.__traceback__))
            logger.error(
                "unexpected error %s on %s %s: %s\n%s",
                error_id,
                request.method,
                request.url.path,
                describe(exc),
                tb,
            )
            response = problem(
                request,
                500,
                "internal_error",
                "the server failed to handle this request; quote the error id to support",
                instance=f"urn:uuid:{error_id}",
                extra={"error_id": str(error_id)},
            )
            await response(scope, receive, send)

    async def _send_too_large(
        self, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        detail = f"the request body is larger than {self.max_body_bytes} bytes"
        # Tell the client not to reuse the connection: the rest of its body is unread.
        response = problem(
            request, 413, "content_too_large", detail, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem bodies for these statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
