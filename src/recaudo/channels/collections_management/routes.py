"""HTTP for the collections-management contract, under `/collections-management`.

- `POST /collections-management/oauth2/token` (client credentials → bearer token)
- `POST /collections-management/v1/negotiations/profile` (`listValidation`)
- `POST /collections-management/v1/negotiations/policies` (`creditAnalysis`)
- `POST /collections-management/v1/negotiations` (`clientApp` + `collection`)
- `GET  /collections-management/v1/agreement/ics?acctId=...`

Every answer under the prefix, failures included, is the contract's JSON: handlers raise
`ContractError` (or a service's `RecaudoError`) and `ContractRoute` turns it into the
contract's error shape, so the rest of the API keeps its problem+json. Unknown paths and
methods under the prefix get the same shape from the catch-all route, and
`ContractBodyLimit` (outside the API's own size guard) refuses oversized bodies in it too.
"""

from __future__ import annotations

import base64
import binascii
import logging
import traceback
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, unquote
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from recaudo.bootstrap import Container
from recaudo.channels.collections_management import contract
from recaudo.domain import money
from recaudo.domain.errors import (
    Conflict,
    NotFound,
    RecaudoError,
    Unauthenticated,
    ValidationFailed,
)
from recaudo.domain.money import Money
from recaudo.domain.plans import french_schedule
from recaudo.services import collections_contract as cm
from recaudo.services import contract_clients
from recaudo.services import negotiations as neg

logger = logging.getLogger(__name__)

PREFIX = "/collections-management"
TOKEN_PATH = f"{PREFIX}/oauth2/token"
PROFILE_PATH = f"{PREFIX}/v1/negotiations/profile"
POLICIES_PATH = f"{PREFIX}/v1/negotiations/policies"
NEGOTIATIONS_PATH = f"{PREFIX}/v1/negotiations"
ICS_PATH = f"{PREFIX}/v1/agreement/ics"
METHODS: Mapping[str, str] = {
    TOKEN_PATH: "POST",
    PROFILE_PATH: "POST",
    POLICIES_PATH: "POST",
    NEGOTIATIONS_PATH: "POST",
    ICS_PATH: "GET",
}
_HEADERS = {"Cache-Control": "no-store"}


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, headers=_HEADERS, media_type="application/json")


def error_response(error: contract.ContractError) -> Response:
    response = json_response(error.body(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if error.status == 413:
        # The rest of the body is unread: the connection cannot be reused.
        response.headers["Connection"] = "close"
    return response


class ContractRoute(APIRoute):
    """A route whose every failure is answered in the contract's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except contract.ContractError as error:
                return error_response(error)
            except RecaudoError as error:
                return error_response(contract.refused(error))
            except Exception as error:
                error_id = str(uuid.uuid4())
                # The class and the frames only: messages may carry national ids,
                # amounts or a statement's parameters.
                frames = "".join(traceback.format_tb(error.__traceback__))
                logger.error(
                    "collections-management %s %s failed (%s, error id %s)\n%s",
                    request.method,
                    request.url.path,
                    type(error).__name__,
                    error_id,
                    frames,
                )
                return error_response(contract.unexpected(error_id))

        return guarded


# What the OpenAPI schema says of every operation: the contract's error shape.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["responseType", "responseDetail"],
    "properties": {
        "responseType": {
            "type": "object",
            "properties": {"value": {"type": "string", "enum": ["ER"]}},
        },
        "responseDetail": {
            "type": "object",
            "required": ["errorCode", "errorDesc", "errorType"],
            "properties": {
                "errorCode": {"type": "string"},
                "errorDesc": {"type": "string"},
                "errorType": {"type": "string"},
            },
        },
    },
}
ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 500)


def documented(body: str | None, query: tuple[str, ...] = ()) -> dict[str, Any]:
    """`responses` and `openapi_extra` of a contract operation (its body is read by hand)."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {
            "description": "The contract's error (`responseType.value` ER)",
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in ERROR_STATUSES
    }
    extra: dict[str, Any] = {}
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {body: {"schema": {"type": "object"}}},
        }
    if query:
        extra["parameters"] = [
            {"name": name, "in": "query", "required": n == 0, "schema": {"type": "string"}}
            for n, name in enumerate(query)
        ]
    return {"responses": responses, "openapi_extra": extra}


