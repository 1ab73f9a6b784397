"""`recaudo negotiation simulate|create|accept|list|show|review|settings`, `recaudo policy ...`."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recaudo.cli.main import app, cli_actor, company_of, handles_errors, opened, out, print_table
from recaudo.domain.errors import ValidationFailed
from recaudo.services import negotiation_review, policies
from recaudo.services import negotiations as neg
from recaudo.services.queries import MAX_PAGE_SIZE, Paging

negotiation_app = typer.Typer(help="Negotiations of late debts: offers, proposals, plans.")
negotiation_app.info.no_args_is_help = True
app.add_typer(negotiation_app, name="negotiation")

policy_app = typer.Typer(help="Viability policies: which strategies a late debt may get.")
policy_app.info.no_args_is_help = True
app.add_typer(policy_app, name="policy")

Company = Annotated[str, typer.Option(help="The company's slug.")]
CustomerOpt = Annotated[str, typer.Option("--customer", help="The customer's national id.")]


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{name}: {text!r} is not a date (YYYY-MM-DD)", field=name) from None


def _value(text: str) -> Any:
    """A parameter's value: JSON when it parses (numbers, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _params(items: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs (`term=12`, `condonation={"late_interest": 100}`)."""
    out_: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValidationFailed(f"--param {item!r} is not key=value", field="param")
        out_[key.strip()] = _value(raw.strip())
    return out_


