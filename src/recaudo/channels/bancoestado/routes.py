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
from urllib.parse import parse_qsl

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


class Incoming:
    """What the channel reads of a request, straight from the ASGI scope.

    Starlette's `Request` builds header and query-string objects the hot path does not
    need; reading the two or three values used here directly costs a fraction of that.
    The results are the same: header names are lowercase in ASGI, the first header of a
    name wins, and the query string is decoded as Starlette decodes it (the last value
    of a repeated parameter wins).
    """

    __slots__ = ("_params", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._params: dict[str, str] | None = None

    def header(self, name: bytes) -> str:
        for key, value in self.scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return ""

    @property
    def params(self) -> dict[str, str]:
        if self._params is None:
            text = self.scope.get("query_string", b"").decode("latin-1")
            if "%" in text or "+" in text:
                self._params = dict(parse_qsl(text, keep_blank_values=True))
            else:  # nothing to unquote
                self._params = {
                    key: value
                    for key, _, value in (part.partition("=") for part in text.split("&"))
                    if key
                }
        return self._params

    @property
    def client_host(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None


def _secret(request: Incoming, allow_query_token: bool) -> str | None:
    authorization = request.header(b"authorization")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if key := request.header(b"x-api-key").strip():
        return key
    if allow_query_token:
        return request.params.get("token") or None
    return None


class BancoEstadoChannel:
    """The two endpoints, on the event loop; blocking work goes to the thread pool."""

    def __init__(self, container: Container) -> None:
        self.container = container

    async def _lookup(
        self, slug: str, channel: str | None, request: Incoming
    ) -> online.AgreementLookup:
        # Only the canonical URLs need the secret to find the agreement (its prefix).
        secret = _secret(request, allow_query_token=True) if channel is None else None
        return await self.container.online.agreement(slug, channel, secret)

    def _caller(self, lookup: online.AgreementLookup, request: Incoming) -> online.Caller:
        secret = _secret(request, lookup.allow_query_token)
        return online.authenticate(lookup, secret, request.client_host)

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

    async def query(self, request: Incoming, slug: str, channel: str | None) -> Response:
        """The debt query, on the event loop (see `OnlineChannel.quote`)."""
        http_200 = True
        caller: online.Caller | None = None
        try:
            lookup = await self._lookup(slug, channel, request)
            http_200 = lookup.errors_as_http_200
            caller = self._caller(lookup, request)
            raw_rut = contract.parse_query(request.params)
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
        self, request: Incoming, body: bytes | None, slug: str, channel: str | None
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
            await self.container.online.notify(caller, note)
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
                response = await self.channel.query(
                    Incoming(scope), match["company"], match.groupdict().get("channel")
                )
                await response(scope, receive, send)
                return True
        for pattern in _NOTIFY:
            if match := pattern.match(path):
                if method != "POST":
                    await _json({}, 405)(scope, receive, send)
                    return True
                body = await _read_body(Request(scope, receive), contract.MAX_BODY_BYTES)
                response = await self.channel.notify(
                    Incoming(scope),
                    body,
                    match["company"],
                    match.groupdict().get("channel"),
                )
                if body is None:
                    response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return True
        return False
