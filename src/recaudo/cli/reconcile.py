"""`recaudo reconcile` and `recaudo reconciliation list|show`: a bank's file against Recaudo."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli.main import app, cli_actor, err, fail, handles_errors, opened, out, print_table
from recaudo.services import queries
from recaudo.services import reconciliation as service
from recaudo.services.reconciliation import FileRefused, ItemView, Kind, ReconciliationView

MAX_ERRORS_SHOWN = 50

reconciliation_app = typer.Typer(help="Reconciliations of banks' settlement files: list, show.")
reconciliation_app.info.no_args_is_help = True
app.add_typer(reconciliation_app, name="reconciliation")


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--date must be YYYY-MM-DD, not {text!r}", 2)


def _summary(view: ReconciliationView) -> None:
    out.print(
        f"Reconciliation {view.id}: agreement {view.agreement_id}, accounting date "
        f"{view.accounting_date}, file {escape(view.file_name)} (layout {escape(view.layout)})."
    )
    table = Table("kind", "count")
    for kind, count in (
        (Kind.MATCHED, view.matched),
        (Kind.ONLY_BANK, view.only_bank),
        (Kind.ONLY_RECAUDO, view.only_recaudo),
        (Kind.AMOUNT_DIFFERS, view.amount_differs),
        (Kind.DUPLICATED, view.duplicated),
    ):
        table.add_row(kind.value, str(count))
    table.add_row("bank total", f"{format(view.bank_total, 'f')} {view.currency}")
    table.add_row("Recaudo total", f"{format(view.recaudo_total, 'f')} {view.currency}")
    print_table(table)


def _items(items: Iterable[ItemView], title: str, empty: str) -> None:
    table = Table(
        "kind",
        "transaction",
        "reference",
        "bank",
        "Recaudo",
        "date",
        "line",
        "payment",
        "detail",
        title=title,
    )
    rows = 0
    for i in items:
        rows += 1
        table.add_row(
            i.kind,
            escape(i.transaction_id or ""),
            escape(i.reference or ""),
            "" if i.bank_amount is None else format(i.bank_amount, "f"),
            "" if i.recaudo_amount is None else format(i.recaudo_amount, "f"),
            "" if i.paid_on is None else i.paid_on.isoformat(),
            "" if i.line_no is None else str(i.line_no),
            "" if i.payment_id is None else str(i.payment_id),
            escape(i.detail),
        )
    if rows:
        print_table(table)
    else:
        out.print(empty)


def _write_report(uow: UnitOfWork, reconciliation_id: int, target: Path) -> int:
    fmt = service.export_format(target)
    # Written beside the target and renamed: a failed export leaves no half file.
    partial = target.with_name(f".{target.name}.partial")
    try:
        with uow, partial.open("wb") as fh:
            count = service.write_export(uow, None, reconciliation_id, fmt, fh)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _refused(exc: FileRefused) -> None:
    for problem in exc.problems[:MAX_ERRORS_SHOWN]:
        err.print(escape(str(problem)))
    if len(exc.problems) > MAX_ERRORS_SHOWN:
        err.print(f"... and {len(exc.problems) - MAX_ERRORS_SHOWN} more errors listed")
    fail(exc.message, 2)


@app.command("reconcile")
@handles_errors
def reconcile(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The bank's settlement file.")
    ],
    agreement: Annotated[int, typer.Option(help="The channel agreement's id.")],
    day: Annotated[
        str | None,
        typer.Option("--date", help="Accounting date YYYY-MM-DD (default: the file's own)."),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(help="Layout name or file (default: the agreement's reconciliation layout)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write every item to this .csv or .xlsx file.")
    ] = None,
) -> None:
    """Match a bank's settlement file against the payments Recaudo recorded.

    Payments only in the bank's file are recorded (the money is real), each with an
    exception for an operator; reconciling the same file again records nothing twice.
    """
    accounting = _day(day)
    if report is not None:
        service.export_format(report)  # refuse a bad name before doing anything
    data = file.read_bytes()
    with opened() as container:
        try:
            view = service.reconcile(
                container.uow(),
                agreement,
                data,
                file_name=file.name,
                accounting_date=accounting,
                layout=layout,
                actor=cli_actor(),
                clock=container.clock,
            )
        except FileRefused as exc:
            _refused(exc)
        _summary(view)
        if view.recorded_payments:
            out.print(
                f"Recorded {len(view.recorded_payments)} payments only the bank had, each "
                "with an exception to review (`recaudo exceptions list`): "
                + ", ".join(str(p) for p in view.recorded_payments)
                + "."
            )
        with container.uow(write=False) as uow:
            differences = [
                i for i in service.iter_items(uow, None, view.id) if i.kind != Kind.MATCHED.value
            ]
        _items(differences, "differences", "No differences.")
        if report is not None:
            count = _write_report(container.uow(write=False), view.id, report)
            err.print(f"Report with {count} items written to {report}.")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


@reconciliation_app.command("list")
@handles_errors
def reconciliation_list(
    agreement: Annotated[int | None, typer.Option(help="Only this agreement's.")] = None,
) -> None:
    """List reconciliations, newest first."""
    with opened() as container, container.uow(write=False) as uow:
        page = service.list_reconciliations(
            uow, None, agreement_id=agreement, paging=queries.Paging(1, queries.MAX_PAGE_SIZE)
        )
    table = Table(
        "id",
        "agreement",
        "date",
        "file",
        "matched",
        "only bank",
        "only Recaudo",
        "amount differs",
        "duplicated",
        "bank total",
        "Recaudo total",
        "by",
        "when",
    )
    for v in page.items:
        table.add_row(
            str(v.id),
            str(v.agreement_id),
            v.accounting_date.isoformat(),
            escape(v.file_name),
            str(v.matched),
            str(v.only_bank),
            str(v.only_recaudo),
            str(v.amount_differs),
            str(v.duplicated),
            format(v.bank_total, "f"),
            format(v.recaudo_total, "f"),
            escape(v.created_by),
            _when(v.created_at),
        )
    print_table(table)


@reconciliation_app.command("show")
@handles_errors
def reconciliation_show(
    reconciliation_id: Annotated[int, typer.Argument(help="The reconciliation's id.")],
    kind: Annotated[
        Kind | None, typer.Option(help="Only items of this kind.", case_sensitive=False)
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Write the items to this .csv or .xlsx file.")
    ] = None,
) -> None:
    """Show a reconciliation's summary and its items."""
    if export is not None:
        service.export_format(export)
    with opened() as container:
        with container.uow(write=False) as uow:
            view = service.get_reconciliation(uow, None, reconciliation_id)
            items = list(
                service.iter_items(uow, None, reconciliation_id, kind=kind.value if kind else None)
            )
        _summary(view)
        _items(items, "items", "No items.")
        if export is not None:
            count = _write_report(container.uow(write=False), reconciliation_id, export)
            err.print(f"Report with {count} items written to {export}.")


@reconciliation_app.command("layout")
@handles_errors
def reconciliation_layout(
    agreement: Annotated[int, typer.Option(help="The channel agreement's id.")],
    layout: Annotated[
        str | None,
        typer.Argument(help="A shipped layout's name, or a .toml/.yaml layout file."),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Read the bank's files with the settlement layout.")
    ] = False,
) -> None:
    """Choose the layout an agreement's bank files are read with."""
    if (layout is None) == (not clear):
        fail("give a layout, or --clear", 2)
    if layout is not None and Path(layout).suffix.lower() in (".toml", ".yaml", ".yml"):
        # Kept as an absolute path: the server and the jobs run from other directories.
        layout = str(Path(layout).resolve())
    with opened() as container:
        in_use = service.set_reconciliation_layout(
            container.uow(),
            agreement,
            layout,
            actor=cli_actor(),
            clock=container.clock,
            allow_files=True,
        )
    out.print(f"Agreement {agreement} reads its bank's files with layout {escape(in_use)}.")