def _strategy_params(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """`STRATEGY.key=value` pairs (`PPPL.term=24`) grouped by strategy."""
    grouped: dict[str, dict[str, Any]] = {}
    for item in items or []:
        head, sep, _ = item.partition("=")
        code, dot, key = head.partition(".")
        if not sep or not dot or not code.strip() or not key.strip():
            raise ValidationFailed(f"--param {item!r} is not STRATEGY.key=value", field="param")
        grouped.setdefault(code.strip().upper(), {}).update(
            _params([f"{key}={item.partition('=')[2]}"])
        )
    return grouped


def _commitment(text: str) -> neg.CommitmentSpec:
    """`KIND:AMOUNT[:YYYY-MM-DD]` (`P:100000:2026-04-02`, `T:250000`)."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValidationFailed(
            f"--commitment {text!r} is not KIND:AMOUNT[:YYYY-MM-DD]", field="commitment"
        )
    due = _date(parts[2], "commitment") if len(parts) == 3 else None
    return neg.CommitmentSpec(parts[0], parts[1], due)


def _m(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


@negotiation_app.command("simulate")
@handles_errors
def simulate(
    company: Company,
    customer: CustomerOpt,
    debt: Annotated[list[str] | None, typer.Option(help="A debt id (repeat); none: all.")] = None,
    strategy: Annotated[list[str] | None, typer.Option(help="Only this strategy (repeat).")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="Recalculate: STRATEGY.key=value, e.g. PPPL.term=24 (repeat)."),
    ] = None,
) -> None:
    """The offers each obligation gets, viable or with the causes why not."""
    with opened() as container:
        company_id = company_of(container, company).id
        customer_id = neg.customer_by_national_id(
            container.uow(write=False), company_id, customer, actor=cli_actor()
        )
        sim = neg.simulate(
            container.uow(write=False),
            company_id,
            neg.Simulate(
                customer_id, tuple(debt or ()), tuple(strategy or ()), _strategy_params(param)
            ),
            actor=cli_actor(),
            clock=container.clock,
        )
    capacity = "not declared" if sim.capacity is None else f"{_m(sim.capacity)} {sim.currency}"
    out.print(f"as of {sim.as_of.isoformat()}, payment capacity {capacity}")
    table = Table(
        "debt",
        "days late",
        "balance",
        "strategy",
        "viable",
        "today",
        "installment",
        "term",
        "rate %",
        "condoned",
        "causes",
    )
    for o in sim.obligations:
        for offer in o.offers or ():
            t = offer.terms
            table.add_row(
                escape(o.debt),
                str(o.days_past_due),
                _m(o.balance),
                offer.strategy,
                "yes" if offer.viable else "no",
                _m(t.payment_today) if t else "",
                _m(t.new_installment) if t else "",
                str(t.term) if t else "",
                _m(t.annual_rate) if t else "",
                _m(t.total_condoned) if t else "",
                escape("; ".join(f"{c.cause}: {c.message}" for c in offer.causes)),
            )
        if not o.offers:
            table.add_row(
                escape(o.debt),
                str(o.days_past_due),
                _m(o.balance),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "no policies",
            )
    print_table(table)


def _show(view: neg.NegotiationView) -> None:
    cur = view.currency
    out.print(
        f"negotiation {view.id}: {view.strategy} ({escape(view.strategy_name)}), {view.state}"
    )
    out.print(f"customer {view.customer_id}, mark {view.mark_start} → {view.mark_end}")
    out.print(
        f"negotiated {_m(view.negotiated)} {cur}; today {_m(view.payment_today)}; "
        f"installments {_m(view.installments_total)}; condoned {_m(view.condoned)}"
    )
    if view.exceptions_used:
        out.print(f"exceptions used: {escape(', '.join(view.exceptions_used))}")
    if view.break_reason:
        out.print(f"broken: {escape(view.break_reason)}")
    if view.reinstated_debt:
        out.print(f"condonation reinstated as debt {escape(view.reinstated_debt)}")
    table = Table("no.", "debt", "due", "amount", "principal", "interest", "paid", "status")
    for p in view.plan:
        table.add_row(
            str(p.number),
            escape(p.debt),
            p.due_date.isoformat(),
            _m(p.amount),
            _m(p.principal),
            _m(p.interest),
            _m(p.paid),
            p.status,
        )
    print_table(table)
    out.print(
        "commitments: "
        + ", ".join(f"{c.kind} {_m(c.amount)} on {c.due_date}" for c in view.commitments)
    )


@negotiation_app.command("create")
@handles_errors
def create(
    company: Company,
    customer: CustomerOpt,
    strategy: Annotated[
        str, typer.Option(help="CNTL, PDIA, PDDA, PPPL, PPPA, PPPS, PRERM, REDIF.")
    ],
    debt: Annotated[list[str], typer.Option(help="A debt id to negotiate (repeat).")],
    param: Annotated[
        list[str] | None, typer.Option(help="A parameter over the policies': key=value (repeat).")
    ] = None,
    commitment: Annotated[
        list[str] | None,
        typer.Option(help="KIND:AMOUNT[:YYYY-MM-DD], P… then one T (repeat); none: the plan's."),
    ] = None,
    adviser: Annotated[str | None, typer.Option(help="Who negotiated.")] = None,
    office: Annotated[str | None, typer.Option(help="The office code.")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
) -> None:
    """Propose a negotiation (refused when the policies do not allow it)."""
    with opened() as container:
        company_id = company_of(container, company).id
        customer_id = neg.customer_by_national_id(
            container.uow(write=False), company_id, customer, actor=cli_actor()
        )
        view = neg.create_negotiation(
            container.uow(),
            company_id,
            neg.NewNegotiation(
                customer_id=customer_id,
                strategy=strategy,
                debts=tuple(debt),
                parameters=_params(param),
                commitments=tuple(_commitment(c) for c in commitment or ()),
                adviser=adviser,
                office=office,
                channel="cli",
                external_id=key,
            ),
            actor=cli_actor(),
            clock=container.clock,
        )
    _show(view)


@negotiation_app.command("accept")
@handles_errors
def accept(
    company: Company,
    negotiation_id: Annotated[int, typer.Argument(help="The negotiation's id.")],
) -> None:
    """Accept a proposal: its debts are replaced by the plan's new debts."""
    with opened() as container:
        view = neg.accept_negotiation(
            container.uow(),
            company_of(container, company).id,
            negotiation_id,
            actor=cli_actor(),
            clock=container.clock,
        )
    _show(view)


@negotiation_app.command("list")
@handles_errors
def list_(
    company: Company,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer (national id).")
    ] = None,
) -> None:
    """Negotiations, newest first."""
    with opened() as container:
        company_id = company_of(container, company).id
        customer_id = None
        if customer is not None:
            customer_id = neg.customer_by_national_id(
                container.uow(write=False), company_id, customer, actor=cli_actor()
            )
        page = neg.list_negotiations(
            container.uow(write=False),
            company_id,
            actor=cli_actor(),
            state=state,
            customer_id=customer_id,
            paging=Paging(1, MAX_PAGE_SIZE),
        )
    table = Table(
        "id", "customer", "strategy", "state", "negotiated", "today", "plan", "condoned", "created"
    )
    for n in page.items:
        table.add_row(
            str(n.id),
            str(n.customer_id),
            n.strategy,
            n.state,
            _m(n.negotiated),
            _m(n.payment_today),
            _m(n.installments_total),
            _m(n.condoned),
            f"{n.created_at:%Y-%m-%d %H:%M}",
        )
    print_table(table)


@negotiation_app.command("show")
@handles_errors
def show(
    company: Company,
    negotiation_id: Annotated[int, typer.Argument(help="The negotiation's id.")],
) -> None:
    """One negotiation: its plan, commitments and state."""
    with opened() as container:
        view = neg.get_negotiation(
            container.uow(write=False),
            company_of(container, company).id,
            negotiation_id,
            actor=cli_actor(),
        )
    _show(view)


@negotiation_app.command("review")
@handles_errors
def review(
    company: Annotated[str | None, typer.Option(help="Only this company's plans.")] = None,
) -> None:
    """Run the periodic review now: activate, fulfil or break plans."""
    with opened() as container:
        company_id = None if company is None else company_of(container, company).id
        report = negotiation_review.review_negotiations(
            container.uow(), clock=container.clock, actor=cli_actor(), company_id=company_id
        )
    out.print(
        f"activated {report.activated}, fulfilled {report.fulfilled}, broken {report.broken} "
        f"(condonation reinstated in {report.reinstated})"
    )


