"""The end of the day through the real server: the bank queries and notifies over HTTP
(the notification's short way and the general one), `POST /settlements` writes the file,
the delivery job takes it to the bank's directory, and `POST .../reconciliations` of those
very bytes matches every payment."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from recaudo.formats import fixedwidth
from recaudo.services import deliveries
from recaudo.services.deliveries import TargetSpec
from tests.e2e.bank import (  # noqa: F401 (the fixture)
    JUANA_RUT,
    MANY_RUT,
    OK,
    UNKNOWN_RUT,
    Bank,
    bank_fixture,
    paid_body,
)
from tests.e2e.conftest import ROOT_ACTOR


def test_notified_payments_settle_deliver_and_reconcile(bank: Bank, tmp_path: Path) -> None:
    api = bank.api
    agreement = bank.agreements["caja-vecina"]
    outdir = tmp_path / "banco"
    outdir.mkdir()
    deliveries.create_target(
        api.uow,
        api.acme.id,
        TargetSpec("banco", "local", {"directory": str(outdir)}, agreement_id=agreement.id),
        settings=api.container.settings,
        actor=ROOT_ACTOR,
        clock=api.clock,
    )
    # Juana pays as quoted (the short way); Marta pays 5 debts and 100 more (the general
    # way: credit and an exception); someone unknown pays 7000 (held, an exception).
    juana = bank.quote(JUANA_RUT)
    assert len(juana["transaccion"]) == 36
    marta = bank.quote(MANY_RUT)
    more = format(Decimal(marta["total"]) + 100, ".2f")
    for body in (
        paid_body(juana),
        paid_body(marta, "2026-03-02 10:05", total=more),
        paid_body(
            {**juana, "transaccion": "BE-UNKNOWN-0001", "rut_cliente": UNKNOWN_RUT},
            "2026-03-02 10:10",
            total="7000.00",
        ),
    ):
        response = bank.notify(body)
        assert (response.status_code, response.json()) == (200, OK)

    api.clock.now = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 19:30 local: the day closed
    admin = api.client("acme_admin")
    settled = admin.post(
        "/settlements", json={"agreement_id": agreement.id, "accounting_date": "2026-03-02"}
    )
    assert settled.status_code == 201, settled.text
    file = settled.json()
    total = 4000 + int(Decimal(more)) + 7000
    assert (file["payment_count"], file["record_count"]) == (3, 2 + 6 + 1)
    assert file["total"] == str(total)
    served = admin.get(f"/settlements/{file['id']}/file")
    assert served.status_code == 200

    assert deliveries.deliver_due(api.uow, api.container.settings, api.clock) == 1
    delivered = (outdir / file["file_name"]).read_bytes()
    assert delivered == served.content
    layout = fixedwidth.load_layout("bancoestado-rendicion")
    report = layout.check(io.BytesIO(delivered))
    assert report.ok and report.counts == {"header": 1, "detail": 9}

    reconciled = admin.post(
        f"/agreements/{agreement.id}/reconciliations",
        files={"file": (file["file_name"], delivered, "text/plain")},
    )
    assert reconciled.status_code == 201, reconciled.text
    view = reconciled.json()
    assert (view["matched"], view["only_bank"], view["only_recaudo"]) == (3, 0, 0)
    assert (view["amount_differs"], view["duplicated"], view["recorded_payments"]) == (0, 0, [])
    assert view["bank_total"] == view["recaudo_total"] == str(total)
    items = admin.get(f"/reconciliations/{view['id']}/items").json()["items"]
    assert {i["transaction_id"] for i in items} == {
        juana["transaccion"],
        marta["transaccion"],
        "BE-UNKNOWN-0001",
    }
