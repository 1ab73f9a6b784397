"""`recaudo remittance ...` (SEPA direct debits, transfers, card runs), `recaudo returns load`
and `recaudo card-gateway-sim` (the simulated card gateway)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from recaudo.adapters import card_gateway, card_gateway_sim
from recaudo.cli.main import (
    app,
    cli_actor,
    company_of,
    err,
    handles_errors,
    opened,
    out,
    print_table,
)
from recaudo.domain.errors import ValidationFailed
from recaudo.services import queries, remittances, returns
from recaudo.services.remittances import NewRemittance, PaymentFilter, RemittanceView

remittance_app = typer.Typer(
    help="Remittances: SEPA direct debits (pain.008), transfers (pain.001) and card runs."
)
remittance_app.info.no_args_is_help = True
app.add_typer(remittance_app, name="remittance")
returns_app = typer.Typer(help="The bank's return files (pain.002, camt.054, camt.053).")
returns_app.info.no_args_is_help = True
app.add_typer(returns_app, name="returns")

CompanyOpt = Annotated[str, typer.Option("--company", help="The company's slug.")]
RemittanceArg = Annotated[int, typer.Argument(help="The remittance's id.")]


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date (YYYY-MM-DD)", field="date") from None


def _money(view: RemittanceView, value: object) -> str:
    return f"{format(value, 'f')} {view.currency}"


def _show(view: RemittanceView) -> None:
    rows = [
        ("id", str(view.id)),
        ("name", view.name),
        ("kind", view.kind),
        ("state", view.state),
        ("charge date", view.charge_date.isoformat()),
        ("creditor account", str(view.creditor_account_id)),
        ("payments", f"{view.payment_count} ({_money(view, view.payments_total)})"),
        ("message id", view.message_id or ""),
        ("file", f"{view.file_name} ({view.file_version})" if view.file_name else ""),
        ("sha256", view.sha256 or ""),
        ("file totals", f"{view.transaction_count} tx, {_money(view, view.control_sum)}"),
        (
            "generated",
            "" if view.generated_at is None else f"{view.generated_at:%Y-%m-%d %H:%M} UTC",
        ),
        ("sent", "" if view.sent_at is None else f"{view.sent_at:%Y-%m-%d %H:%M} UTC"),
    ]
    for label, value in rows:
        out.print(f"{label + ':':<18}{escape(value)}")
    _findings(view.errors, view.warnings)


def _findings(errors: list[dict[str, object]], warnings: list[dict[str, object]]) -> None:
    for severity, items in (("error", errors), ("warning", warnings)):
        for f in items:
            colour = "red" if severity == "error" else "yellow"
            out.print(f"[{colour}]{severity}[/] {f['code']}: {escape(str(f['message']))}")


@remittance_app.command("create")
@handles_errors
def remittance_create(
    company: CompanyOpt,
    name: Annotated[str, typer.Option(help="A name for people (e.g. 'Cuotas marzo').")],
    charge_date: Annotated[str, typer.Option(help="The charge / execution date, YYYY-MM-DD.")],
    account: Annotated[int, typer.Option(help="The creditor account's id.")],
    kind: Annotated[str, typer.Option(help="direct_debit, transfer or card.")] = "direct_debit",
) -> None:
    """Create an open remittance."""
    day = _date(charge_date)
    with opened() as container:
        view = remittances.create_remittance(
            container.uow(),
            company_of(container, company).id,
            NewRemittance(name, kind, day, account),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"Remittance {view.id} ({view.kind}, charge date {view.charge_date}) is open.")


@remittance_app.command("add")
@handles_errors
def remittance_add(
    remittance_id: RemittanceArg,
    company: CompanyOpt,
    payment: Annotated[int | None, typer.Option(help="Add this one payment.")] = None,
    status: Annotated[str | None, typer.Option(help="Filter: not_remitted, to_recover...")] = None,
    method: Annotated[str | None, typer.Option(help="Filter: the kind's method.")] = None,
    due_month: Annotated[
        str | None, typer.Option(help="Filter: due in this month, YYYY-MM.")
    ] = None,
) -> None:
    """Add one payment (--payment) or every payment the filters select (one statement)."""
    if payment is not None and (status or method or due_month):
        raise ValidationFailed("give --payment or filters, not both", field="payment")
    with opened() as container:
        company_id = company_of(container, company).id
        if payment is not None:
            view = remittances.add_payment(
                container.uow(), company_id, remittance_id, payment,
                actor=cli_actor(), clock=container.clock,
            )  # fmt: skip
            added = 1
        else:
            bulk = remittances.add_payments(
                container.uow(),
                company_id,
                remittance_id,
                PaymentFilter(status=status, method=method, due_month=due_month),
                actor=cli_actor(),
                clock=container.clock,
            )
            view, added = bulk.remittance, bulk.added
    out.print(
        f"Added {added} payment(s); remittance {view.id} has {view.payment_count} "
        f"({_money(view, view.payments_total)})."
    )


@remittance_app.command("remove")
@handles_errors
def remittance_remove(
    remittance_id: RemittanceArg,
    payment: Annotated[int, typer.Argument(help="The payment's id.")],
    company: CompanyOpt,
) -> None:
    """Take a payment out of an open remittance."""
    with opened() as container:
        view = remittances.remove_payment(
            container.uow(), company_of(container, company).id, remittance_id, payment,
            actor=cli_actor(), clock=container.clock,
        )  # fmt: skip
    out.print(f"Removed payment {payment}; remittance {view.id} has {view.payment_count}.")


@remittance_app.command("validate")
@handles_errors
def remittance_validate(remittance_id: RemittanceArg, company: CompanyOpt) -> None:
    """Check an open remittance: lists every blocking error and warning (exit 1 on errors)."""
    with opened() as container:
        report = remittances.validate_remittance(
            container.uow(), company_of(container, company).id, remittance_id,
            actor=cli_actor(), clock=container.clock,
        )  # fmt: skip
    _findings([f.document() for f in report.errors], [f.document() for f in report.warnings])
    out.print(f"{report.error_count} blocking error(s), {report.warning_count} warning(s).")
    if not report.ok:
        raise typer.Exit(1)


@remittance_app.command("generate")
@handles_errors
def remittance_generate(remittance_id: RemittanceArg, company: CompanyOpt) -> None:
    """Write the SEPA file and move the payments to remitted (refused on blocking errors)."""
    with opened() as container:
        result = remittances.generate_remittance(
            container.uow(),
            company_of(container, company).id,
            remittance_id,
            data_dir=container.settings.data_dir,
            actor=cli_actor(),
            clock=container.clock,
        )
    view = result.remittance
    out.print(
        f"{escape(view.file_name or '')} ({view.file_version}): {result.transaction_count} "
        f"transaction(s) in {result.groups} block(s), {_money(view, result.control_sum)}"
    )
    out.print(f"sha256 {view.sha256}")
    _findings([], view.warnings)


@remittance_app.command("sent")
@handles_errors
def remittance_sent(remittance_id: RemittanceArg, company: CompanyOpt) -> None:
    """The bank has the file: its payments are paid."""
    with opened() as container:
        view = remittances.mark_sent(
            container.uow(), company_of(container, company).id, remittance_id,
            actor=cli_actor(), clock=container.clock,
        )  # fmt: skip
    out.print(f"Remittance {view.id} sent: {view.payment_count} payment(s) paid.")


@remittance_app.command("charge")
@handles_errors
def remittance_charge(remittance_id: RemittanceArg, company: CompanyOpt) -> None:
    """Charge a card remittance through the configured gateway, payment by payment."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            total = remittances.get_remittance(uow, company_id, remittance_id).payment_count
        progress = Progress(
            TextColumn("[bold]charging"), BarColumn(), MofNCompleteColumn(), console=err,
            transient=True,
        )  # fmt: skip
        with card_gateway.from_settings(container.settings) as gateway, progress:
            task = progress.add_task("charging", total=total)
            run = remittances.charge_card_remittance(
                container.uow(),
                company_id,
                remittance_id,
                gateway=gateway,
                actor=cli_actor(),
                clock=container.clock,
                settings=container.settings,
                on_charged=lambda _line: progress.advance(task),
            )
    table = Table("payment", "amount", "status", "gateway message", "commitment ended")
    for line in run.lines:
        table.add_row(
            str(line.payment_id),
            format(line.amount, "f"),
            line.status,
            escape(line.gateway_message),
            "yes" if line.commitment_ended else "",
        )
    print_table(table)
    out.print(
        f"{run.paid} paid, {run.rejected} rejected ({run.expired} expired card(s)); "
        f"remittance {run.remittance.id} is {run.remittance.state}."
    )


