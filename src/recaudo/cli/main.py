"""The `recaudo` command: migrations, companies, API keys, debt files, the demo and the server.

Every command reads the database from `RECAUDO_DATABASE_URL` (SQLite file `var/recaudo.db`
by default), calls one use case from `recaudo.services` and prints what happened. Expected
errors (`recaudo.domain.errors`) print as one red line on stderr and exit with 2 for bad
input and 1 for everything else; nothing here prints a traceback for them.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

import recaudo
from recaudo import bootstrap
from recaudo.adapters.db import migrate
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.config import Settings
from recaudo.domain import ids
from recaudo.domain.debts import DebtStatus
from recaudo.domain.errors import RecaudoError, ValidationFailed
from recaudo.formats.tabular import TableFormat, write_table
from recaudo.logging import configure_logging, mask_text
from recaudo.services import agreements, exceptions, incidents, queries
from recaudo.services import calendar as calendar_service
from recaudo.services import demo as demo_service
from recaudo.services import webhooks as webhook_service
from recaudo.services.companies import (
    NewCompany,
    company_by_slug,
    create_company,
    issue_api_key,
    revoke_api_key,
)
from recaudo.services.context import Actor, Role
from recaudo.services.imports import ImportMode, ImportReport, import_debts, write_rejected_rows
from recaudo.services.views import CompanyView
from recaudo.services.webhooks import DeliveryStatus

if TYPE_CHECKING:
    from fastapi import FastAPI

P = ParamSpec("P")
R = TypeVar("R")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="recaudo",
    help="Recaudo, the open-source collections hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema: upgrade, current revision, downgrade.")
company_app = typer.Typer(help="Companies (tenants).")
apikey_app = typer.Typer(help="API keys, each bound to one company and one role.")
import_app = typer.Typer(help="Load files into Recaudo.")
export_app = typer.Typer(help="Export data as CSV or Excel.")
webhooks_app = typer.Typer(help="Signed payment webhooks: endpoints, deliveries, sending.")
holidays_app = typer.Typer(help="A company's holidays (national ones plus its own).")
agreement_app = typer.Typer(help="Bank channel agreements (convenios), each with its secret.")
exceptions_app = typer.Typer(help="Payment exceptions: collected money that did not match.")
for _sub, _name in (
    (db_app, "db"),
    (company_app, "company"),
    (apikey_app, "apikey"),
    (import_app, "import"),
    (export_app, "export"),
    (webhooks_app, "webhooks"),
    (holidays_app, "holidays"),
    (agreement_app, "agreement"),
    (exceptions_app, "exceptions"),
):
    _sub.info.no_args_is_help = True
    app.add_typer(_sub, name=_name)

# `recaudo export debts` writes the columns the debts import reads back (it ignores the
# last three): the id column is named as each country calls it, and where a country has
# several id types that the number alone does not tell apart, the type goes with it.
ID_HEADER = {"CL": "rut", "CO": "identificacion", "ES": "nif"}
EXPORT_HEADERS = (
    "nombre",
    "id_deuda",
    "vencimiento",
    "monto",
    "concepto",
    "emision",
    "estado",
    "pagado",
    "saldo",
)
MAX_ISSUES_SHOWN = 20


# --- plumbing --------------------------------------------------------------------------


def fail(message: str, code: int = 1) -> NoReturn:
    """One red line on stderr, then exit with `code`."""
    err.print(f"[bold red]Error:[/] {escape(message)}")
    raise typer.Exit(code)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected errors into a one-line message and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValidationFailed as exc:
            fail(exc.message, 2)
        except RecaudoError as exc:
            fail(exc.message, 1)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"RECAUDO_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                for e in exc.errors()
            )
            fail(f"invalid configuration: {problems}", 2)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            fail(f"database error: {mask_text(detail)}", 1)
        except BrokenPipeError:
            # The reader stopped early (`recaudo export debts ... | head`): no message.
            # stdout goes to /dev/null so that Python's own flush at exit stays quiet.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except OSError as exc:
            fail(mask_text(str(exc)), 1)

    return wrapper


def print_table(table: Table) -> None:
    # Piped into a file or another program, a table keeps whole lines instead of wrapping
    # at 80 columns.
    console = out if out.is_terminal else Console(highlight=False, width=240)
    console.print(table)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def cli_actor() -> Actor:
    """Whoever runs the command: an unbound administrator, audited as `cli:<os user>`."""
    return Actor(f"cli:{os_user()}", Role.ADMIN)


def shown_url(url: str) -> str:
    return mask_text(url)


@contextmanager
def opened(*, require_schema: bool = True) -> Iterator[Container]:
    """A container on the configured database; checks the schema is migrated first."""
    container = bootstrap.build(Settings())
    try:
        if require_schema:
            current, head = migrate.current_revision(container.engine), migrate.head_revision()
            if current != head:
                state = "empty" if current is None else f"at revision {current}, not {head}"
                fail(
                    f"the database {shown_url(container.settings.database_url)} is {state}: "
                    "run `recaudo db upgrade` first"
                )
        yield container
    finally:
        container.engine.dispose()


def company_of(container: Container, slug: str) -> CompanyView:
    with container.uow(write=False) as uow:
        return queries.company_view(company_by_slug(uow, slug))


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"recaudo {recaudo.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the services' log lines (INFO).")
    ] = False,
) -> None:
    """Recaudo: load what customers owe, let every channel collect it, reconcile every peso.

    The database comes from RECAUDO_DATABASE_URL (default: SQLite file var/recaudo.db).
    """
    setup_logging("INFO" if verbose else None)


def setup_logging(level: str | None) -> None:
    """Masked logging on stderr at `level`, else RECAUDO_LOG_LEVEL if set, else WARNING.

    The commands print what happened themselves; the services' INFO lines would repeat it,
    so they show only when asked for (the server logs at RECAUDO_LOG_LEVEL, INFO by default).
    """
    if level is None:
        level = os.environ.get("RECAUDO_LOG_LEVEL", "WARNING")
    try:
        configure_logging(level)
    except ValueError:
        configure_logging("INFO")
        err.print(f"[yellow]Warning:[/] unknown log level {escape(level)!r}, using INFO")
    if logging.getLogger().level > logging.DEBUG:
        # Alembic announces its dialect on every schema check; the commands say what matters.
        logging.getLogger("alembic").setLevel(logging.WARNING)


# --- db ----------------------------------------------------------------------------------


@db_app.command("upgrade")
@handles_errors
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the schema (to the latest revision by default)."""
    with opened(require_schema=False) as container:
        before = migrate.current_revision(container.engine)
        migrate.upgrade(container.engine, revision)
        after = migrate.current_revision(container.engine)
        where = shown_url(container.settings.database_url)
        if before == after:
            out.print(f"Database {where} is already at revision {after}.")
        else:
            out.print(f"Database {where} upgraded from {before or 'empty'} to {after}.")