router = APIRouter(prefix=PREFIX, route_class=ContractRoute, tags=["collections-management"])


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def body_limit(container: Container) -> int:
    # Never above the API's own limit, so that this router always answers first.
    return min(contract.MAX_BODY_BYTES, container.settings.max_upload_bytes)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise contract.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise contract.too_large(limit)
            chunks.append(chunk)
    except HTTPException as error:
        # The API's own guard counts the same bytes and may stop the stream first.
        if error.status_code == 413:
            raise contract.too_large(limit) from None
        raise
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise contract.bad_media_type()
    body = await read_body(request, body_limit(container_of(request)))
    return contract.load_json(body)


async def authenticated(
    request: Request,
) -> tuple[contract_clients.ContractCaller, contract.Invoker]:
    """The calling client (credentials + live token of that client) and the invoker
    headers; a missing or wrong credential is a 401, a missing invoker header a 400."""
    headers = request.headers
    credentials = contract.parse_credentials(headers)
    invoker = contract.parse_invoker(headers)
    container = container_of(request)
    try:
        caller = await run_in_threadpool(
            contract_clients.authenticate,
            container.uow(write=False),
            credentials.client_id,
            credentials.client_secret,
            credentials.token,
            clock=container.clock,
        )
    except Unauthenticated as error:
        raise contract.unauthenticated(error.message) from None
    return caller, invoker


# --- token endpoint --------------------------------------------------------------------


