"""Checkout monitoring: the transaction report (page, CSV, XLSX) and user-defined flat files."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from recaudo.api.auth import ActorDep, ContainerDep, company_id_of
from recaudo.api.errors import problem_responses
from recaudo.api.routers.common import PagingDep, paged
from recaudo.api.schemas import Page, Strict, UtcDatetime, amount
from recaudo.services import checkout_reports as reports

router = APIRouter(tags=["checkout monitoring"], responses=problem_responses(400, 401, 403, 422))

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class FilterIn(Strict):
    service: str | None = Field(None, max_length=30, description="The service's code.")
    since: UtcDatetime | None = Field(None, description="Created at or after (inclusive).")
    until: UtcDatetime | None = Field(None, description="Created before (exclusive).")
    state: str | None = Field(None, max_length=16, description="CREATED, PENDING, OK, ...")
    means: str | None = Field(None, max_length=16, description="Payment system (PSE, CARD, ...).")
    bank: str | None = Field(None, max_length=60)
    confirmation: str | None = Field(None, max_length=40, description="The bank's trace code.")
    coupon: str | None = Field(None, max_length=25, description="The coupon number.")
    ticket: int | None = Field(None, ge=1, le=10**15)

    def command(self) -> reports.TransactionFilter:
        return reports.TransactionFilter(
            service_code=self.service,
            since=self.since,
            until=self.until,
            state=self.state,
            means=self.means,
            bank=self.bank,
            confirmation=self.confirmation,
            coupon=self.coupon,
            ticket=self.ticket,
        )


class QueryFilterIn(FilterIn):
    # The paging parameters share the query string (read by PagingDep).
    page: int | None = Field(None, ge=1)
    page_size: int | None = Field(None, ge=1)


FilterDep = Annotated[QueryFilterIn, Query()]


class ExportFilterIn(FilterIn):
    format: Literal["csv", "xlsx"] = "csv"


ExportFilterDep = Annotated[ExportFilterIn, Query()]


class TransactionRowOut(BaseModel):
    ticket: int
    first_reference: str | None
    amount: str
    currency: str
    company: str
    service_code: str
    service: str
    date: UtcDatetime
    means: str | None = Field(description="The payment system.")
    bank: str | None
    state: str
    trace_code: str | None
    payer_email: str | None
    coupon: str | None

    @classmethod
    def of(cls, r: reports.ReportRow) -> TransactionRowOut:
        return cls(
            ticket=r.ticket,
            first_reference=r.first_reference,
            amount=amount(r.amount.amount),
            currency=r.amount.currency,
            company=r.company,
            service_code=r.service_code,
            service=r.service_name,
            date=r.created_at,
            means=r.means,
            bank=r.bank,
            state=r.state,
            trace_code=r.trace_code,
            payer_email=r.payer_email,
            coupon=r.coupon,
        )


@router.get(
    "/checkout/reports/transactions",
    summary="The transaction report (eCollect's filters and columns), newest first",
)
def transaction_report(
    request: Request,
    response: Response,
    f: FilterDep,
    actor: ActorDep,
    container: ContainerDep,
    p: PagingDep,
) -> Page[TransactionRowOut]:
    page = reports.search_transactions(
        container.uow(write=False), company_id_of(actor), f.command(), actor=actor, paging=p
    )
    return paged(request, response, [TransactionRowOut.of(r) for r in page.items], page.total, p)


def _file(data: bytes, fmt: str, name: str) -> Response:
    return Response(
        content=data,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@router.get(
    "/checkout/reports/transactions/export",
    summary="The whole transaction report as CSV or XLSX, oldest first",
    response_class=Response,
    responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["xlsx"]: {}}}},
)
def export_report(f: ExportFilterDep, actor: ActorDep, container: ContainerDep) -> Response:
    out = io.BytesIO()
    reports.export_transactions(
        container.uow(write=False), company_id_of(actor), f.command(), f.format, out, actor=actor
    )
    return _file(out.getvalue(), f.format, f"transacciones-{container.clock().date().isoformat()}")


class FlatFieldIn(Strict):
    kind: Literal["column", "reference", "fixed"]
    header: str = Field(min_length=1, max_length=60)
    value: str = Field("", max_length=100, description="Column key, reference position, or text.")


class FlatFileIn(Strict):
    filters: FilterIn = Field(default_factory=FilterIn)
    fields: list[FlatFieldIn] = Field(min_length=1, max_length=reports.MAX_FLAT_FIELDS)
    format: Literal["csv", "xlsx"] = "csv"


@router.post(
    "/checkout/reports/flat-file",
    summary="A user-defined flat file: chosen report columns, references and fixed fields",
    description=f"Column keys: {', '.join(reports.COLUMNS)}.",
    response_class=Response,
    responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["xlsx"]: {}}}},
)
def flat_file(body: FlatFileIn, actor: ActorDep, container: ContainerDep) -> Response:
    out = io.BytesIO()
    reports.export_flat_file(
        container.uow(write=False),
        company_id_of(actor),
        body.filters.command(),
        [reports.FlatField(x.kind, x.header, x.value) for x in body.fields],
        body.format,
        out,
        actor=actor,
    )
    return _file(out.getvalue(), body.format, "reporte")
