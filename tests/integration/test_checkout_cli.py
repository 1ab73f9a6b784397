"""`recaudo checkout ...` on both backends."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.cli import app
from recaudo.services import checkout_payments as pay
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.context import Actor, Role
from tests.conftest import FrozenClock

runner = CliRunner()


def run(db_url: str, *args: str) -> Result:
    env = {"RECAUDO_DATABASE_URL": db_url, "COLUMNS": "240"}
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_checkout_commands(
    db_url: str, uow: UnitOfWork, clock: FrozenClock, tmp_path: Path
) -> None:
    admin = Actor("test:admin", Role.ADMIN)
    company = create_company(
        uow, NewCompany("uni", "Universidad Ejemplo", "CO"), actor=admin, clock=clock
    )
    r = run(
        db_url,
        "checkout",
        "field-add",
        "--company",
        "uni",
        "--title",
        "Documento",
        "--kind",
        "customer_id",
    )
    assert r.exit_code == 0, r.output
    assert r.output == "reference field 1: Documento (customer_id)\n"
    r = run(
        db_url,
        "checkout",
        "service-add",
        "--company",
        "uni",
        "--code",
        "PIN",
        "--name",
        "Examen de admisión",
        "--price-kind",
        "fixed",
        "--price",
        "85000",
        "--vat",
        "19",
        "--fields",
        "1!",
    )
    assert r.output == "service PIN: Examen de admisión (1 references)\n", r.output
    pins = tmp_path / "pins.txt"
    pins.write_text("\n".join(f"P-{n:04d}" for n in range(2500)) + "\n", encoding="utf-8")
    r = run(db_url, "checkout", "pins-load", "--company", "uni", "--service", "PIN", str(pins))
    assert r.exit_code == 0 and r.output.endswith("2500 PINs loaded; 2500 free of 2500\n"), r.output
    r = run(db_url, "checkout", "services", "--company", "uni")
    assert (
        "Examen de admisión" in r.output and "85000.00 COP" in r.output and "Documento" in r.output
    )
    tx = pay.start_transaction(
        uow, company.id, pay.StartTransaction("PIN", ["1020304050"]), actor=admin, clock=clock
    )
    r = run(db_url, "checkout", "ticket", "--company", "uni", str(tx.ticket))
    assert "     state  CREATED" in r.output and "101150.00 COP" in r.output, r.output
    r = run(db_url, "checkout", "ticket", "--company", "uni", "99")
    assert r.exit_code != 0 and "no ticket 99" in r.output
    r = run(db_url, "checkout", "field-add", "--company", "uni", "--title", "X", "--kind", "nope")
    assert r.exit_code != 0 and "type is one of" in r.output
