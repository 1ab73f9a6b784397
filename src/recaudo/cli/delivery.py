"""`recaudo delivery ...`: delivery targets (SFTP, e-mail, local directory), the deliveries
of files to them, re-delivery, a foreground sending pass and retention.

Secrets (an SFTP or SMTP password, an SFTP private key) never go on the command line,
where `ps` and the shell's history would keep them: they are read from stdin
(`--password-stdin`), from a key file (`--key-file`) or asked for without echo.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from recaudo.adapters.transfer import TransferError, host_key_fingerprint
from recaudo.cli.main import (
    app,
    cli_actor,
    company_of,
    err,
    fail,
    handles_errors,
    opened,
    out,
    print_table,
)
from recaudo.domain.errors import ValidationFailed
from recaudo.services import deliveries, queries
from recaudo.services.deliveries import DeliveryStatus, TargetChanges, TargetSpec

delivery_app = typer.Typer(
    help="File deliveries (SFTP, e-mail, local directory): targets, deliveries, retention."
)
target_app = typer.Typer(help="Where files are delivered: SFTP servers, mailboxes, directories.")
delivery_app.info.no_args_is_help = True
target_app.info.no_args_is_help = True
delivery_app.add_typer(target_app, name="target")
app.add_typer(delivery_app, name="delivery")


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _read_secret(password_stdin: bool, key_file: Path | None, *, prompt: str | None) -> str | None:
    if password_stdin and key_file is not None:
        raise ValidationFailed("give --password-stdin or --key-file, not both")
    if key_file is not None:
        try:
            return key_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationFailed(
                f"cannot read the key file {key_file}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValidationFailed("--password-stdin: nothing on stdin")
        return line
    if prompt is not None and sys.stdin.isatty():
        value: str = typer.prompt(prompt, hide_input=True)
        return value
    return None


def _where(t: deliveries.TargetView) -> str:
    s = t.settings
    if t.kind == "sftp":
        return f"sftp://{s.get('username')}@{s.get('host')}:{s.get('port')} {s.get('directory')}"
    if t.kind == "email":
        return f"smtp://{s.get('host')}:{s.get('port')} → {', '.join(s.get('recipients', []))}"
    return str(s.get("directory", ""))


# --- targets -------------------------------------------------------------------------------


@target_app.command("add")
@handles_errors
def target_add(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    name: Annotated[str, typer.Option(help="A name for the target, unique in the company.")],
    kind: Annotated[str, typer.Option(help="sftp, email or local.")],
    agreement: Annotated[
        int | None,
        typer.Option(help="Deliver this agreement's settlement files here (omit: exchange use)."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="sftp/email: the server.")] = None,
    port: Annotated[int | None, typer.Option(help="sftp: 22; email: 587 (465 with ssl).")] = None,
    username: Annotated[str | None, typer.Option(help="sftp/email: the login.")] = None,
    host_key: Annotated[
        str | None,
        typer.Option(help="sftp: the server's public host key, 'ssh-ed25519 AAAA...'."),
    ] = None,
    host_key_file: Annotated[
        Path | None, typer.Option(help="sftp: a file holding the server's public host key.")
    ] = None,
    directory: Annotated[
        str | None, typer.Option(help="sftp: remote directory; local: absolute path.")
    ] = None,
    security: Annotated[
        str | None, typer.Option(help="email: starttls (default), ssl, or none (loopback only).")
    ] = None,
    sender: Annotated[str | None, typer.Option("--from", help="email: the sender address.")] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="email: a recipient (repeat for several).")
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="email: a CA bundle to trust (a private CA).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="sftp/email: seconds per network step (30).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    key_file: Annotated[
        Path | None, typer.Option(help="sftp: log in with this private key (OpenSSH or PEM).")
    ] = None,
    retention_days: Annotated[
        int, typer.Option(help="Delete delivered files from the target after this many days.")
    ] = deliveries.DEFAULT_RETENTION_DAYS,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
) -> None:
    """Add a delivery target. The password or key is stored encrypted and never shown."""
    host_key = _host_key(host_key, host_key_file)
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "username": username,
        "host_key": host_key,
        "directory": directory,
        "security": security,
        "from": sender,
        "recipients": to or None,
        "cafile": cafile,
        "timeout_s": timeout,
    }
    if kind == "sftp":
        values["auth"] = "key" if key_file is not None else "password"
    settings_in = {k: v for k, v in values.items() if v is not None}
    needs_secret = kind == "sftp" or (kind == "email" and username)
    secret = _read_secret(
        password_stdin, key_file, prompt=f"Password for {username}" if needs_secret else None
    )
    spec = TargetSpec(
        name=name,
        kind=kind,
        settings=settings_in,
        secret=secret,
        agreement_id=agreement,
        retention_days=retention_days,
        enabled=not disabled,
    )
    with opened() as container:
        company_id = company_of(container, company).id
        view = deliveries.create_target(
            container.uow(),
            company_id,
            spec,
            settings=container.settings,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(
        f"Delivery target {view.id} ({escape(view.name)}, {view.kind}): {escape(_where(view))}"
    )
    if view.kind == "sftp":
        out.print(f"Trusted host key: {host_key_fingerprint(view.settings['host_key'])}")


@target_app.command("update")
@handles_errors
def target_update(
    target_id: Annotated[int, typer.Argument(help="The target's id.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    agreement: Annotated[
        int | None, typer.Option(help="Deliver this agreement's files here (0: none).")
    ] = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    username: Annotated[str | None, typer.Option()] = None,
    host_key: Annotated[str | None, typer.Option(help="sftp: the new host key.")] = None,
    host_key_file: Annotated[Path | None, typer.Option()] = None,
    directory: Annotated[str | None, typer.Option()] = None,
    security: Annotated[str | None, typer.Option()] = None,
    sender: Annotated[str | None, typer.Option("--from")] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="email: replaces the recipients.")
    ] = None,
    cafile: Annotated[str | None, typer.Option()] = None,
    timeout: Annotated[float | None, typer.Option()] = None,
    retention_days: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Change a target's settings (the secret: `set-secret`; on/off: `enable`/`disable`)."""
    host_key = _host_key(host_key, host_key_file)
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "username": username,
        "host_key": host_key,
        "directory": directory,
        "security": security,
        "from": sender,
        "recipients": to or None,
        "cafile": cafile,
        "timeout_s": timeout,
    }
    changed = {k: v for k, v in values.items() if v is not None}
    changes = TargetChanges(
        name=name,
        settings=changed or None,
        agreement_id=agreement,
        retention_days=retention_days,
    )
    with opened() as container:
        view = deliveries.update_target(
            container.uow(),
            None,
            target_id,
            changes,
            settings=container.settings,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(
        f"Delivery target {view.id} ({escape(view.name)}, {view.kind}): {escape(_where(view))}"
    )


def _host_key(host_key: str | None, host_key_file: Path | None) -> str | None:
    if host_key_file is None:
        return host_key
    if host_key is not None:
        raise ValidationFailed("give --host-key or --host-key-file, not both")
    try:
        return host_key_file.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"cannot read {host_key_file}: {exc}") from None