@remittance_app.command("list")
@handles_errors
def remittance_list(
    company: CompanyOpt,
    state: Annotated[str | None, typer.Option(help="open, generated or sent.")] = None,
    kind: Annotated[str | None, typer.Option(help="direct_debit, transfer or card.")] = None,
) -> None:
    """List remittances, newest first."""
    with opened() as container, container.uow(write=False) as uow:
        page = remittances.list_remittances(
            uow,
            company_of(container, company).id,
            state=state,
            kind=kind,
            paging=queries.Paging(1, queries.MAX_PAGE_SIZE),
        )
    table = Table("id", "name", "kind", "state", "charge date", "payments", "total", "message id")
    for v in page.items:
        table.add_row(
            str(v.id),
            escape(v.name),
            v.kind,
            v.state,
            v.charge_date.isoformat(),
            str(v.payment_count),
            _money(v, v.payments_total),
            v.message_id or "",
        )
    print_table(table)


@remittance_app.command("show")
@handles_errors
def remittance_show(remittance_id: RemittanceArg, company: CompanyOpt) -> None:
    """Show a remittance, with the errors and warnings of its last validation."""
    with opened() as container, container.uow(write=False) as uow:
        view = remittances.get_remittance(uow, company_of(container, company).id, remittance_id)
    _show(view)