@db_app.command("current")
@handles_errors
def db_current() -> None:
    """Show the database's schema revision and the latest one this version knows."""
    with opened(require_schema=False) as container:
        current, head = migrate.current_revision(container.engine), migrate.head_revision()
        out.print(f"database: {shown_url(container.settings.database_url)}")
        out.print(f"current:  {current or '(empty)'}")
        out.print(f"head:     {head}")
        if current != head:
            out.print("The schema is behind: run `recaudo db upgrade`.")


@db_app.command("downgrade")
@handles_errors
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision (`base` drops everything).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate the schema back to REVISION. Data in dropped tables is lost."""
    with opened(require_schema=False) as container:
        where = shown_url(container.settings.database_url)
        if not yes and not typer.confirm(f"Downgrade {where} to {revision}?", err=True):
            fail("downgrade cancelled")
        migrate.downgrade(container.engine, revision)
        now = migrate.current_revision(container.engine)
        out.print(f"Database {where} downgraded to {now or 'empty'}.")


# --- companies and keys ----------------------------------------------------------------


@company_app.command("create")
@handles_errors
def company_create(
    slug: Annotated[str, typer.Option(help="Short name used in URLs and commands.")],
    name: Annotated[str, typer.Option(help="Legal name.")],
    country: Annotated[str, typer.Option(help="CL, CO or ES.")],
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code (default: the country's).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA time zone (default: the country's).")
    ] = None,
    tax_id: Annotated[str | None, typer.Option(help="The company's own tax id.")] = None,
) -> None:
    """Create a company."""
    with opened() as container:
        company = create_company(
            container.uow(),
            NewCompany(slug, name, country, tax_id, currency, timezone),
            actor=cli_actor(),
            clock=container.clock,
        )
        out.print(
            f"Created company {company.slug} (id {company.id}): {company.legal_name}, "
            f"{company.country}, {company.currency}, {company.timezone}."
        )


@company_app.command("list")
@handles_errors
def company_list() -> None:
    """List every company."""
    with opened() as container, container.uow(write=False) as uow:
        companies = queries.list_companies(uow, None)
    if not companies:
        out.print("No companies yet: `recaudo company create` or `recaudo demo`.")
        return
    table = Table("id", "slug", "legal name", "country", "currency", "time zone", "created")
    for c in companies:
        table.add_row(
            str(c.id),
            c.slug,
            c.legal_name,
            c.country,
            c.currency,
            c.timezone,
            c.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
    print_table(table)


@apikey_app.command("create")
@handles_errors
def apikey_create(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    role: Annotated[Role, typer.Option(help="What the key may do.", case_sensitive=False)],
    label: Annotated[str | None, typer.Option(help="A note to tell keys apart.")] = None,
) -> None:
    """Issue an API key. Prints only the key on stdout; it is shown once and stored hashed."""
    with opened() as container:
        issued = issue_api_key(
            container.uow(), company, role, actor=cli_actor(), clock=container.clock, label=label
        )
    typer.echo(issued.secret)
    err.print(f"API key {issued.key_id} ({role.value}) for {escape(company)}: store it now.")


@apikey_app.command("revoke")
@handles_errors
def apikey_revoke(key_id: Annotated[int, typer.Argument(help="The key's id.")]) -> None:
    """Revoke an API key; requests that use it fail from now on."""
    with opened() as container:
        revoke_api_key(container.uow(), key_id, actor=cli_actor(), clock=container.clock)
    out.print(f"API key {key_id} revoked.")


# --- import ------------------------------------------------------------------------------


def print_report(report: ImportReport) -> None:
    if report.status == "duplicate":
        out.print(
            f"{escape(report.file_name)} was already imported as import "
            f"#{report.duplicate_of}: nothing changed."
        )
        return
    out.print(
        f"Import #{report.import_id} of {escape(report.file_name)} ({report.mode}): {report.status}"
    )
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("rows", report.rows_total),
        ("added", report.added),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("cancelled", report.cancelled),
        ("conflicts", report.conflicts),
        ("rejected", report.rejected),
        ("customers added", report.customers_added),
    ):
        table.add_row(label, str(value))
    print_table(table)
    if report.issues:
        issues = Table(
            "kind", "row", "column", "debt", "reason", title="Issues", title_justify="left"
        )
        for issue in report.issues[:MAX_ISSUES_SHOWN]:
            issues.add_row(
                issue.kind,
                str(issue.row_number),
                escape(issue.column or ""),
                escape(issue.debt_external_id or ""),
                escape(issue.reason),
            )
        print_table(issues)
        hidden = len(report.issues) - MAX_ISSUES_SHOWN
        if hidden > 0:
            out.print(f"… and {hidden} more (GET /api/v1/imports/{report.import_id}).")


def report_json(report: ImportReport) -> dict[str, object]:
    data = dataclasses.asdict(report)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return data


@import_app.command("debts")
@handles_errors
def import_debts_command(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or XLSX debts file.", exists=True, dir_okay=False, readable=True),
    ],
    company: Annotated[str, typer.Option(help="The company's slug.")],
    mode: Annotated[
        ImportMode,
        typer.Option(
            help="upsert adds and updates; replace also cancels open debts missing from the file.",
            case_sensitive=False,
        ),
    ] = ImportMode.UPSERT,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Import the valid rows and set the invalid ones aside."
        ),
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where to write the rejected rows (default: FILE.rejected.csv)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
) -> None:
    """Import a debts file in upsert or replace mode, all or nothing (unless --skip-invalid)."""
    with opened() as container:
        company_id = company_of(container, company).id
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        task = progress.add_task(f"Importing {file.name}", total=file.stat().st_size)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        with progress:
            report = import_debts(
                container.uow(),
                company_id,
                file,
                mode=mode,
                actor=cli_actor(),
                clock=container.clock,
                file_name=file.name,
                skip_invalid=skip_invalid,
                progress=advance,
            )
        if as_json:
            typer.echo(json.dumps(report_json(report), ensure_ascii=False, indent=2))
        else:
            print_report(report)
        if report.import_id is not None and report.rejected and (skip_invalid or rejects):
            target = rejects or file.with_name(f"{file.name}.rejected.csv")
            with target.open("wb") as fh:
                write_rejected_rows(container.uow(write=False), company_id, report.import_id, fh)
            err.print(f"Rejected rows written to {target}.")
    if report.status == "rejected":
        fail(
            f"the file was rejected and nothing was imported ({report.rejected} invalid rows); "
            "fix it, or use --skip-invalid to import the valid rows"
        )


# --- export ------------------------------------------------------------------------------


def export_headers(country: str) -> tuple[str, ...]:
    typed = len(ids.COUNTRY_ID_TYPES[country]) > 1 and country != "ES"  # NIF tells NIE/CIF
    return (ID_HEADER[country], *(("tipo_documento",) if typed else ()), *EXPORT_HEADERS)


Cell = str | date | Decimal | None


def debt_rows(
    uow: UnitOfWork, company: CompanyView, status: DebtStatus | None
) -> Iterator[list[Cell]]:
    """One row per debt, streamed; amounts and dates stay typed so XLSX gets numbers."""
    typed = "tipo_documento" in export_headers(company.country)
    for debt, customer in queries.iter_debts(uow, company.id, status=status):
        kind = ids.IdType(customer.id_type)
        row: list[Cell] = [ids.format_national_id(kind, customer.national_id)]
        if typed:
            row.append(kind.value)
        row += [
            customer.name,
            debt.debt_id,
            debt.due_date,
            debt.amount,
            debt.concept or "",
            debt.issue_date,
            debt.status,
            debt.paid,
            debt.open_amount,
        ]
        yield row


@export_app.command("debts")
@handles_errors
def export_debts(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    status: Annotated[
        DebtStatus | None, typer.Option(help="Only debts in this state.", case_sensitive=False)
    ] = None,
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="File format.", case_sensitive=False)
    ] = TableFormat.CSV,
    output: Annotated[
        Path | None, typer.Option(help="File to write (default: CSV to stdout).")
    ] = None,
) -> None:
    """Export a company's debts in the columns the debts import reads back."""
    if fmt is TableFormat.XLSX and output is None:
        fail("an XLSX export needs --output FILE", 2)
    with opened() as container:
        target = company_of(container, company)
        headers = export_headers(target.country)
        count = 0

        def counted(rows: Iterator[list[Cell]]) -> Iterator[list[Cell]]:
            nonlocal count
            for row in rows:
                count += 1
                yield row

        with container.uow(write=False) as uow:
            rows = counted(debt_rows(uow, target, status))
            if output is None:
                write_table(headers, rows, "csv", sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                # Written beside the target and renamed: a failed export leaves no half file.
                partial = output.with_name(f".{output.name}.partial")
                try:
                    with partial.open("wb") as fh:
                        write_table(headers, rows, fmt, fh)
                    partial.replace(output)
                finally:
                    partial.unlink(missing_ok=True)
    err.print(f"Exported {count} debts" + (f" to {output}." if output else "."))


# --- demo and server ---------------------------------------------------------------------


@app.command()
@handles_errors
def demo(
    customers: Annotated[
        int | None,
        typer.Option(min=1, max=100_000, help="How many demo customers (default 1000)."),
    ] = None,
) -> None:
    """Create or refresh the demo company with customers, debts and payments; issue a key."""
    with opened() as container:
        settings = container.settings
        count = customers or settings.demo_customers
        with err.status(f"Loading the demo company ({count} customers)…"):
            result = demo_service.load_demo(
                container.uow(), customers=count, actor=cli_actor(), clock=container.clock
            )
    verb = "Created" if result.created else "Refreshed"
    out.print(
        f"{verb} demo company '{result.company_slug}' (id {result.company_id}): "
        f"{result.customers} customers, {result.debts} debts, {result.payments} payments."
    )
    if result.import_status == "duplicate":
        out.print(f"Debts file: unchanged since import #{result.duplicate_of}, nothing to load.")
    else:
        out.print(
            f"Debts file: import #{result.import_id}, {result.import_status} "
            f"({result.added} added, {result.updated} updated, {result.unchanged} unchanged"
            + (f", {result.conflicts} paid debts left as they are" if result.conflicts else "")
            + ")."
        )
    out.print(f"API docs:  http://{settings.host}:{settings.port}/api/docs")
    out.print(f"API key:   {result.api_key}   (admin, demo company; shown once)")
    out.print(f"Back office: http://{settings.host}:{settings.port}/ingresar")
    out.print(
        f"Sign in:   {result.admin_email} / {result.admin_password}   "
        "(provisional password, shown once; change it at the first sign-in)"
    )


@app.command()
@handles_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each with its own connection pool).")
    ] = 1,
) -> None:
    """Run the admin API (uvicorn)."""
    import uvicorn

    from recaudo.api.app import create_app

    with opened() as container:
        settings = container.settings
        host = host or settings.host
        port = port or settings.port
        setup_logging(settings.log_level)
        err.print(f"Recaudo API on http://{host}:{port}/api/docs (Ctrl+C stops it)")
        if workers == 1:
            app = create_app(container)
            freeze_heap()
            with running_jobs(container):
                uvicorn.run(
                    app,
                    host=host,
                    port=port,
                    log_config=None,
                    log_level=settings.log_level.lower(),
                    access_log=False,  # the app writes its own (api/access_log.py)
                    server_header=False,
                )
            return
    # Several workers: uvicorn starts each process on `worker_app`, which builds that
    # process's own container (engine and connection pool). Jobs run once, here.
    with opened() as jobs_container, running_jobs(jobs_container):
        uvicorn.run(
            "recaudo.cli.main:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            log_level=settings.log_level.lower(),
            access_log=False,
            server_header=False,
        )


