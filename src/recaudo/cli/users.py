"""`recaudo user create|list|deactivate|reset-password`: back-office users."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from recaudo.bootstrap import Container
from recaudo.cli.main import app, cli_actor, err, handles_errors, opened, out, print_table
from recaudo.services import users
from recaudo.services.companies import company_by_slug
from recaudo.services.context import Role

user_app = typer.Typer(help="Back-office users: accounts, roles per company, passwords.")
user_app.info.no_args_is_help = True
app.add_typer(user_app, name="user")

CompanyOpt = Annotated[str, typer.Option(help="The company's slug.")]
EmailOpt = Annotated[str, typer.Option(help="The user's e-mail (their sign-in name).")]


def _company_id(container: Container, slug: str) -> int:
    with container.uow(write=False) as uow:
        return company_by_slug(uow, slug).id


@user_app.command("create")
@handles_errors
def user_create(
    email: EmailOpt,
    name: Annotated[str, typer.Option(help="The user's full name.")],
    company: CompanyOpt,
    admin: Annotated[
        bool, typer.Option("--admin", help="Make them the company's administrator.")
    ] = False,
    role: Annotated[
        Role | None,
        typer.Option(help="The role in the company (default operator).", case_sensitive=False),
    ] = None,
) -> None:
    """Create a user with a provisional password, printed once on stdout.

    The user must change it at the first sign-in. An e-mail that already has an account
    only gains the role in this company (its password is kept and nothing is printed).
    """
    if admin and role not in (None, Role.ADMIN):
        raise typer.BadParameter("--admin and --role disagree", param_hint="--role")
    chosen = Role.ADMIN if admin else (role or Role.OPERATOR)
    with opened() as container:
        company_id = _company_id(container, company)
        created = users.create_user(
            container.uow(),
            users.NewUser(email, name, company_id, chosen),
            actor=cli_actor(),
            clock=container.clock,
        )
    if created.provisional_password is None:
        out.print(
            f"{escape(created.email)} already had an account: now also {chosen.value} "
            f"of {escape(company)} (password unchanged)."
        )
        return
    typer.echo(created.provisional_password)
    err.print(
        f"User {created.user_id} {escape(created.email)} ({chosen.value} of {escape(company)}): "
        "provisional password above, shown once; it must be changed at the first sign-in."
    )


@user_app.command("list")
@handles_errors
def user_list(company: CompanyOpt) -> None:
    """The company's users, their roles and states."""
    with opened() as container:
        company_id = _company_id(container, company)
        rows = users.list_users(container.uow(write=False), company_id, actor=cli_actor())
    table = Table("id", "email", "name", "role", "state", "last sign-in")
    for user in rows:
        state = (
            "inactive"
            if not user.active
            else ("provisional password" if user.must_change_password else "active")
        )
        last = user.last_sign_in_at.strftime("%Y-%m-%d %H:%M") if user.last_sign_in_at else "never"
        table.add_row(
            str(user.id), escape(user.email), escape(user.name), user.role.value, state, last
        )
    print_table(table)


@user_app.command("deactivate")
@handles_errors
def user_deactivate(
    email: EmailOpt,
    company: Annotated[
        str | None,
        typer.Option(help="Only in this company (default: the whole account, every company)."),
    ] = None,
) -> None:
    """Deactivate a user (in one company, or everywhere); their sessions end."""
    with opened() as container:
        user_id = users.user_id_by_email(container.uow(write=False), email)
        if company is None:
            users.deactivate_account(
                container.uow(), email, actor=cli_actor(), clock=container.clock
            )
            out.print(f"User {escape(users.normalize_email(email))} deactivated.")
            return
        company_id = _company_id(container, company)
        users.set_active(
            container.uow(), company_id, user_id, False, actor=cli_actor(), clock=container.clock
        )
    out.print(f"User {escape(users.normalize_email(email))} deactivated in {escape(company)}.")


@user_app.command("reset-password")
@handles_errors
def user_reset_password(email: EmailOpt) -> None:
    """A new provisional password, printed once on stdout; the user's sessions end."""
    with opened() as container:
        user_id = users.user_id_by_email(container.uow(write=False), email)
        password = users.reset_password(
            container.uow(), user_id, actor=cli_actor(), clock=container.clock
        )
    typer.echo(password)
    err.print(
        f"Provisional password of {escape(users.normalize_email(email))} above, shown once; "
        "it must be changed at the next sign-in."
    )
