"""`recaudo commitments ...` and `recaudo creditor-account ...`: recurring commitments,
their payments, the monthly generation, and the company's creditor accounts."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from recaudo.adapters.db.tables import Company
from recaudo.bootstrap import Container
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
from recaudo.domain.errors import NotFound, ValidationFailed
from recaudo.services import commitments as svc
from recaudo.services import creditor_accounts as accounts
from recaudo.services import customers, queries

commitments_app = typer.Typer(
    help="Recurring commitments (fees, donations) and the payments they generate."
)
commitments_app.info.no_args_is_help = True
app.add_typer(commitments_app, name="commitments")
account_app = typer.Typer(help="The company's creditor accounts for SEPA files.")
account_app.info.no_args_is_help = True
app.add_typer(account_app, name="creditor-account")

CompanyOpt = Annotated[str, typer.Option("--company", help="The company's slug.")]
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
ALL = queries.Paging(1, queries.MAX_PAGE_SIZE)


def _date(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{name}: {text!r} is not a date (YYYY-MM-DD)", field=name) from None


def _month(text: str | None) -> date | None:
    if text is None:
        return None
    match = _MONTH.match(text.strip())
    if match is None:
        raise ValidationFailed(f"month: {text!r} is not YYYY-MM", field="month")
    return date(int(match[1]), int(match[2]), 1)


def _time(text: str | None) -> time | None:
    if text is None:
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"run time: {text!r} is not HH:MM", field="run_time") from None


def _customer_id(container: Container, company_id: int, national_id: str | None) -> int | None:
    if national_id is None:
        return None
    with container.uow(write=False) as uow:
        company = uow.session.get(Company, company_id)
        if company is None:
            raise NotFound(f"no company {company_id}")
        return customers.find_customer(uow, company, national_id).id


def _money(value: object, currency: str) -> str:
    return f"{format(value, 'f')} {currency}"


def _describe(view: svc.CommitmentView) -> list[tuple[str, str]]:
    mandate = view.mandate
    rows = [
        ("id", str(view.id)),
        ("payer", str(view.payer_customer_id)),
        (
            "beneficiary",
            str(view.beneficiary_customer_id or "") or (view.beneficiary_label or ""),
        ),
        ("kind", view.kind),
        ("method", view.method),
        ("periodicity", view.periodicity),
        ("amount", _money(view.amount, view.currency)),
        ("direction", view.direction),
        ("first payment", view.first_payment_on.isoformat()),
        ("ends on", view.ends_on.isoformat() if view.ends_on else ""),
        ("concept", view.concept),
        ("channel", view.channel_label or ""),
        ("campaign", view.campaign_label or ""),
        ("iban", view.iban or ""),
        ("bic", view.bic or ""),
        (
            "mandate",
            f"{mandate.reference} ({mandate.status}, signed {mandate.signed_on})"
            if mandate
            else "",
        ),
        ("card", f"token set, expires {view.card_expiry or '?'}" if view.has_card_token else ""),
        ("responsible", view.responsible_email or ""),
        ("active", "yes" if view.active else "no"),
        ("ended reason", view.ended_reason or ""),
    ]
    return rows


def _print_pairs(rows: list[tuple[str, str]]) -> None:
    for label, value in rows:
        out.print(f"{label + ':':<15} {escape(value)}")


def _payments_table(items: list[svc.PaymentView]) -> Table:
    table = Table(
        "id", "commitment", "customer", "due", "amount", "method", "status", "remittance", "e2e id"
    )
    for p in items:
        table.add_row(
            str(p.id),
            str(p.commitment_id),
            str(p.customer_id),
            p.due_on.isoformat(),
            _money(p.amount, p.currency),
            p.method,
            p.status,
            str(p.remittance_id or ""),
            p.end_to_end_id,
        )
    return table


@commitments_app.command("create")
@handles_errors
def create(
    company: CompanyOpt,
    payer: Annotated[str, typer.Option(help="The payer's national id (a customer).")],
    kind: Annotated[str, typer.Option(help="fee, donation, in_kind or services.")],
    method: Annotated[
        str,
        typer.Option(
            help="direct_debit, card, bizum, paypal, transfer_received, transfer_issued, "
            "cash, cheque or in_kind."
        ),
    ],
    periodicity: Annotated[
        str, typer.Option(help="one_off, monthly, bimonthly, quarterly, semiannual or annual.")
    ],
    amount: Annotated[str, typer.Option(help="Per payment, e.g. 10.00.")],
    first_payment: Annotated[str, typer.Option(help="The first due date, YYYY-MM-DD.")],
    concept: Annotated[str, typer.Option(help="Shown on the receipt.")],
    ends_on: Annotated[str | None, typer.Option(help="Last day (inclusive), YYYY-MM-DD.")] = None,
    direction: Annotated[str, typer.Option(help="income or expense.")] = "income",
    iban: Annotated[str | None, typer.Option(help="Direct debit / issued transfer.")] = None,
    bic: Annotated[str | None, typer.Option()] = None,
    beneficiary: Annotated[
        str | None, typer.Option(help="The beneficiary's national id (a customer).")
    ] = None,
    beneficiary_label: Annotated[str | None, typer.Option(help="Or a project.")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel label.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign label.")] = None,
    mandate_signed_on: Annotated[
        str | None, typer.Option(help="Mandate signature date (default today).")
    ] = None,
    scheme: Annotated[str, typer.Option(help="Mandate scheme: CORE or B2B.")] = "CORE",
    card_token: Annotated[str | None, typer.Option(help="The card gateway's token.")] = None,
    card_expiry: Annotated[str | None, typer.Option(help="YYYY-MM.")] = None,
    responsible_email: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a commitment: its mandate (direct debit) and the payments due so far."""
    first = _date(first_payment, "first_payment")
    assert first is not None
    with opened() as container:
        company_id = company_of(container, company).id
        payer_id = _customer_id(container, company_id, payer)
        assert payer_id is not None
        view = svc.create_commitment(
            container.uow(),
            company_id,
            svc.NewCommitment(
                payer_customer_id=payer_id,
                kind=kind,
                method=method,
                periodicity=periodicity,
                amount=amount,
                first_payment_on=first,
                concept=concept,
                direction=direction,
                ends_on=_date(ends_on, "ends_on"),
                beneficiary_customer_id=_customer_id(container, company_id, beneficiary),
                beneficiary_label=beneficiary_label,
                channel_label=channel,
                campaign_label=campaign,
                iban=iban,
                bic=bic,
                mandate_signed_on=_date(mandate_signed_on, "mandate_signed_on"),
                mandate_scheme=scheme,
                card_token=card_token,
                card_expiry=card_expiry,
                responsible_email=responsible_email,
            ),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"Commitment {view.id} created; {view.payments_created} payment(s) generated.")
    if view.mandate is not None:
        out.print(f"Mandate {view.mandate.reference}")