@contextmanager
def running_jobs(container: Container) -> Iterator[None]:
    """The in-process job runner (webhook deliveries) while the server runs."""
    from recaudo.jobs import Runner

    if not container.settings.jobs_enabled:
        yield
        return
    runner = Runner(container)
    runner.start()
    try:
        yield
    finally:
        runner.stop()


def worker_app() -> FastAPI:
    """The app of one `recaudo serve --workers N` process."""
    from recaudo.api.app import create_app

    settings = Settings()
    setup_logging(settings.log_level)
    app = create_app(bootstrap.build(settings))
    freeze_heap()
    return app


def freeze_heap() -> None:
    """Move everything built at start-up out of the garbage collector's sight.

    The app, its routes, models and the SQLAlchemy metadata are hundreds of thousands
    of objects that live as long as the process; without this every full collection
    walks them all, a pause of several milliseconds in the middle of some request
    (the bank channel's p99 target is 30 ms). `gc.freeze` is the standard library's
    tool for exactly this: long-lived servers after start-up.
    """
    gc.collect()
    gc.freeze()


# --- webhooks ----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@webhooks_app.command("create")
@handles_errors
def webhooks_create(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    url: Annotated[str, typer.Option(help="http(s) URL that receives the signed events.")],
) -> None:
    """Register a webhook endpoint. Prints only the signing secret on stdout, shown once."""
    with opened() as container:
        company_id = company_of(container, company).id
        created = webhook_service.create_endpoint(
            container.uow(),
            company_id,
            url,
            actor=cli_actor(),
            clock=container.clock,
            allow_private=container.settings.webhook_allow_private_targets,
        )
    typer.echo(created.secret)
    err.print(
        f"Webhook endpoint {created.endpoint.id} for {escape(company)}: "
        "store the signing secret now, it is not shown again."
    )