@remittance_app.command("download")
@handles_errors
def remittance_download(
    remittance_id: RemittanceArg,
    company: CompanyOpt,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (default: its own name; - for stdout)."),
    ] = None,
) -> None:
    """Write the generated XML exactly as stored."""
    with opened() as container, container.uow(write=False) as uow:
        view, data = remittances.read_remittance_file(
            uow, company_of(container, company).id, remittance_id,
            data_dir=container.settings.data_dir,
        )  # fmt: skip
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = output or Path(view.file_name or f"remittance-{view.id}.xml")
    target.write_bytes(data)
    out.print(f"Wrote {escape(str(target))} ({len(data)} bytes, sha256 {view.sha256}).")


def _print_items(items: list[returns.ReturnItem]) -> None:
    table = Table("end-to-end id", "payment", "code", "reason", "amount", "outcome", "status")
    for i in items:
        table.add_row(
            escape(i.end_to_end_id),
            "" if i.payment_id is None else str(i.payment_id),
            i.reason_code or "",
            escape(i.reason or ""),
            "" if i.amount is None else format(i.amount, "f"),
            i.outcome,
            i.status or "",
        )
    print_table(table)


@returns_app.command("list")
@handles_errors
def returns_list(
    company: CompanyOpt,
    remittance: Annotated[int | None, typer.Option(help="Only this remittance's.")] = None,
) -> None:
    """List loaded return files, newest first."""
    with opened() as container, container.uow(write=False) as uow:
        page = returns.list_return_files(
            uow,
            company_of(container, company).id,
            remittance_id=remittance,
            paging=queries.Paging(1, queries.MAX_PAGE_SIZE),
        )
    table = Table("id", "kind", "message id", "file", "remittance", "returned", "loaded")
    for v in page.items:
        table.add_row(
            str(v.id),
            v.kind,
            escape(v.message_id),
            escape(v.file_name),
            "" if v.remittance_id is None else str(v.remittance_id),
            str(v.returned_count),
            f"{v.loaded_at:%Y-%m-%d %H:%M} UTC",
        )
    print_table(table)


@returns_app.command("show")
@handles_errors
def returns_show(
    file_id: Annotated[int, typer.Argument(help="The return file's id.")], company: CompanyOpt
) -> None:
    """Show a loaded return file and what happened to each of its transactions."""
    with opened() as container, container.uow(write=False) as uow:
        view = returns.get_return_file(uow, company_of(container, company).id, file_id)
    out.print(
        f"Return file {view.id}: {view.kind} {escape(view.message_id)} "
        f"({escape(view.file_name)}), remittance {view.remittance_id}, "
        f"{view.returned_count} returned, loaded {view.loaded_at:%Y-%m-%d %H:%M} UTC"
    )
    _print_items(view.items)


@returns_app.command("load")
@handles_errors
def returns_load(
    file: Annotated[Path, typer.Argument(help="The bank's pain.002, camt.054 or camt.053.")],
    company: CompanyOpt,
) -> None:
    """Load a return file: mark each returned payment and apply its reason code's follow-up."""
    data = file.read_bytes()
    with opened() as container:
        load = returns.load_return_file(
            container.uow(),
            company_of(container, company).id,
            data,
            file.name,
            actor=cli_actor(),
            clock=container.clock,
            settings=container.settings,
        )
    view = load.file
    if not load.created:
        out.print(f"Already loaded as return file {view.id} (nothing changed):")
    _print_items(view.items)
    out.print(
        f"Return file {view.id} ({view.kind} {escape(view.message_id)}) for remittance "
        f"{view.remittance_id}: {view.returned_count} payment(s) returned."
    )


@app.command("card-gateway-sim")
@handles_errors
def card_gateway_simulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8089,
    key: Annotated[
        str | None,
        typer.Option(envvar="RECAUDO_CARD_GATEWAY_KEY", help="API key callers must send."),
    ] = None,
) -> None:
    """Run the simulated card gateway (tokens tok_... approve, tok_decline... decline,
    tok_expired... are expired cards). Point RECAUDO_CARD_GATEWAY_URL at it."""
    out.print(f"Simulated card gateway on http://{host}:{port} (Ctrl-C stops it).")
    card_gateway_sim.run(host, port, key)