@commitments_app.command("list")
@handles_errors
def list_(
    company: CompanyOpt,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Only active / ended ones.")
    ] = None,
    method: Annotated[str | None, typer.Option()] = None,
    customer: Annotated[str | None, typer.Option(help="Payer or beneficiary national id.")] = None,
) -> None:
    """List a company's commitments."""
    with opened() as container:
        company_id = company_of(container, company).id
        customer_id = _customer_id(container, company_id, customer)
        with container.uow(write=False) as uow:
            page = svc.list_commitments(
                uow,
                company_id,
                svc.CommitmentFilter(active=active, method=method, customer_id=customer_id),
                paging=ALL,
            )
    table = Table("id", "payer", "kind", "method", "periodicity", "amount", "from", "to", "active")
    for c in page.items:
        table.add_row(
            str(c.id),
            str(c.payer_customer_id),
            c.kind,
            c.method,
            c.periodicity,
            _money(c.amount, c.currency),
            c.first_payment_on.isoformat(),
            c.ends_on.isoformat() if c.ends_on else "",
            "yes" if c.active else "no",
        )
    print_table(table)
    if page.total > len(page.items):
        out.print(f"(first {len(page.items)} of {page.total})")


@commitments_app.command("show")
@handles_errors
def show(
    company: CompanyOpt,
    commitment_id: Annotated[int, typer.Argument(help="The commitment's id.")],
) -> None:
    """Show a commitment, its mandates and its payments."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            view = svc.get_commitment(uow, company_id, commitment_id)
            mandates = svc.list_mandates(uow, company_id, commitment_id)
            page = svc.list_payments(
                uow, company_id, svc.PaymentFilter(commitment_id=commitment_id), paging=ALL
            )
    _print_pairs(_describe(view))
    if mandates:
        out.print("\nMandates:")
        for m in mandates:
            out.print(f"  {m.reference}  {m.iban}  {m.scheme}  signed {m.signed_on}  {m.status}")
    out.print("\nPayments:")
    print_table(_payments_table(page.items))


@commitments_app.command("edit")
@handles_errors
def edit(
    company: CompanyOpt,
    commitment_id: Annotated[int, typer.Argument(help="The commitment's id.")],
    amount: Annotated[str | None, typer.Option()] = None,
    method: Annotated[str | None, typer.Option()] = None,
    iban: Annotated[str | None, typer.Option(help="A new IBAN makes a new mandate.")] = None,
    bic: Annotated[str | None, typer.Option()] = None,
    ends_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (inclusive).")] = None,
    no_end: Annotated[bool, typer.Option("--no-end", help="Remove the end date.")] = False,
    concept: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    campaign: Annotated[str | None, typer.Option()] = None,
    card_token: Annotated[str | None, typer.Option()] = None,
    card_expiry: Annotated[str | None, typer.Option()] = None,
    responsible_email: Annotated[str | None, typer.Option()] = None,
    mandate_signed_on: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Edit a commitment; only open payments due from today on follow."""
    if no_end and ends_on is not None:
        raise ValidationFailed("--ends-on and --no-end contradict each other", field="ends_on")
    changes = svc.CommitmentChanges(
        amount=amount,
        method=method,
        iban=iban,
        bic=bic,
        ends_on=_date(ends_on, "ends_on"),
        concept=concept,
        channel_label=channel,
        campaign_label=campaign,
        card_token=card_token,
        card_expiry=card_expiry,
        responsible_email=responsible_email,
        mandate_signed_on=_date(mandate_signed_on, "mandate_signed_on"),
        clear=frozenset({"ends_on"}) if no_end else frozenset(),
    )
    with opened() as container:
        company_id = company_of(container, company).id
        view = svc.edit_commitment(
            container.uow(),
            company_id,
            commitment_id,
            changes,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"Commitment {view.id} updated.")
    _print_pairs(_describe(view))