@target_app.command("list")
@handles_errors
def target_list(
    company: Annotated[str | None, typer.Option(help="Only this company's targets.")] = None,
) -> None:
    """List delivery targets (never their secrets)."""
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        with container.uow(write=False) as uow:
            targets = deliveries.list_targets(uow, company_id)
            slugs = {c.id: c.slug for c in queries.list_companies(uow, None)}
    if not targets:
        out.print("No delivery targets: `recaudo delivery target add`.")
        return
    table = Table("id", "company", "name", "kind", "agreement", "where", "secret", "keep", "on")
    for t in targets:
        table.add_row(
            str(t.id),
            slugs.get(t.company_id, str(t.company_id)),
            t.name,
            t.kind,
            "" if t.agreement_id is None else str(t.agreement_id),
            _where(t),
            "set" if t.has_secret else "-",
            f"{t.retention_days} d",
            "yes" if t.enabled else "no",
        )
    print_table(table)


@target_app.command("remove")
@handles_errors
def target_remove(
    target_id: Annotated[int, typer.Argument(help="The target's id.")],
) -> None:
    """Delete a target that has never been used (one with deliveries: `disable` it)."""
    with opened() as container:
        deliveries.remove_target(
            container.uow(), None, target_id, actor=cli_actor(), clock=container.clock
        )
    out.print(f"Delivery target {target_id} removed.")


