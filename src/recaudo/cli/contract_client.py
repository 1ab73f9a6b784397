"""`recaudo contract-client create|list|revoke`: OAuth2 clients of the collections-management
contract (`/collections-management/...`), each bound to one company."""

from __future__ import annotations

from datetime import datetime
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
from recaudo.services import contract_clients

contract_client_app = typer.Typer(
    help="OAuth2 clients of the collections-management contract (client id + secret)."
)
contract_client_app.info.no_args_is_help = True
app.add_typer(contract_client_app, name="contract-client")


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


@contract_client_app.command("create")
@handles_errors
def contract_client_create(
    company: Annotated[str, typer.Option(help="The company's slug.")],
    label: Annotated[str | None, typer.Option(help="A note to tell clients apart.")] = None,
    token_ttl: Annotated[
        int, typer.Option(help="Lifetime of the tokens the client obtains, in seconds.")
    ] = contract_clients.DEFAULT_TOKEN_TTL_SECONDS,
) -> None:
    """Create a client. Prints `client_id` and `client_secret` on stdout, one per line;
    the secret is shown once and stored hashed."""
    with opened() as container:
        issued = contract_clients.create_client(
            container.uow(),
            company,
            actor=cli_actor(),
            clock=container.clock,
            label=label,
            token_ttl_seconds=token_ttl,
        )
    typer.echo(issued.client_id)
    typer.echo(issued.client_secret)
    err.print(
        f"Contract client {issued.client_id} for {escape(company)} (tokens last "
        f"{issued.token_ttl_seconds} s): store the secret now."
    )


@contract_client_app.command("list")
@handles_errors
def contract_client_list(
    company: Annotated[str, typer.Option(help="The company's slug.")],
) -> None:
    """List a company's contract clients (secrets are never shown again)."""
    with opened() as container:
        view = company_of(container, company)
        clients = contract_clients.list_clients(container.uow(write=False), view.id)
    table = Table("client_id", "label", "token ttl (s)", "created", "by", "revoked")
    for c in clients:
        table.add_row(
            c.client_id,
            escape(c.label or ""),
            str(c.token_ttl_seconds),
            _when(c.created_at),
            escape(c.created_by),
            _when(c.revoked_at),
        )
    print_table(table)


@contract_client_app.command("revoke")
@handles_errors
def contract_client_revoke(
    client_id: Annotated[str, typer.Argument(help="The client's client_id.")],
) -> None:
    """Revoke a client: its secret and its tokens stop working at once."""
    with opened() as container:
        contract_clients.revoke_client(
            container.uow(), client_id, actor=cli_actor(), clock=container.clock
        )
    out.print(f"Contract client {escape(client_id)} revoked.")