@webhooks_app.command("list")
@handles_errors
def webhooks_list(
    company: Annotated[str | None, typer.Option(help="Only this company's endpoints.")] = None,
) -> None:
    """List webhook endpoints (never their secrets)."""
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        with container.uow(write=False) as uow:
            endpoints = webhook_service.list_endpoints(uow, company_id)
            slugs = {c.id: c.slug for c in queries.list_companies(uow, None)}
    if not endpoints:
        out.print("No webhook endpoints: `recaudo webhooks create`.")
        return
    table = Table("id", "company", "url", "enabled", "created")
    for e in endpoints:
        table.add_row(
            str(e.id),
            slugs.get(e.company_id, str(e.company_id)),
            e.url,
            "yes" if e.enabled else "no",
            _when(e.created_at),
        )
    print_table(table)


@webhooks_app.command("deliveries")
@handles_errors
def webhooks_deliveries(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only in this state.", case_sensitive=False)
    ] = None,
    event_type: Annotated[str | None, typer.Option(help="e.g. payment.applied.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Newest N.")] = 50,
) -> None:
    """List a company's webhook deliveries, newest first."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            page = webhook_service.list_deliveries(
                uow,
                company_id,
                status=status,
                event_type=event_type,
                paging=queries.Paging(page_size=limit),
            )
    if not page.items:
        out.print("No webhook deliveries.")
        return
    table = Table("id", "event", "type", "endpoint", "status", "attempts", "last", "next attempt")
    for d in page.items:
        last = str(d.last_status_code) if d.last_status_code is not None else d.last_error or ""
        table.add_row(
            str(d.id),
            str(d.event_id),
            d.event_type,
            str(d.endpoint_id),
            d.status.value,
            str(d.attempts),
            last,
            _when(d.next_attempt_at),
        )
    print_table(table)
    if page.total > len(page.items):
        err.print(f"{len(page.items)} of {page.total} shown (--limit).")


@webhooks_app.command("replay")
@handles_errors
def webhooks_replay(
    delivery_id: Annotated[int, typer.Argument(help="The delivery's id.")],
) -> None:
    """Send a delivery again (even a delivered one) at the next pass of the runner."""
    with opened() as container:
        view = webhook_service.replay_delivery(
            container.uow(), None, delivery_id, actor=cli_actor(), clock=container.clock
        )
    out.print(f"Delivery {view.id} ({view.event_type}) is pending again.")


@webhooks_app.command("deliver")
@handles_errors
def webhooks_deliver(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
) -> None:
    """Send due webhook deliveries: once, or every second until Ctrl+C."""
    import time

    from recaudo.jobs import Runner

    with opened() as container:
        runner = Runner(container)
        try:
            if once:
                total = 0
                while (tried := runner.run_once()) > 0:
                    total += tried
                out.print(f"{total} deliveries tried.")
                return
            err.print("Sending webhook deliveries every second (Ctrl+C stops).")
            try:
                while True:
                    if runner.run_once() < runner.batch:
                        time.sleep(runner.interval_s)
            except KeyboardInterrupt:
                err.print("Stopped.")
        finally:
            runner.stop()


# --- holidays ----------------------------------------------------------------------------


@holidays_app.command("list")
@handles_errors
def holidays_list(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    year: Annotated[
        int | None, typer.Option(min=1970, max=2100, help="Default: the current year.")
    ] = None,
) -> None:
    """List a year's holidays: the country's and the company's own."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            rows = calendar_service.list_holidays(
                uow, queries.get_company(uow, company_id), year or container.clock().year
            )
    table = Table("day", "name", "source")
    for day, name, own in rows:
        table.add_row(day.isoformat(), name, "company" if own else "national")
    print_table(table)