@commitments_app.command("end")
@handles_errors
def end(
    company: CompanyOpt,
    commitment_id: Annotated[int, typer.Argument(help="The commitment's id.")],
    reason: Annotated[str, typer.Option(help="Why it ends.")],
    ends_on: Annotated[str | None, typer.Option(help="Default: today.")] = None,
) -> None:
    """End a commitment; its open payments due after the end are cancelled."""
    with opened() as container:
        company_id = company_of(container, company).id
        view = svc.end_commitment(
            container.uow(),
            company_id,
            commitment_id,
            reason=reason,
            ends_on=_date(ends_on, "ends_on"),
            actor=cli_actor(),
            clock=container.clock,
        )
    state = "active until then" if view.active else "no longer active"
    out.print(f"Commitment {view.id} ends on {view.ends_on}: {state}.")


@commitments_app.command("generate")
@handles_errors
def generate(
    company: CompanyOpt,
    month: Annotated[
        str | None, typer.Option(help="Last month to generate, YYYY-MM (default: setting).")
    ] = None,
) -> None:
    """Generate every missing payment due up to a month (idempotent)."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            total = svc.list_commitments(uow, company_id, paging=queries.Paging(1, 1)).total
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Commitments", total=total)
            run = svc.generate_payments(
                container.uow(),
                company_id,
                month=_month(month),
                clock=container.clock,
                actor=cli_actor(),
                progress=lambda n: progress.advance(task, n),
            )
    out.print(
        f"Up to {run.month:%Y-%m}: {run.created} payment(s) created "
        f"({run.commitments} commitment(s) looked at)."
    )


@commitments_app.command("payments")
@handles_errors
def payments(
    company: CompanyOpt,
    status: Annotated[str | None, typer.Option()] = None,
    method: Annotated[str | None, typer.Option()] = None,
    month: Annotated[str | None, typer.Option(help="Due month, YYYY-MM.")] = None,
    commitment: Annotated[int | None, typer.Option(help="Only this commitment's.")] = None,
) -> None:
    """List commitment payments by due date."""
    filters = svc.PaymentFilter(
        status=status, method=method, due_month=_month(month), commitment_id=commitment
    )
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            page = svc.list_payments(uow, company_id, filters, paging=ALL)
    print_table(_payments_table(page.items))
    if page.total > len(page.items):
        out.print(f"(first {len(page.items)} of {page.total})")


@commitments_app.command("transition")
@handles_errors
def transition(
    company: CompanyOpt,
    payment_id: Annotated[int, typer.Argument(help="The commitment payment's id.")],
    to: Annotated[str, typer.Option("--to", help="The new status.")],
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Move a commitment payment to another status (the method's table decides)."""
    with opened() as container:
        company_id = company_of(container, company).id
        view = svc.change_payment_status(
            container.uow(),
            company_id,
            payment_id,
            to,
            actor=cli_actor(),
            clock=container.clock,
            reason=reason,
        )
    out.print(f"Payment {view.id} is now {view.status}.")