def _basic(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise contract.unauthenticated("Authorization Basic mal formado") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise contract.unauthenticated("Authorization Basic mal formado")
    # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(client_id), unquote(secret)


@router.post(
    "/oauth2/token",
    summary="OAuth2 client credentials: a bearer token for the contract's calls",
    **documented("application/x-www-form-urlencoded"),
)
async def token(request: Request) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise contract.ContractError(
            415, "10415", "OTR", "El cuerpo debe ser application/x-www-form-urlencoded"
        )
    body = await read_body(request, body_limit(container_of(request)))
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise contract.bad_input("body", "formulario invalido") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            # RFC 6749 3.2: parameters must not be repeated.
            raise contract.bad_input(key, "parametro repetido")
        form[key] = value
    grant = form.get("grant_type", "").strip()
    if not grant:
        raise contract.null_input("grant_type")
    if grant != "client_credentials":
        raise contract.bad_input("grant_type", "solo client_credentials")
    basic = _basic(request.headers.get("authorization", ""))
    client_id, secret = (
        basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
    )
    if not client_id.strip() or not secret.strip():
        raise contract.unauthenticated("faltan client_id y client_secret")
    container = container_of(request)
    try:
        issued = await run_in_threadpool(
            contract_clients.issue_token,
            container.uow(),
            client_id.strip(),
            secret.strip(),
            clock=container.clock,
        )
    except Unauthenticated as error:
        raise contract.unauthenticated(error.message) from None
    return json_response(contract.token_answer(issued.access_token, issued.expires_in))


# --- the contract's operations ---------------------------------------------------------


def _customer_of(
    container: Container, company_id: int, party: contract.PartyId, account: str | None
) -> int:
    """The customer an item is about: the obligation's owner when the obligation is
    named (and then the id sent must be theirs), else the customer with that id."""
    if account is not None:
        try:
            found = cm.find_account(container.uow(write=False), company_id, account)
        except NotFound:
            raise contract.account_not_found() from None
        if not party.matches(found.id_type, found.national_id):
            raise contract.account_not_found()
        return found.customer_id
    for customer in cm.find_customers(container.uow(write=False), company_id, party.number):
        if party.matches(customer.id_type, customer.national_id):
            return customer.id
    raise contract.account_not_found()


def _record_profiles(
    container: Container, caller: contract_clients.ContractCaller, items: list[contract.ProfileItem]
) -> None:
    company = cm.company_facts(container.uow(write=False), caller.company_id)
    commands: list[neg.NewProfile] = []
    for n, item in enumerate(items):
        name = f"listValidation[{n}]"
        if item.data_processing_consent is False:
            raise contract.ContractError(
                422,
                "10001",
                "OTR",
                f"Error al ejecutar el PL: {name}.compliance.personDataProcessing es false: "
                "sin autorizacion no se registra el perfil",
            )
        customer_id = _customer_of(container, caller.company_id, item.party, item.account)
        commands.append(contract.profile_command(item, customer_id, company.currency, name))
    for command in commands:
        neg.record_profile(
            container.uow(),
            caller.company_id,
            command,
            actor=caller.actor,
            clock=container.clock,
        )


@router.post(
    "/v1/negotiations/profile",
    summary="Profiling (listValidation): record what customers declare about their means",
    **documented("application/json"),
)
async def profile(request: Request) -> Response:
    caller, _ = await authenticated(request)
    items = contract.parse_profile(await json_body(request))
    await run_in_threadpool(_record_profiles, container_of(request), caller, items)
    return json_response(contract.profile_answer(items))


MAX_TERM = 360


def _term_for(terms: neg.OfferTerms, parameters: Mapping[str, Any], wanted: Money) -> int:
    """The shortest term whose installment is at most `wanted` (the new installment the
    customer asks for), for the offer's financed amount, rate, grace and first due date."""
    financed = Money(money.to_minor(terms.financed, terms.currency), terms.currency)
    first_due = terms.installments[0].due_date
    dead = int(parameters.get("dead_months") or 0)
    for term in range(1, MAX_TERM + 1):
        try:
            schedule = french_schedule(
                financed,
                term=term,
                annual_rate=terms.annual_rate,
                first_due=first_due,
                grace_months=terms.grace_months,
                dead_months=dead,
            )
        except ValidationFailed:
            continue
        if schedule.max_installment.minor <= wanted.minor:
            return term
    raise contract.refused(
        ValidationFailed(f"no term up to {MAX_TERM} months gives an installment of {wanted}")
    )


def _analyse(
    container: Container,
    caller: contract_clients.ContractCaller,
    items: list[contract.AnalysisItem],
) -> dict[str, Any]:
    company = cm.company_facts(container.uow(write=False), caller.company_id)
    results: list[tuple[contract.AnalysisItem, neg.Simulation]] = []

    def run(
        item: contract.AnalysisItem, customer_id: int, params: dict[str, Any]
    ) -> neg.Simulation:
        code = item.strategy.value if item.strategy else None
        return neg.simulate(
            container.uow(write=False),
            caller.company_id,
            neg.Simulate(
                customer_id,
                debts=(item.account,) if item.account else (),
                strategies=(code,) if code else (),
                parameters={code: params} if code and params else {},
            ),
            actor=caller.actor,
            clock=container.clock,
        )

    for n, item in enumerate(items):
        customer_id = _customer_of(container, caller.company_id, item.party, item.account)
        params = contract.analysis_parameters(item, company.currency) if item.recalculate else {}
        simulation = run(item, customer_id, params)
        if item.recalculate:
            offers = [o for ob in simulation.obligations for o in ob.offers]
            if not offers:
                raise contract.refused(
                    ValidationFailed(
                        f"creditAnalysis[{n}]: {item.strategy} is not offered to this obligation"
                    )
                )
            terms = offers[0].terms
            wanted = item.overrides.installment
            if wanted and "term" not in params and terms is not None and terms.installments:
                amount = contract.money_of(
                    wanted, company.currency, f"creditAnalysis[{n}].collection.curAmt.amt"
                )
                params["term"] = _term_for(terms, offers[0].parameters, amount)
                simulation = run(item, customer_id, params)
        results.append((item, simulation))
    ids = [i for _, s in results for ob in s.obligations for o in ob.offers for i in o.exceptions]
    names = cm.exception_names(container.uow(write=False), caller.company_id, ids)
    return contract.analysis_answer(results, names)


@router.post(
    "/v1/negotiations/policies",
    summary="Policies (creditAnalysis): the offers of each obligation, or one recalculated",
    **documented("application/json"),
)
async def policies(request: Request) -> Response:
    caller, _ = await authenticated(request)
    items = contract.parse_analysis(await json_body(request))
    answer = await run_in_threadpool(_analyse, container_of(request), caller, items)
    return json_response(answer)


def _local_today(container: Container, timezone: str) -> date:
    return container.clock().astimezone(ZoneInfo(timezone)).date()


def _register(
    container: Container,
    caller: contract_clients.ContractCaller,
    invoker: contract.Invoker,
    record: contract.NegotiationRecord,
) -> dict[str, Any]:
    company = cm.company_facts(container.uow(write=False), caller.company_id)
    try:
        found = cm.find_account(container.uow(write=False), caller.company_id, record.account)
    except NotFound:
        raise contract.account_not_found() from None
    if record.party is not None and not record.party.matches(found.id_type, found.national_id):
        raise contract.account_not_found()
    amount = None
    if record.commitment is not None:
        name = "collection.partyAcctRelRec.amt"
        amount = contract.money_of(record.commitment, company.currency, name)
    due = record.mark_end or record.mark_start or _local_today(container, company.timezone)
    details = {**record.extras(), "invoker_channel": invoker.channel}
    if record.kind == "P":
        if amount is None or amount.minor == 0:
            raise contract.null_input("collection.partyAcctRelRec.amt")
        # A partial record for an obligation already in negotiation could never be closed.
        try:
            current = neg.negotiation_for_debt(
                container.uow(write=False), caller.company_id, found.reference, actor=caller.actor
            )
        except NotFound:
            current = None
        if current is not None and current.state in neg.OPEN_STATES:
            raise Conflict(
                f"obligation {record.account!r} is already in negotiation {current.id} "
                f"({current.state})"
            )
        pending = cm.record_partial(
            container.uow(),
            caller.company_id,
            caller.client_pk,
            record.account,
            record.strategy.value,
            amount.minor,
            due,
            details,
            clock=container.clock,
        )
        waiting = cm.pending_commitments(
            container.uow(write=False), caller.company_id, record.account
        )
        return contract.negotiation_answer(
            record.account,
            contract.STATE_RECEIVED,
            pending.received_at.date(),
            f"partial commitment {len(waiting)} received: the negotiation is registered "
            "with its total (T) commitment",
        )
    waiting = cm.pending_commitments(container.uow(write=False), caller.company_id, record.account)
    other = next((p for p in waiting if p.strategy != record.strategy.value), None)
    if other is not None:
        raise Conflict(
            f"obligation {record.account!r} has partial commitments of {other.strategy}: "
            f"their total cannot be a {record.strategy.value} commitment"
        )
    commitments: tuple[neg.CommitmentSpec, ...] = ()
    if waiting or amount is not None:
        if amount is None or amount.minor == 0:
            raise contract.null_input("collection.partyAcctRelRec.amt")
        partials = tuple(
            neg.CommitmentSpec(
                "P",
                Money(p.amount_minor, company.currency).amount,
                p.due_date,
                str(p.details.get("commitment_rate", "100")),
            )
            for p in waiting
        )
        total = neg.CommitmentSpec("T", amount.amount, due, record.commitment_rate)
        commitments = (*partials, total)
    key = record.request_id or record.request_number
    view = neg.create_negotiation(
        container.uow(),
        caller.company_id,
        neg.NewNegotiation(
            customer_id=found.customer_id,
            strategy=record.strategy.value,
            debts=(found.reference,),
            parameters=contract.negotiation_parameters(record),
            commitments=commitments,
            adviser=record.adviser,
            office=record.office,
            mark_start=record.mark_start,
            mark_end=record.mark_end,
            channel=contract.CHANNEL,
            external_id=f"cm-{key}" if key else None,
        ),
        actor=caller.actor,
        clock=container.clock,
    )
    cm.close_commitments(
        container.uow(),
        caller.company_id,
        caller.client_pk,
        record.account,
        [p.id for p in waiting],
        record.strategy.value,
        amount.minor if amount is not None else 0,
        due,
        details,
        view.id,
        clock=container.clock,
    )
    return contract.negotiation_answer(
        record.account,
        contract.STATE_RECEIVED,
        view.created_at.date(),
        f"successful transaction: negotiation {view.id} {view.state}",
    )


@router.post(
    "/v1/negotiations",
    summary="Register a negotiation (clientApp + collection); P records wait for their T",
    **documented("application/json"),
)
async def negotiations(request: Request) -> Response:
    caller, invoker = await authenticated(request)
    record = contract.parse_negotiation(await json_body(request))
    container = container_of(request)
    try:
        answer = await run_in_threadpool(_register, container, caller, invoker, record)
    except RecaudoError as error:
        # A refused registration also says so as the document's answer does:
        # `collection.state` "Rejected" and the reason in `collection.desc`.
        refusal = contract.refused(error)
        refusal.extra = contract.negotiation_answer(
            record.account, contract.STATE_REJECTED, container.clock().date(), error.message
        )
        raise refusal from None
    return json_response(answer)


def _details(
    container: Container,
    caller: contract_clients.ContractCaller,
    account: str,
    party: contract.PartyId | None,
) -> dict[str, Any]:
    company = cm.company_facts(container.uow(write=False), caller.company_id)
    try:
        found = cm.find_account(container.uow(write=False), caller.company_id, account)
    except NotFound:
        raise contract.account_not_found() from None
    if party is not None and not party.matches(found.id_type, found.national_id):
        raise contract.account_not_found()
    try:
        view = neg.negotiation_for_debt(
            container.uow(write=False), caller.company_id, found.reference, actor=caller.actor
        )
    except NotFound:
        raise contract.no_negotiation() from None
    customer = cm.customer_facts(container.uow(write=False), caller.company_id, found.customer_id)
    details = cm.negotiation_details(container.uow(write=False), caller.company_id, view.id)
    return contract.ics_answer(
        view,
        account=found.reference,
        product=found.product,
        id_type=customer.id_type,
        national_id=customer.national_id,
        phone=customer.phone,
        company_name=company.legal_name,
        channel=str(details.get("invoker_channel", view.channel)),
    )


@router.get(
    "/v1/agreement/ics",
    summary="Agreement ICS: the details of the negotiation of an obligation (?acctId=)",
    **documented(None, query=("acctId", "identSerialNum", "govIssueIdentType")),
)
async def agreement_ics(request: Request) -> Response:
    caller, _ = await authenticated(request)
    account, party = contract.parse_ics_query(request.query_params)
    answer = await run_in_threadpool(_details, container_of(request), caller, account, party)
    return json_response(answer)


# --- anything else under the prefix ----------------------------------------------------


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
async def elsewhere(request: Request) -> Response:
    path = request.url.path
    if path in METHODS or _other_route_has(request):
        raise contract.bad_method(request.method, path)
    raise contract.no_route(path)


def _other_route_has(request: Request) -> bool:
    """Whether a route registered elsewhere under the prefix (another contract's
    operation) serves this path with another method."""
    for route in request.app.router.routes:
        if getattr(route, "endpoint", None) is elsewhere:
            continue
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL:
            return True
    return False


# --- size guard ------------------------------------------------------------------------


class ContractBodyLimit:
    """In front of the API's own guard: a declared body over the contract's limit, under
    the prefix, is refused in the contract's shape before anything reads it."""

    def __init__(self, app: ASGIApp, *, container: Container) -> None:
        self.app = app
        self.limit = body_limit(container)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            for key, value in scope["headers"]:
                if key == b"content-length":
                    declared = value.decode("latin-1").strip()
                    if declared.isdigit() and int(declared) > self.limit:
                        response = error_response(contract.too_large(self.limit))
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
