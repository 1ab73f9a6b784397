"""Coupons: a service's coupon settings, issuing a coupon for a ticket, reading it, its PDF."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.schemas import Strict, UtcDatetime, amount
from recaudo.services import coupons

router = APIRouter(tags=["coupons"], responses=problem_responses(400, 401, 403, 422))

ServiceCode = Annotated[str, Path(min_length=1, max_length=30, description="The service's code.")]
CouponNumber = Annotated[
    str,
    Path(
        min_length=1,
        max_length=25,
        pattern=r"^[0-9]+$",
        description="The coupon number (its barcode's (8020) reference).",
    ),
]


class CouponSettingsIn(Strict):
    gln: str = Field(
        min_length=13,
        max_length=13,
        pattern=r"^[0-9]{13}$",
        description="The biller's GLN, AI (415): 13 digits, the last one the GS1 check digit.",
        examples=["7709998013711"],
    )
    agreement_code: str = Field(
        min_length=1,
        max_length=20,
        pattern=r"^[0-9]+$",
        description="The correspondent agreement (the contract's `refId`) naming this service.",
        examples=["15907356"],
    )
    due_days: int = Field(30, ge=1, le=365, description="Days a coupon stays payable.")


class CouponSettingsOut(BaseModel):
    service_code: str
    gln: str
    agreement_code: str
    due_days: int


class CouponIn(Strict):
    ticket: int = Field(ge=1, le=10**15, description="The CREATED transaction's ticket.")


class ReferenceOut(BaseModel):
    title: str
    value: str


class CouponOut(BaseModel):
    number: str = Field(description="The coupon number: the ticket on 12 digits, AI (8020).")
    ticket: int
    service_code: str
    service_name: str
    references: list[ReferenceOut]
    amount: str
    currency: str
    due_date: date
    gln: str
    barcode: str = Field(
        description="The GS1 element string, FNC1 written as the group separator (U+001D)."
    )
    human_readable: str = Field(description="The line printed under the bars.")
    state: str = Field(description="ISSUED, or PAID once a correspondent applied it.")
    approval_id: str | None
    payment_id: int | None
    paid_at: UtcDatetime | None
    created_at: UtcDatetime

    @classmethod
    def of(cls, v: coupons.CouponView) -> CouponOut:
        return cls(
            number=v.number,
            ticket=v.ticket,
            service_code=v.service_code,
            service_name=v.service_name,
            references=[ReferenceOut(title=t, value=x) for t, x in v.references],
            amount=amount(v.amount.amount),
            currency=v.amount.currency,
            due_date=v.due_date,
            gln=v.gln,
            barcode=v.element_string,
            human_readable=v.human_readable,
            state=v.state,
            approval_id=v.approval_id,
            payment_id=v.payment_id,
            paid_at=v.paid_at,
            created_at=v.created_at,
        )


@router.put(
    "/checkout/services/{code}/coupon-settings",
    summary="Set a service's coupon settings: GLN, correspondent agreement, payable days",
    responses=problem_responses(404, 409),
)
def put_coupon_settings(
    code: ServiceCode, body: CouponSettingsIn, actor: ActorDep, container: ContainerDep
) -> CouponSettingsOut:
    view = coupons.configure_coupons(
        container.uow(),
        company_id_of(actor),
        code,
        coupons.CouponConfig(body.gln, body.agreement_code, body.due_days),
        actor=actor,
        clock=container.clock,
    )
    return CouponSettingsOut(
        service_code=view.service_code,
        gln=view.gln,
        agreement_code=view.agreement_code,
        due_days=view.due_days,
    )


@router.post(
    "/coupons",
    summary="Issue the coupon of a CREATED transaction (which becomes CAPTURED)",
    description="Issuing again for the same ticket answers the same coupon.",
    status_code=201,
    responses=problem_responses(404, 409),
)
def issue_coupon(body: CouponIn, actor: ActorDep, container: ContainerDep) -> CouponOut:
    view = coupons.issue_coupon(
        container.uow(), company_id_of(actor), body.ticket, actor=actor, clock=container.clock
    )
    return CouponOut.of(view)


@router.get("/coupons/{number}", summary="One coupon", responses=problem_responses(404))
def get_coupon(number: CouponNumber, actor: ActorDep, container: ContainerDep) -> CouponOut:
    view = coupons.get_coupon(container.uow(write=False), company_id_of(actor), number, actor=actor)
    return CouponOut.of(view)


@router.get(
    "/coupons/{number}/pdf",
    summary="The coupon as PDF, with its GS1-128 barcode",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **problem_responses(404)},
)
def coupon_pdf(number: CouponNumber, actor: ActorDep, container: ContainerDep) -> Response:
    data = coupons.render_pdf(container.uow(write=False), company_id_of(actor), number, actor=actor)
    return Response(
        content=data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="cupon-{number}.pdf"'},
    )