@commitments_app.command("settings")
@handles_errors
def settings(
    company: CompanyOpt,
    generate_for: Annotated[str | None, typer.Option(help="current or next.")] = None,
    run_day: Annotated[int | None, typer.Option(help="Day of the month, 1-28.")] = None,
    run_time: Annotated[str | None, typer.Option(help="HH:MM, company time.")] = None,
    notify_email: Annotated[str | None, typer.Option(help='"" clears it.')] = None,
) -> None:
    """Show (and with options, change) when the monthly generation runs."""
    with opened() as container:
        company_id = company_of(container, company).id
        if any(v is not None for v in (generate_for, run_day, run_time, notify_email)):
            view = accounts.update_settings(
                container.uow(),
                company_id,
                accounts.SettingsChanges(generate_for, run_day, _time(run_time), notify_email),
                actor=cli_actor(),
                clock=container.clock,
            )
        else:
            with container.uow(write=False) as uow:
                view = accounts.get_settings(uow, company_id)
    last = view.last_generated_month
    _print_pairs(
        [
            ("generate for", view.generate_for),
            ("run day", str(view.run_day)),
            ("run time", view.run_time.strftime("%H:%M")),
            ("notify", view.notify_email or ""),
            ("last run", f"{last:%Y-%m}" if last else "never"),
        ]
    )


# --------------------------------------------------------------------------- creditor accounts


@account_app.command("add")
@handles_errors
def account_add(
    company: CompanyOpt,
    name: Annotated[str, typer.Option()],
    iban: Annotated[str, typer.Option()],
    creditor_id: Annotated[str, typer.Option(help="SEPA creditor identifier (AT-02).")],
    creditor_name: Annotated[str, typer.Option(help="As written in the files (max 70).")],
    bic: Annotated[str | None, typer.Option()] = None,
    pain008: Annotated[str, typer.Option(help="pain.008.001.02 or .08")] = "pain.008.001.08",
    pain001: Annotated[str, typer.Option(help="pain.001.001.03 or .09")] = "pain.001.001.09",
    include_bic: Annotated[bool, typer.Option(help="Write BICs in the files.")] = False,
    lead_days: Annotated[int, typer.Option(help="TARGET2 business days of notice.")] = 1,
    street: Annotated[str | None, typer.Option()] = None,
    town: Annotated[str | None, typer.Option()] = None,
    postcode: Annotated[str | None, typer.Option()] = None,
    country: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register one of the company's creditor accounts."""
    with opened() as container:
        company_id = company_of(container, company).id
        view = accounts.register_account(
            container.uow(),
            company_id,
            accounts.CreditorAccountData(
                name=name,
                iban=iban,
                bic=bic,
                creditor_identifier=creditor_id,
                creditor_name=creditor_name,
                pain008_version=pain008,
                pain001_version=pain001,
                include_bic=include_bic,
                lead_days=lead_days,
                street=street,
                town=town,
                postcode=postcode,
                country=country,
            ),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"Creditor account {view.id} registered: {view.iban} ({view.creditor_identifier}).")


@account_app.command("list")
@handles_errors
def account_list(company: CompanyOpt) -> None:
    """List the company's creditor accounts."""
    with opened() as container:
        company_id = company_of(container, company).id
        with container.uow(write=False) as uow:
            views = accounts.list_accounts(uow, company_id)
    table = Table("id", "name", "iban", "bic", "creditor id", "pain.008", "pain.001", "lead", "on")
    for a in views:
        table.add_row(
            str(a.id),
            escape(a.name),
            a.iban,
            a.bic or "",
            a.creditor_identifier,
            a.pain008_version,
            a.pain001_version,
            str(a.lead_days),
            "yes" if a.active else "no",
        )
    print_table(table)