@holidays_app.command("add")
@handles_errors
def holidays_add(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    day: Annotated[datetime, typer.Argument(formats=["%Y-%m-%d"], help="YYYY-MM-DD.")],
    name: Annotated[str, typer.Argument(help="What the day is.")],
) -> None:
    """Add a company holiday: accounting days skip it."""
    with opened() as container:
        company_id = company_of(container, company).id
        holiday = calendar_service.add_holiday(
            container.uow(),
            company_id,
            day.date(),
            name,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"{holiday.day.isoformat()} ({holiday.name}) is now a holiday of {escape(company)}.")


@holidays_app.command("remove")
@handles_errors
def holidays_remove(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    day: Annotated[datetime, typer.Argument(formats=["%Y-%m-%d"], help="YYYY-MM-DD.")],
) -> None:
    """Remove a company holiday (national holidays cannot be removed)."""
    with opened() as container:
        company_id = company_of(container, company).id
        calendar_service.remove_holiday(
            container.uow(), company_id, day.date(), actor=cli_actor(), clock=container.clock
        )
    out.print(f"{day.date().isoformat()} is no longer a holiday of {escape(company)}.")


# --- bank channels -------------------------------------------------------------------------


def _cutoff(text: str | None) -> time | None:
    if text is None:
        return None
    value = text.strip()
    try:
        if len(value) == 5 and value[2] == ":":
            return time.fromisoformat(value)
    except ValueError:
        pass
    raise ValidationFailed(f"cut-off {text!r} is not HH:MM", field="cutoff")


