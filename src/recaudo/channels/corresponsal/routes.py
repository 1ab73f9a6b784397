"""HTTP for the correspondent contract: `POST /collections-management/v1/collection`.

Mounted BEFORE the collections-management router (whose catch-all answers every other
path under the prefix). It reuses that contract's route class (every failure in the
contract's error shape, never a 500 body of another shape), its JSON body reader with
the size guard, and its OAuth2 client credentials (`client_id`, `client_secret` and a
bearer token from `/collections-management/oauth2/token`).

`R` reads a coupon's amount, holder and due date; `C` applies the payment through the
payments service with the correspondent's `X-Invoker-TxId` as the payment's external
id: replaying a `C` answers the same approval, never a second payment.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recaudo.bootstrap import Container
from recaudo.channels.collections_management import contract as cm_contract
from recaudo.channels.collections_management.routes import (
    PREFIX,
    ContractRoute,
    container_of,
    documented,
    json_body,
    json_response,
)
from recaudo.channels.corresponsal import contract
from recaudo.domain.errors import Unauthenticated
from recaudo.services import contract_clients, coupons

PATH = "/v1/collection"

router = APIRouter(prefix=PREFIX, route_class=ContractRoute, tags=["correspondent"])


async def _caller(request: Request) -> contract_clients.ContractCaller:
    credentials = cm_contract.parse_credentials(request.headers)
    container = container_of(request)
    try:
        return await run_in_threadpool(
            contract_clients.authenticate,
            container.uow(write=False),
            credentials.client_id,
            credentials.client_secret,
            credentials.token,
            clock=container.clock,
        )
    except Unauthenticated as error:
        raise cm_contract.unauthenticated(error.message) from None


def _run(
    container: Container,
    caller: contract_clients.ContractCaller,
    headers: contract.Headers,
    trn: contract.Collection,
) -> dict[str, object]:
    if trn.another_amount:
        raise contract.another_amount_refused()
    lookup = coupons.CouponLookup(
        trn.agreement, trn.reference, trn.scanned, due_date=trn.due_date, amount=trn.amount
    )
    if headers.action == contract.ACTION_READ:
        due = coupons.read_coupon(
            container.uow(write=False),
            caller.company_id,
            lookup,
            actor=caller.actor,
            clock=container.clock,
        )
        coupon, holder, approval = due.coupon, due.holder, ""
    else:
        paid = coupons.apply_coupon(
            container.uow(),
            caller.company_id,
            coupons.ApplyCoupon(lookup, headers.tx_id),
            actor=caller.actor,
            clock=container.clock,
        )
        coupon, holder, approval = paid.coupon, paid.holder, paid.coupon.approval_id or ""
    return contract.ok_answer(
        holder=holder,
        approval_id=approval,
        amount=coupon.amount,
        reference=coupon.number,
        due_date=coupon.due_date,
    )


@router.post(
    PATH,
    summary="Check collection: read (X-Invoker-Action R) or apply (C) a coupon's payment",
    description=(
        "The correspondent-banking contract. `R` answers the holder, the amount to pay and "
        "the due date; `C` applies the payment once per `X-Invoker-TxId` (a replay answers "
        "the same `approvalId`). A scanned barcode (`eanCode`, `effDt`, `totalCurAmt`) must "
        "match its coupon: GLN, reference, amount and due date."
    ),
    **documented("application/json"),
)
async def collection(request: Request) -> Response:
    caller = await _caller(request)
    headers = contract.parse_headers(request.headers)
    trn = contract.parse_collection(await json_body(request))
    answer = await run_in_threadpool(_run, container_of(request), caller, headers, trn)
    return json_response(answer)


@router.api_route(
    PATH, methods=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False
)
async def collection_other_methods(request: Request) -> Response:
    raise cm_contract.bad_method(request.method, request.url.path)
