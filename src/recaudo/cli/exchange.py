"""`recaudo exchange add|list|remove|run|files`: company inboxes (debts files) and outboxes
(payments files)."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

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
from recaudo.services import file_exchange as fx
from recaudo.services import queries
from recaudo.services.file_exchange import Direction, FileStatus
from recaudo.services.imports import ImportMode

exchange_app = typer.Typer(
    help="Company file exchange: inboxes of debts files, outboxes of payments files."
)
exchange_app.info.no_args_is_help = True
app.add_typer(exchange_app, name="exchange")


class ModeOption(StrEnum):
    UPSERT = "upsert"
    REPLACE = "replace"


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date (YYYY-MM-DD)", field="date") from None


def _time(text: str | None) -> time | None:
    if text is None:
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a time (HH:MM)", field="write_time") from None


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@exchange_app.command("add")
@handles_errors
def exchange_add(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    name: Annotated[str, typer.Option(help="The exchange's name, unique in the company.")],
    direction: Annotated[
        Direction, typer.Option(help="inbox: debts files in; outbox: payments files out.")
    ],
    target: Annotated[
        str,
        typer.Option(help="The delivery target (name or id): sftp/local for an inbox."),
    ],
    mode: Annotated[
        ModeOption | None, typer.Option(help="Inbox: how files are imported (default upsert).")
    ] = None,
    file_format: Annotated[
        str,
        typer.Option(
            "--format", help="Outbox: csv, xlsx, a layout name or a layout .toml/.yaml file."
        ),
    ] = "csv",
    report_to: Annotated[
        list[str] | None,
        typer.Option("--report-to", help="Inbox: e-mail the import report here (repeatable)."),
    ] = None,
    poll_seconds: Annotated[int, typer.Option(help="Inbox: seconds between two polls.")] = 300,
    write_time: Annotated[
        str | None, typer.Option(help="Outbox: local time the day's file is written (23:30).")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
) -> None:
    """Configure an inbox or an outbox of a company."""
    if Path(file_format).suffix.lower() in (".toml", ".yaml", ".yml"):
        # The job runs from the server's directory, not this shell's: keep an absolute path.
        file_format = str(Path(file_format).expanduser().resolve())
    spec = fx.ExchangeSpec(
        name=name,
        direction=direction,
        target=target,
        import_mode=None if mode is None else ImportMode(mode.value),
        file_format=file_format,
        report_recipients=tuple(report_to or ()),
        poll_seconds=poll_seconds,
        write_time=_time(write_time),
        enabled=not disabled,
    )
    with opened() as container:
        company_id = company_of(container, company).id
        view = fx.create_exchange(
            container.uow(),
            company_id,
            spec,
            actor=cli_actor(),
            clock=container.clock,
            allow_layout_files=True,
        )
    out.print(
        f"Exchange {view.id} {escape(view.name)} ({view.direction}) of {escape(company)} "
        f"through {view.target_kind} target {escape(view.target_name)}."
    )


@exchange_app.command("list")
@handles_errors
def exchange_list(
    company: Annotated[str | None, typer.Option(help="Only this company's exchanges.")] = None,
) -> None:
    """List the exchanges and when each last ran."""
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        with container.uow(write=False) as uow:
            views = fx.list_exchanges(uow, company_id)
            slugs = {c.id: c.slug for c in queries.list_companies(uow, None)}
    if not views:
        out.print("No exchanges: `recaudo exchange add`.")
        return
    table = Table("id", "company", "name", "direction", "target", "mode/format", "when")
    table.add_column("enabled")
    table.add_column("last run")
    for v in views:
        when = (
            f"every {v.poll_seconds} s"
            if v.direction is Direction.INBOX
            else f"{(v.write_time or fx.DEFAULT_WRITE_TIME):%H:%M} local"
        )
        table.add_row(
            str(v.id),
            slugs.get(v.company_id, str(v.company_id)),
            v.name,
            v.direction.value,
            f"{v.target_name} ({v.target_kind})",
            v.import_mode if v.direction is Direction.INBOX and v.import_mode else v.file_format,
            when,
            "yes" if v.enabled else "no",
            _when(v.last_run_at),
        )
    print_table(table)


@exchange_app.command("remove")
@handles_errors
def exchange_remove(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    name: Annotated[str, typer.Option(help="The exchange's name.")],
) -> None:
    """Remove an exchange and its file records (files already queued are still sent)."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            exchange_id = fx.find_exchange(uow, company_id, name).id
        fx.remove_exchange(
            container.uow(), company_id, exchange_id, actor=cli_actor(), clock=container.clock
        )
    out.print(f"Exchange {escape(name)} of {escape(company)} removed.")


@exchange_app.command("run")
@handles_errors
def exchange_run(
    company: Annotated[str | None, typer.Option(help="Only this company's exchanges.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this exchange (needs --company).")] = None,
    on: Annotated[
        str | None,
        typer.Option("--date", help="Outbox: write this day's file (YYYY-MM-DD) if missing."),
    ] = None,
) -> None:
    """Run exchanges now: poll inboxes, write outboxes' due files. Exits 1 if one failed."""
    if name is not None and company is None:
        raise ValidationFailed("--name needs --company", field="name")
    day = _day(on)
    if day is not None and name is None:
        raise ValidationFailed("--date needs --name (one outbox)", field="date")
    failed = False
    table = Table("exchange", "file", "status", "detail")
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        with container.uow(write=False) as uow:
            if name is not None:
                assert company_id is not None
                views = [fx.find_exchange(uow, company_id, name)]
            else:
                views = [v for v in fx.list_exchanges(uow, company_id) if v.enabled]
        for view in views:
            try:
                result = fx.run_exchange(
                    container.uow(),
                    view.company_id,
                    view.id,
                    settings=container.settings,
                    actor=cli_actor(),
                    clock=container.clock,
                    day=day,
                )
            except Exception as exc:  # report it, go on with the other exchanges
                failed = True
                err.print(f"[bold red]{escape(view.name)}:[/] {escape(_reason(exc))}")
                continue
            for f in result.files:
                table.add_row(view.name, f.file_name, f.status.value, f.detail or "")
            if result.skipped:
                table.add_row(view.name, "", "left", f"{result.skipped} files for a later poll")
    if table.row_count:
        print_table(table)
    else:
        out.print("Nothing to do.")
    if failed:
        raise typer.Exit(1)


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    return str(message or exc).splitlines()[0] if str(message or exc) else type(exc).__name__


@exchange_app.command("files")
@handles_errors
def exchange_files(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    name: Annotated[str, typer.Option(help="The exchange's name.")],
    status: Annotated[
        FileStatus | None, typer.Option(help="Only in this state.", case_sensitive=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Newest N.")] = 50,
) -> None:
    """The files an exchange imported, rejected or wrote, newest first."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            exchange_id = fx.find_exchange(uow, company_id, name).id
            files, total = fx.list_files(uow, company_id, exchange_id, status=status, limit=limit)
    if not files:
        out.print("No files yet.")
        return
    table = Table("id", "file", "status", "day", "delivery", "processed", "detail")
    for f in files:
        table.add_row(
            str(f.id),
            f.file_name,
            f.status.value,
            "" if f.accounting_date is None else f.accounting_date.isoformat(),
            f.delivery_status or "",
            _when(f.processed_at),
            f.detail or "",
        )
    print_table(table)
    if total > len(files):
        out.print(f"{len(files)} of {total} shown.")
