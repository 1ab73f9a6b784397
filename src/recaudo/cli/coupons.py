"""`recaudo coupon settings|issue|show|pdf`: payment coupons with a GS1-128 barcode."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from recaudo.cli.main import app, cli_actor, company_of, handles_errors, opened, out
from recaudo.services import coupons

coupon_app = typer.Typer(help="Payment coupons: settings per service, issue, show, PDF.")
coupon_app.info.no_args_is_help = True
app.add_typer(coupon_app, name="coupon")

CompanyOpt = Annotated[str, typer.Option("--company", help="The company's slug.")]


def _show(view: coupons.CouponView) -> None:
    rows = [
        ("number", view.number),
        ("ticket", str(view.ticket)),
        ("service", f"{view.service_code} — {view.service_name}"),
        *((title, value) for title, value in view.references),
        ("amount", f"{coupons.format_amount(view.amount)} {view.amount.currency}"),
        ("due date", view.due_date.isoformat()),
        ("barcode", view.human_readable),
        ("state", view.state if view.approval_id is None else f"{view.state} ({view.approval_id})"),
    ]
    for label, value in rows:
        out.print(f"{label + ':':<12}{escape(value)}")


@coupon_app.command("settings")
@handles_errors
def coupon_settings(
    company: CompanyOpt,
    service: Annotated[str, typer.Option(help="The service's code.")],
    gln: Annotated[str, typer.Option(help="The biller's GLN, AI (415), 13 digits.")],
    agreement: Annotated[str, typer.Option(help="The correspondent agreement code (refId).")],
    due_days: Annotated[int, typer.Option(help="Days a coupon stays payable.")] = 30,
) -> None:
    """Set a service's coupon settings."""
    with opened() as container:
        company_id = company_of(container, company).id
        view = coupons.configure_coupons(
            container.uow(),
            company_id,
            service,
            coupons.CouponConfig(gln, agreement, due_days),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(
        f"{escape(view.service_code)}: GLN {view.gln}, agreement {view.agreement_code}, "
        f"payable {view.due_days} days"
    )


@coupon_app.command("issue")
@handles_errors
def coupon_issue(
    company: CompanyOpt,
    ticket: Annotated[int, typer.Option(help="The CREATED transaction's ticket.")],
) -> None:
    """Issue the coupon of a CREATED transaction (it becomes CAPTURED)."""
    with opened() as container:
        company_id = company_of(container, company).id
        view = coupons.issue_coupon(
            container.uow(), company_id, ticket, actor=cli_actor(), clock=container.clock
        )
    _show(view)


@coupon_app.command("show")
@handles_errors
def coupon_show(
    company: CompanyOpt,
    number: Annotated[str, typer.Argument(help="The coupon number.")],
) -> None:
    """Show one coupon."""
    with opened() as container:
        company_id = company_of(container, company).id
        view = coupons.get_coupon(container.uow(write=False), company_id, number, actor=cli_actor())
    _show(view)


@coupon_app.command("pdf")
@handles_errors
def coupon_pdf(
    company: CompanyOpt,
    number: Annotated[str, typer.Argument(help="The coupon number.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (default cupon-<number>.pdf; - stdout)."),
    ] = None,
) -> None:
    """Write a coupon's PDF."""
    with opened() as container:
        company_id = company_of(container, company).id
        data = coupons.render_pdf(container.uow(write=False), company_id, number, actor=cli_actor())
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = output or Path(f"cupon-{number}.pdf")
    path.write_bytes(data)
    out.print(f"{escape(str(path))} ({len(data)} bytes)")