@agreement_app.command("create")
@handles_errors
def agreement_create(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    channel: Annotated[str, typer.Option(help="caja-vecina or internet.")],
    convenio: Annotated[str, typer.Option(help="The bank's agreement number.")],
    voucher_name: Annotated[
        str | None, typer.Option(help="The name the bank prints on the voucher.")
    ] = None,
    cutoff: Annotated[
        str | None, typer.Option(help="Accounting cut-off, HH:MM local (default 14:00).")
    ] = None,
) -> None:
    """Enable a BancoEstado channel. Prints only the secret on stdout; it is shown once."""
    settings = agreements.AgreementSettings(voucher_name=voucher_name, cutoff=_cutoff(cutoff))
    with opened() as container:
        issued = agreements.create_agreement(
            container.uow(),
            company,
            channel,
            convenio,
            settings,
            actor=cli_actor(),
            clock=container.clock,
        )
    typer.echo(issued.secret)
    a = issued.agreement
    err.print(
        f"Agreement {a.id}: {escape(company)} {a.bank} {a.channel}, convenio {a.convenio}, "
        f"cut-off {a.cutoff.strftime('%H:%M')}. Store the secret now."
    )


@agreement_app.command("list")
@handles_errors
def agreement_list(company: Annotated[str, typer.Option(help="The company's slug.")]) -> None:
    """List a company's channel agreements."""
    with opened() as container:
        view = company_of(container, company)
        table = Table(
            "id", "bank", "channel", "convenio", "voucher", "cut-off", "enabled", "prefix"
        )
        with container.uow(write=False) as uow:
            for a in agreements.list_agreements(uow, view.id):
                table.add_row(
                    str(a.id),
                    a.bank,
                    a.channel,
                    a.convenio,
                    a.voucher_name or "",
                    a.cutoff.strftime("%H:%M"),
                    "yes" if a.enabled else "no",
                    a.secret_prefix,
                )
    print_table(table)


