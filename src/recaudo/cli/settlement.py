"""`recaudo settle` and `recaudo settlement list|show|download`: the daily settlement files."""

from __future__ import annotations

import sys
from datetime import date, time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from recaudo.cli.main import app, cli_actor, handles_errors, opened, out, print_table
from recaudo.domain.errors import ValidationFailed
from recaudo.services import queries, settlements

settlement_app = typer.Typer(help="Settlement files: list, show and download them.")
settlement_app.info.no_args_is_help = True
app.add_typer(settlement_app, name="settlement")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date (YYYY-MM-DD)", field="date") from None


def _describe(view: settlements.SettlementView) -> list[tuple[str, str]]:
    return [
        ("id", str(view.id)),
        ("file", view.file_name),
        ("agreement", str(view.agreement_id)),
        ("accounting date", view.accounting_date.isoformat()),
        ("version", str(view.version)),
        ("layout", view.layout),
        ("payments", str(view.payment_count)),
        ("records", str(view.record_count)),
        ("total", f"{format(view.total, 'f')} {view.currency}"),
        ("size", f"{view.size_bytes} bytes"),
        ("sha256", view.sha256),
        ("status", view.status),
        ("generated", f"{view.generated_at:%Y-%m-%d %H:%M:%S} UTC by {view.generated_by}"),
        ("removed", "" if view.deleted_at is None else f"{view.deleted_at:%Y-%m-%d} (retention)"),
    ]


@app.command("settle")
@handles_errors
def settle(
    agreement: Annotated[int, typer.Option(help="The channel agreement's id.")],
    on: Annotated[str, typer.Option("--date", help="The accounting date, YYYY-MM-DD.")],
) -> None:
    """Write an agreement's settlement file for one accounting date (idempotent)."""
    day = _date(on)
    with opened() as container:
        run = settlements.generate_settlement(
            container.uow(),
            agreement,
            day,
            data_dir=container.settings.data_dir,
            actor=cli_actor(),
            clock=container.clock,
        )
    view = run.file
    state = "new version" if run.created else "unchanged, already generated"
    out.print(f"{escape(view.file_name)} (version {view.version}, {state})")
    out.print(
        f"payments {view.payment_count}, records {view.record_count}, "
        f"total {format(view.total, 'f')} {view.currency}"
    )
    out.print(f"sha256 {view.sha256}")


@settlement_app.command("list")
@handles_errors
def settlement_list(
    agreement: Annotated[int | None, typer.Option(help="Only this agreement's files.")] = None,
    on: Annotated[
        str | None, typer.Option("--date", help="Only this accounting date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """List settlement files, newest accounting date first."""
    day = None if on is None else _date(on)
    with opened() as container, container.uow(write=False) as uow:
        page = settlements.list_settlements(
            uow,
            None,
            agreement_id=agreement,
            accounting_date=day,
            paging=queries.Paging(1, queries.MAX_PAGE_SIZE),
        )
    table = Table(
        "id", "agreement", "date", "version", "file", "payments", "records", "total", "status"
    )
    for v in page.items:
        table.add_row(
            str(v.id),
            str(v.agreement_id),
            v.accounting_date.isoformat(),
            str(v.version),
            escape(v.file_name),
            str(v.payment_count),
            str(v.record_count),
            f"{format(v.total, 'f')} {v.currency}",
            v.status if v.deleted_at is None else f"{v.status} (removed)",
        )
    print_table(table)


@settlement_app.command("show")
@handles_errors
def settlement_show(
    settlement_id: Annotated[int, typer.Argument(help="The settlement file's id.")],
) -> None:
    """Show one settlement file's details."""
    with opened() as container, container.uow(write=False) as uow:
        view = settlements.get_settlement(uow, None, settlement_id)
    for label, value in _describe(view):
        out.print(f"{label + ':':<17}{escape(value)}")


@settlement_app.command("download")
@handles_errors
def settlement_download(
    settlement_id: Annotated[int, typer.Argument(help="The settlement file's id.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write here (default: the file's own name; - for stdout)."
        ),
    ] = None,
) -> None:
    """Write a settlement file's stored bytes, exactly as generated."""
    with opened() as container, container.uow(write=False) as uow:
        view, data = settlements.read_settlement(
            uow, None, settlement_id, data_dir=container.settings.data_dir
        )
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = output or Path(view.file_name)
    target.write_bytes(data)
    out.print(f"Wrote {escape(str(target))} ({len(data)} bytes, sha256 {view.sha256}).")


def _time(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a time (HH:MM)", field="time") from None


@settlement_app.command("config")
@handles_errors
def settlement_config(
    agreement: Annotated[int, typer.Argument(help="The channel agreement's id.")],
    layout: Annotated[
        str | None,
        typer.Option(help="bancoestado-rendicion, asobancaria-2001, csv, xlsx or a layout file."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--time", help="Local time the daily job writes it (HH:MM).")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Whether the daily job runs.")
    ] = None,
    control_record: Annotated[
        bool | None,
        typer.Option("--control-record/--no-control-record", help="The optional control record."),
    ] = None,
) -> None:
    """Show an agreement's settlement settings, or change them."""
    changes = settlements.SettlementSettings(
        layout=layout,
        local_time=None if at is None else _time(at),
        enabled=enabled,
        control_record=control_record,
    )
    with opened() as container:
        if changes == settlements.SettlementSettings():
            with container.uow(write=False) as uow:
                config = settlements.get_settlement_config(uow, agreement, actor=cli_actor())
        else:
            config = settlements.configure_settlement(
                container.uow(),
                agreement,
                changes,
                actor=cli_actor(),
                clock=container.clock,
                allow_files=True,
            )
    out.print(f"agreement:       {config.agreement_id}")
    out.print(f"layout:          {escape(config.layout)}")
    out.print(f"time:            {config.local_time:%H:%M}")
    out.print(f"daily job:       {'enabled' if config.enabled else 'disabled'}")
    out.print(f"control record:  {'yes' if config.control_record else 'no'}")
