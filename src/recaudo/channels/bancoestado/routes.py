"""HTTP for the BancoEstado contract, at the bank's URL shapes and Recaudo's canonical ones.

- `GET  /consulta/{caja-vecina|internet}/{company}/?type=String&rut_cliente=...`
- `POST /webhook/{caja-vecina|internet}/{company}/`
- `GET  /channels/bancoestado/{company}/debts?type=String&rut_cliente=...`
- `POST /channels/bancoestado/{company}/payments`

(each with or without the trailing slash, never redirected). On the canonical URLs the
credential says which agreement is calling. `ChannelRoutes` sits in front of the admin
API as the outermost ASGI layer, so these answers never pass through the API's problem
handling: every answer, including a failure, is the bank's JSON.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from recaudo.bootstrap import Container
from recaudo.channels.bancoestado import contract
from recaudo.domain.errors import RecaudoError
from recaudo.services import collections_online as online
from recaudo.services import incidents

logger = logging.getLogger(__name__)

_SLUG = r"(?P<company>[a-z0-9][a-z0-9-]{0,62})"
_SHAPE = r"(?P<channel>caja-vecina|internet)"
_QUERY = (
    re.compile(rf"^/consulta/{_SHAPE}/{_SLUG}/?$"),
    re.compile(rf"^/channels/bancoestado/{_SLUG}/debts/?$"),
)
_NOTIFY = (
    re.compile(rf"^/webhook/{_SHAPE}/{_SLUG}/?$"),
    re.compile(rf"^/channels/bancoestado/{_SLUG}/payments/?$"),
)
_HEADERS = {"Cache-Control": "no-store"}


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status, headers=_HEADERS, media_type="application/json")


def _secret(request: Request, allow_query_token: bool) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if key := request.headers.get("x-api-key", "").strip():
        return key
    if allow_query_token:
        return request.query_params.get("token") or None
    return None


class BancoEstadoChannel:
    """The two endpoints, on the event loop; blocking work goes to the thread pool."""

    def __init__(self, container: Container) -> None:
        self.container = container

    async def _lookup(
        self, slug: str, channel: str | None, request: Request
    ) -> online.AgreementLookup:
        # Only the canonical URLs need the secret to find the agreement (its prefix).
        secret = _secret(request, allow_query_token=True) if channel is None else None
        return await self.container.online.agreement(slug, channel, secret)

    def _caller(self, lookup: online.AgreementLookup, request: Request) -> online.Caller:
        client = request.client.host if request.client else None
        return online.authenticate(lookup, _secret(request, lookup.allow_query_token), client)

    def _incident(self, caller: online.Caller | None, error: BaseException) -> None:
        if caller is None:
            return
        try:
            incidents.record_incident(
                self.container.uow(),
                caller.company_id,
                caller.agreement_id,
                incidents.INTERNAL_ERROR,
                f"{type(error).__name__} while answering the bank",
                self.container.clock,
            )
        except Exception:
            logger.exception("could not record an incident")

    async def query(self, request: Request, slug: str, channel: str | None) -> Response:
        """The debt query, on the event loop (see `OnlineChannel.quote`)."""
        http_200 = True
        caller: online.Caller | None = None
        try:
            lookup = await self._lookup(slug, channel, request)
            http_200 = lookup.errors_as_http_200
            caller = self._caller(lookup, request)
            raw_rut = contract.parse_query(request.query_params)
            quoted = await self.container.online.quote(caller, raw_rut)
            return _json(contract.quote_answer(quoted), 200)
        except contract.BadRequest:
            code = contract.QueryCode.INVALID_QUERY
        except RecaudoError as error:
            code = contract.query_code(error)
        except Exception as error:
            logger.exception("debt query failed (%s)", type(error).__name__)
            await run_in_threadpool(self._incident, caller, error)
            code = contract.QueryCode.INTERNAL_ERROR
        status = 200 if http_200 else contract.QUERY_STATUS[code]
        return _json(contract.query_error(code), status)

    async def notify(
        self, request: Request, body: bytes | None, slug: str, channel: str | None
    ) -> Response:
        http_200 = True
        caller: online.Caller | None = None
        try:
            lookup = await self._lookup(slug, channel, request)
            http_200 = lookup.errors_as_http_200
            caller = self._caller(lookup, request)
            if body is None:
                raise contract.BadRequest("body too large")
            note = contract.parse_notification(body)
            await run_in_threadpool(
                online.notify_payment,
                self.container.uow(),
                caller,
                note,
                clock=self.container.clock,
            )
            code = contract.NotifyCode.OK
        except contract.BadRequest:
            code = contract.NotifyCode.INVALID_REQUEST
        except RecaudoError as error:
            code = contract.notify_code(error)
        except Exception as error:
            logger.exception("payment notification failed (%s)", type(error).__name__)
            await run_in_threadpool(self._incident, caller, error)
            code = contract.NotifyCode.INTERNAL_ERROR
        status = 200 if http_200 else contract.NOTIFY_STATUS[code]
        return _json(contract.notify_answer(code), status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (the rest is left unread)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class ChannelRoutes:
    """Outermost ASGI layer: the channel's URLs are answered here, the rest goes on."""

    def __init__(self, app: ASGIApp, *, container: Container) -> None:
        self.app = app
        self.channel = BancoEstadoChannel(container)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(("/consulta/", "/webhook/", "/channels/")):
                handled = await self._dispatch(path, scope, receive, send)
                if handled:
                    return
        await self.app(scope, receive, send)

    async def _dispatch(self, path: str, scope: Scope, receive: Receive, send: Send) -> bool:
        method = scope["method"]
        for pattern in _QUERY:
            if match := pattern.match(path):
                if method not in ("GET", "HEAD"):
                    await _json({}, 405)(scope, receive, send)
                    return True
                request = Request(scope, receive)
                response = await self.channel.query(
                    request, match["company"], match.groupdict().get("channel")
                )
                await response(scope, receive, send)
                return True
        for pattern in _NOTIFY:
            if match := pattern.match(path):
                if method != "POST":
                    await _json({}, 405)(scope, receive, send)
                    return True
                request = Request(scope, receive)
                body = await _read_body(request, contract.MAX_BODY_BYTES)
                response = await self.channel.notify(
                    request,
                    body,
                    match["company"],
                    match.groupdict().get("channel"),
                )
                if body is None:
                    response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return True
        return False