@exceptions_app.command("list")
@handles_errors
def exceptions_list(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    status: Annotated[str | None, typer.Option(help="open or resolved.")] = None,
) -> None:
    """List payment exceptions, newest first."""
    with opened() as container:
        view = company_of(container, company)
        with container.uow(write=False) as uow:
            page = exceptions.list_exceptions(
                uow, view.id, status=status, paging=queries.Paging(1, queries.MAX_PAGE_SIZE)
            )
    table = Table("id", "payment", "transaccion", "amount", "credit", "reason", "status", "detail")
    for e in page.items:
        table.add_row(
            str(e.id),
            str(e.payment_id),
            e.transaccion,
            format(e.amount, "f"),
            format(e.credit, "f"),
            e.reason,
            e.status if e.resolution is None else f"{e.status} ({e.resolution})",
            escape(e.detail),
        )
    print_table(table)


@exceptions_app.command("resolve")
@handles_errors
def exceptions_resolve(
    exception_id: Annotated[int, typer.Argument(help="The exception's id.")],
    company: Annotated[str, typer.Option(help="The company's slug.")],
    resolution: Annotated[exceptions.Resolution, typer.Option(help="applied, credit or refunded.")],
    comment: Annotated[str, typer.Option(help="Why; kept in the audit trail.")],
    debt: Annotated[
        list[str] | None, typer.Option(help="With applied: a debt to pay, in order (repeat).")
    ] = None,
) -> None:
    """Resolve an exception: apply its credit to debts, keep it as credit, or refunded."""
    with opened() as container:
        view = company_of(container, company)
        resolved = exceptions.resolve_exception(
            container.uow(),
            view.id,
            exception_id,
            resolution,
            comment,
            debts=tuple(debt or ()),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(
        f"Exception {resolved.id} resolved ({resolved.resolution}); "
        f"credit left {format(resolved.credit, 'f')} {resolved.currency}."
    )


@app.command("incidents")
@handles_errors
def incidents_list(company: Annotated[str, typer.Option(help="The company's slug.")]) -> None:
    """List incidents (channel told "not available", internal failures), newest first."""
    with opened() as container:
        view = company_of(container, company)
        with container.uow(write=False) as uow:
            page = incidents.list_incidents(
                uow, view.id, paging=queries.Paging(1, queries.MAX_PAGE_SIZE)
            )
    table = Table("id", "when", "agreement", "kind", "cause")
    for i in page.items:
        table.add_row(
            str(i.id),
            i.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "" if i.agreement_id is None else str(i.agreement_id),
            i.kind,
            escape(i.cause),
        )
    print_table(table)


@company_app.command("availability")
@handles_errors
def company_availability(
    slug: Annotated[str, typer.Argument(help="The company's slug.")],
    available: Annotated[
        bool,
        typer.Option("--available/--unavailable", help="Open or close the bank channels."),
    ],
    reason: Annotated[str | None, typer.Option(help="Why (required to close).")] = None,
) -> None:
    """Mark a company available or unavailable (maintenance) for channel debt queries."""
    with opened() as container:
        view = company_of(container, slug)
        state = incidents.set_availability(
            container.uow(), view.id, available, reason, actor=cli_actor(), clock=container.clock
        )
    shown = "available" if state.available else f"unavailable ({escape(state.reason or '')})"
    out.print(f"Company {escape(view.slug)} is {shown}.")