@negotiation_app.command("settings")
@handles_errors
def settings(
    company: Company,
    break_after_days: Annotated[
        int | None, typer.Option(help="Days late an installment may be before the plan breaks.")
    ] = None,
    reinstate: Annotated[
        str | None,
        typer.Option(help="On break, condonation comes back: never, always, proportional."),
    ] = None,
    capacity_ratio: Annotated[
        str | None, typer.Option(help="Share of the available income installments may take (0.30).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="A concept's label: concept=label (repeat).")
    ] = None,
) -> None:
    """Show the company's negotiation settings, or change them (administrators)."""
    labels = None
    if label:
        labels = {}
        for item in label:
            key, sep, text = item.partition("=")
            if not sep:
                raise ValidationFailed(f"--label {item!r} is not concept=label", field="label")
            labels[key.strip()] = text
    changes = neg.SettingsChanges(labels, break_after_days, reinstate, capacity_ratio)
    with opened() as container:
        company_id = company_of(container, company).id
        if changes == neg.SettingsChanges():
            view = neg.get_settings(container.uow(write=False), company_id, actor=cli_actor())
        else:
            view = neg.update_settings(
                container.uow(), company_id, changes, actor=cli_actor(), clock=container.clock
            )
    out.print(f"break after days:    {view.break_after_days}")
    out.print(f"reinstate on break:  {view.reinstate_on_break}")
    out.print(f"capacity ratio:      {_m(view.capacity_ratio)}")
    for key, text in view.concept_labels.items():
        out.print(f"label {key + ':':<18} {escape(text)}")


# --- policies ------------------------------------------------------------------------------


@policy_app.command("add")
@handles_errors
def policy_add(
    company: Company,
    name: Annotated[str, typer.Option(help="A name, unique in the company.")],
    strategy: Annotated[str, typer.Option(help="The strategy the rule applies to.")],
    rule: Annotated[str, typer.Option(help="A rule-engine condition, e.g. 'days_past_due >= 30'.")],
    cause: Annotated[str, typer.Option(help="The cause named when the rule fails.")],
    message: Annotated[str, typer.Option(help="What the cause means, for people.")],
    exception_name: Annotated[
        str | None, typer.Option(help="The exception that may override it (EXC_DIAS_MORA).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="An offer parameter: key=value (repeat).")
    ] = None,
) -> None:
    """Add a viability rule; unsafe rules (other names, attribute access) are refused."""
    with opened() as container:
        view = policies.add_policy(
            container.uow(),
            company_of(container, company).id,
            policies.NewPolicy(
                name, strategy, rule, cause, message, exception_name, _params(param)
            ),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"policy {view.id} ({escape(view.name)}) for {view.strategy}: {escape(view.rule)}")


@policy_app.command("list")
@handles_errors
def policy_list(
    company: Company,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Disabled policies too.")] = False,
) -> None:
    """The company's viability policies."""
    with opened() as container:
        views = policies.list_policies(
            container.uow(write=False),
            company_of(container, company).id,
            actor=cli_actor(),
            strategy=strategy,
            active=None if all_ else True,
        )
    table = Table("id", "name", "strategy", "rule", "cause", "exception", "parameters", "active")
    for v in views:
        table.add_row(
            str(v.id),
            escape(v.name),
            v.strategy,
            escape(v.rule),
            escape(v.cause),
            v.exception_name or "",
            escape(json.dumps(v.parameters, sort_keys=True)),
            "yes" if v.active else "no",
        )
    print_table(table)


@policy_app.command("disable")
@handles_errors
def policy_disable(
    company: Company,
    policy_id: Annotated[int, typer.Argument(help="The policy's id.")],
) -> None:
    """Disable a policy (it is kept for the exceptions and the audit trail)."""
    with opened() as container:
        view = policies.disable_policy(
            container.uow(),
            company_of(container, company).id,
            policy_id,
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"policy {view.id} ({escape(view.name)}) disabled")


@policy_app.command("grant")
@handles_errors
def policy_grant(
    company: Company,
    policy_id: Annotated[int, typer.Option("--policy", help="The policy to override.")],
    customer: CustomerOpt,
    reason: Annotated[str, typer.Option(help="Why (recorded and audited).")],
    until: Annotated[str, typer.Option(help="Last day it is valid, YYYY-MM-DD.")],
    debt: Annotated[str | None, typer.Option(help="Only this debt.")] = None,
) -> None:
    """Grant an exception to a policy for one customer (administrators)."""
    with opened() as container:
        company_id = company_of(container, company).id
        customer_id = neg.customer_by_national_id(
            container.uow(write=False), company_id, customer, actor=cli_actor()
        )
        view = policies.grant_exception(
            container.uow(),
            company_id,
            policies.NewException(customer_id, policy_id, reason, _date(until, "until"), debt),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(
        f"exception {view.id} to {escape(view.policy_name)} for customer {view.customer_id} "
        f"until {view.valid_until.isoformat()}"
    )
