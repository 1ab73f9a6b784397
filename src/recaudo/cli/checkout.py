"""`recaudo checkout ...`: payable services, reference fields, PIN lists, tickets, and the
simulated payment provider."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from recaudo.cli.main import app, cli_actor, company_of, handles_errors, opened, out, print_table
from recaudo.domain import money
from recaudo.domain.errors import ValidationFailed
from recaudo.services import checkout, checkout_payments
from recaudo.services.checkout import AttachField, FieldInput, ServiceInput

checkout_app = typer.Typer(help="Checkout: services, reference fields, PINs and tickets.")
checkout_app.info.no_args_is_help = True
app.add_typer(checkout_app, name="checkout")

Company = Annotated[str, typer.Option("--company", help="The company's slug.")]
PIN_CHUNK = 1000


def _minor(text: str | None, currency: str) -> int | None:
    if text is None:
        return None
    return money.to_minor(money.parse_amount(text, currency), currency)


@checkout_app.command("field-add")
@handles_errors
def field_add(
    company: Company,
    title: Annotated[str, typer.Option(help="The reference's title, e.g. Documento.")],
    kind: Annotated[
        str,
        typer.Option(
            help="text, integer, currency, email, customer_id, customer_id_type or constant."
        ),
    ] = "text",
    prefix: Annotated[str | None, typer.Option(help="Fixed text before the value.")] = None,
    help_text: Annotated[str | None, typer.Option("--help-text")] = None,
) -> None:
    """Define a reference field of the company."""
    with opened() as container:
        c = company_of(container, company)
        view = checkout.create_field(
            container.uow(),
            c.id,
            FieldInput(title=title, kind=kind, prefix=prefix, help_text=help_text),
            actor=cli_actor(),
            clock=container.clock,
        )
    out.print(f"reference field {view.id}: {escape(view.title)} ({view.kind})")


@checkout_app.command("service-add")
@handles_errors
def service_add(
    company: Company,
    code: Annotated[str, typer.Option(help="The service's code.")],
    name: Annotated[str, typer.Option(help="The name the payer sees.")],
    price_kind: Annotated[str, typer.Option(help="fixed, list, open or portfolio.")] = "open",
    price: Annotated[str | None, typer.Option(help="Fixed price (before VAT).")] = None,
    minimum: Annotated[str | None, typer.Option(help="Minimum of an open amount.")] = None,
    vat: Annotated[str, typer.Option(help="VAT percentage, e.g. 19.")] = "0",
    means: Annotated[
        str, typer.Option(help="Accepted means, comma separated: PSE,CARD.")
    ] = "PSE,CARD",
    section: Annotated[str | None, typer.Option()] = None,
    fields: Annotated[
        str | None,
        typer.Option(help="Reference field ids in order; `!` after an id makes it required."),
    ] = None,
) -> None:
    """Create a payable service (further parameters: the API's PATCH)."""
    with opened() as container:
        c = company_of(container, company)
        data = ServiceInput(
            code=code,
            name=name,
            price_kind=price_kind,
            fixed_price_minor=_minor(price, c.currency),
            min_amount_minor=_minor(minimum, c.currency),
            vat_basis_points=int(Decimal(vat) * 100),
            accepted_means=tuple(m.strip().upper() for m in means.split(",") if m.strip()),
            section=section,
        )
        view = checkout.create_service(
            container.uow(), c.id, data, actor=cli_actor(), clock=container.clock
        )
        if fields:
            attach = []
            for part in fields.split(","):
                part = part.strip()
                required = part.endswith("!")
                try:
                    field_id = int(part.rstrip("!"))
                except ValueError:
                    raise ValidationFailed(f"{part!r} is not a field id", field="fields") from None
                attach.append(AttachField(field_id, required=required))
            view = checkout.set_service_fields(
                container.uow(), c.id, code, attach, actor=cli_actor(), clock=container.clock
            )
    out.print(f"service {escape(view.code)}: {escape(view.name)} ({len(view.fields)} references)")


@checkout_app.command("services")
@handles_errors
def services(company: Company) -> None:
    """The company's services."""
    with opened() as container:
        c = company_of(container, company)
        views = checkout.list_services(container.uow(write=False), c.id, actor=cli_actor())
    table = Table("code", "name", "price", "means", "references", "PINs free", "active")
    for v in views:
        price = (
            f"{money.from_minor(v.fixed_price_minor, v.currency)} {v.currency}"
            if v.fixed_price_minor
            else v.price_kind
        )
        table.add_row(
            escape(v.code),
            escape(v.name),
            price,
            ",".join(v.accepted_means),
            ", ".join(escape(f.field.title) for f in v.fields),
            f"{v.pins_free}/{v.pins_total}" if v.assigns_pins else "",
            "yes" if v.active else "no",
        )
    print_table(table)


@checkout_app.command("pins-load")
@handles_errors
def pins_load(
    company: Company,
    service: Annotated[str, typer.Option(help="The service's code.")],
    file: Annotated[
        Path,
        typer.Argument(
            help="One PIN per line, in the order to assign them.", exists=True, dir_okay=False
        ),
    ],
) -> None:
    """Append a file of PINs to a service's list."""
    pins = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not pins:
        raise ValidationFailed("the file has no PINs", field="file")
    with opened() as container:
        c = company_of(container, company)
        view = None
        with Progress(console=out, transient=True) as progress:
            task = progress.add_task("loading PINs", total=len(pins))
            for start in range(0, len(pins), PIN_CHUNK):
                chunk = pins[start : start + PIN_CHUNK]
                view = checkout.load_pins(
                    container.uow(), c.id, service, chunk, actor=cli_actor(), clock=container.clock
                )
                progress.advance(task, len(chunk))
    assert view is not None
    out.print(f"{len(pins)} PINs loaded; {view.pins_free} free of {view.pins_total}")


@checkout_app.command("ticket")
@handles_errors
def ticket(company: Company, number: Annotated[int, typer.Argument(help="The ticket id.")]) -> None:
    """One ticket's state."""
    with opened() as container:
        c = company_of(container, company)
        v = checkout_payments.find_by_ticket(
            container.uow(write=False), c.id, number, actor=cli_actor()
        )
    rows = [
        ("ticket", str(v.ticket)),
        ("service", f"{v.service_code} {v.service_name}"),
        ("state", v.state),
        ("references", " / ".join(value for _, value in v.references)),
        ("amount", f"{money.from_minor(v.amount_minor, v.currency)} {v.currency}"),
        ("means", v.means or ""),
        ("bank", v.bank or ""),
        ("trace code", v.trace_code or ""),
        ("PIN", v.pin or ""),
        ("created", f"{v.created_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    for label, value in rows:
        out.print(f"{label:>11}  {escape(value)}")


@checkout_app.command("expire")
@handles_errors
def expire() -> None:
    """End the transactions that outlived their service's timeout (the job does it too)."""
    from recaudo.jobs.checkout import expire_checkout

    with opened() as container:
        count = expire_checkout(container)
    out.print(f"{count} transactions ended")


@checkout_app.command("provider-sim")
def provider_sim(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8090,
) -> None:
    """Run the simulated PSE / card provider (set RECAUDO_CHECKOUT_PROVIDER_URL to it)."""
    import uvicorn

    from recaudo.adapters.payment_provider_sim import create_app

    sim = create_app()
    sim.state.simulator.base_url = f"http://{host}:{port}"
    uvicorn.run(sim, host=host, port=port, log_level="info")