def _set_enabled(target_id: int, enabled: bool) -> None:
    with opened() as container:
        view = deliveries.update_target(
            container.uow(),
            None,
            target_id,
            TargetChanges(enabled=enabled),
            settings=container.settings,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(
        f"Delivery target {view.id} ({escape(view.name)}) {'enabled' if enabled else 'disabled'}."
    )


@target_app.command("disable")
@handles_errors
def target_disable(target_id: Annotated[int, typer.Argument(help="The target's id.")]) -> None:
    """Stop delivering to a target; its deliveries and history are kept."""
    _set_enabled(target_id, False)


@target_app.command("enable")
@handles_errors
def target_enable(target_id: Annotated[int, typer.Argument(help="The target's id.")]) -> None:
    """Deliver to a target again (pending deliveries go out at the next pass)."""
    _set_enabled(target_id, True)


@target_app.command("set-secret")
@handles_errors
def target_set_secret(
    target_id: Annotated[int, typer.Argument(help="The target's id.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    key_file: Annotated[
        Path | None, typer.Option(help="sftp: log in with this private key from now on.")
    ] = None,
) -> None:
    """Replace a target's password (or switch an SFTP target to a private key)."""
    secret = _read_secret(password_stdin, key_file, prompt="New password")
    if not secret:
        raise ValidationFailed("no secret given (--password-stdin or --key-file)")
    with opened() as container:
        with container.uow(write=False) as uow:
            current = deliveries.get_target(uow, None, target_id)
        changes = TargetChanges(secret=secret)
        if current.kind == "sftp":
            auth = "key" if key_file is not None else "password"
            changes = TargetChanges(secret=secret, settings={"auth": auth})
        view = deliveries.update_target(
            container.uow(),
            None,
            target_id,
            changes,
            settings=container.settings,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"Secret of delivery target {view.id} ({escape(view.name)}) replaced.")


@target_app.command("test")
@handles_errors
def target_test(target_id: Annotated[int, typer.Argument(help="The target's id.")]) -> None:
    """Connect to a target without delivering anything (e-mail: log in, send nothing)."""
    with opened() as container:
        try:
            result = deliveries.check_target(
                container.uow(), None, target_id, settings=container.settings, actor=cli_actor()
            )
        except TransferError as exc:
            fail(str(exc))
    out.print(f"OK {escape(result)}")


# --- deliveries ----------------------------------------------------------------------------


@delivery_app.command("list")
@handles_errors
def delivery_list(
    company: Annotated[str | None, typer.Option(help="Only this company's deliveries.")] = None,
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only in this state.", case_sensitive=False)
    ] = None,
    target: Annotated[int | None, typer.Option(help="Only to this target.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Newest N.")] = 50,
) -> None:
    """List deliveries, newest first."""
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        with container.uow(write=False) as uow:
            page = deliveries.list_deliveries(
                uow,
                company_id,
                status=status,
                target_id=target,
                paging=queries.Paging(page_size=limit),
            )
    if not page.items:
        out.print("No deliveries.")
        return
    table = Table("id", "file", "target", "status", "attempts", "last error", "next / delivered")
    for d in page.items:
        when = d.delivered_at if d.status == DeliveryStatus.DELIVERED else d.next_attempt_at
        table.add_row(
            str(d.id),
            d.file_name,
            f"{d.target_name} ({d.target_kind})",
            d.status.value + (" (removed)" if d.removed_at else ""),
            str(d.attempts),
            d.last_error or "",
            _when(when),
        )
    print_table(table)
    if page.total > len(page.items):
        err.print(f"{len(page.items)} of {page.total} shown (--limit).")


@delivery_app.command("show")
@handles_errors
def delivery_show(delivery_id: Annotated[int, typer.Argument(help="The delivery's id.")]) -> None:
    """One delivery and every attempt."""
    with opened() as container, container.uow(write=False) as uow:
        d = deliveries.get_delivery(uow, None, delivery_id)
    rows = [
        ("id", str(d.id)),
        ("file", d.file_name),
        ("settlement file", "" if d.settlement_file_id is None else str(d.settlement_file_id)),
        ("target", f"{d.target_name} ({d.target_kind}, id {d.target_id})"),
        ("status", d.status.value),
        ("attempts", str(d.attempts)),
        ("next attempt", _when(d.next_attempt_at)),
        ("delivered", _when(d.delivered_at)),
        ("remote path", d.remote_path or ""),
        ("removed (retention)", _when(d.removed_at)),
        ("requested by", d.requested_by),
        ("created", _when(d.created_at)),
    ]
    for label, value in rows:
        out.print(f"{label:>20}: {escape(value)}")
    if d.attempt_log:
        table = Table("attempt", "at", "ok", "ms", "error")
        for n, a in enumerate(d.attempt_log, start=1):
            table.add_row(
                str(n),
                _when(a.attempted_at),
                "yes" if a.ok else "no",
                str(a.duration_ms),
                a.error or "",
            )
        print_table(table)


@delivery_app.command("retry")
@handles_errors
def delivery_retry(
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery's id.")] = None,
    settlement_file: Annotated[
        int | None,
        typer.Option(help="Instead: every delivery of this settlement file (and new targets)."),
    ] = None,
) -> None:
    """Deliver again now, with a fresh attempt budget (even a delivered file)."""
    if (delivery_id is None) == (settlement_file is None):
        raise ValidationFailed("give a delivery id or --settlement-file, one of them")
    with opened() as container:
        views = deliveries.redeliver(
            container.uow(),
            None,
            delivery_id=delivery_id,
            settlement_file_id=settlement_file,
            actor=cli_actor(),
            clock=container.clock,
        )
    for v in views:
        out.print(
            f"Delivery {v.id} of {escape(v.file_name)} to {escape(v.target_name)} is pending."
        )
    err.print("They go out at the runner's next pass, or now with `recaudo delivery run`.")


@delivery_app.command("run")
@handles_errors
def delivery_run() -> None:
    """Send every delivery due now, in the foreground, showing each attempt; exits 1 when
    an attempt failed (it is retried later with backoff)."""
    results: Counter[str] = Counter()
    with opened() as container:
        with container.uow(write=False) as uow:
            due = deliveries.count_due(uow, container.clock)
        if due == 0:
            out.print("Nothing is due.")
            return
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Delivering", total=due)

            def shown(o: deliveries.AttemptOutcome) -> None:
                results["ok" if o.ok else "failed"] += 1
                if o.ok:
                    line = f"[green]delivered[/] {escape(o.file_name)} → {escape(o.target_name)}"
                else:
                    retry = (
                        f"next try {_when(o.next_attempt_at)}"
                        if o.status == DeliveryStatus.PENDING
                        else "gave up"
                    )
                    line = (
                        f"[red]failed[/] {escape(o.file_name)} → {escape(o.target_name)}: "
                        f"{escape(o.error or '')} ({retry})"
                    )
                progress.console.print(line)
                progress.advance(task)

            # One pass: a failed delivery is rescheduled into the future, so this ends.
            while deliveries.deliver_due(
                container.uow(), container.settings, container.clock, 50, on_attempt=shown
            ):
                pass
    out.print(f"{results['ok']} delivered, {results['failed']} failed.")
    if results["failed"]:
        raise typer.Exit(1)


@delivery_app.command("purge")
@handles_errors
def delivery_purge(
    company: Annotated[str | None, typer.Option(help="Only this company's files.")] = None,
) -> None:
    """Apply retention now: delete delivered files older than each target's retention
    from the target and, once every copy is gone, from local storage."""
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        result = deliveries.purge(
            container.uow(),
            container.settings,
            container.clock,
            actor=cli_actor(),
            company_id=company_id,
        )
    out.print(
        f"{result.remote_removed} delivered file(s) removed from their targets, "
        f"{result.local_removed} settlement file(s) removed from local storage."
    )
    for problem in result.errors:
        err.print(f"[red]not reached:[/] {escape(problem)}")
    if result.errors:
        raise typer.Exit(1)
