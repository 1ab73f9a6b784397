"""Card remittances against the simulated gateway (a real HTTP service on loopback) and a real
SMTP server on loopback: approvals, declines, an expired card; a run cut short and re-run
charges nothing twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from recaudo.adapters import card_gateway
from recaudo.adapters.card_gateway import HttpCardGateway
from recaudo.adapters.card_gateway_sim import SimulatorServer
from recaudo.adapters.db.tables import (
    AuditEvent,
    Commitment,
    CommitmentSettings,
    Company,
    Incident,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.domain.errors import Conflict
from recaudo.services import deliveries, remittances
from recaudo.services.context import Actor
from recaudo.services.deliveries import TargetSpec
from recaudo.services.ports import (
    CardGatewayError,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
)
from recaudo.services.remittances import PaymentFilter, RemittanceInvalid
from tests.conftest import FrozenClock
from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401
from tests.integration.test_remittances import (
    books,
    commit_to,
    new_remittance,
    payment_of,
)

SIM_KEY = "sim-secret-key"


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(api_key=SIM_KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=True,
    )


def mail_target(
    uow: UnitOfWork,
    company: Company,
    server: SmtpServer,
    settings: Settings,
    admin: Actor,
    clock: FrozenClock,
) -> None:
    deliveries.create_target(
        uow,
        company.id,
        TargetSpec(
            "avisos",
            "email",
            server.target_settings(["nadie@ong.example"]),
            secret=server.password,
        ),
        settings=settings,
        actor=admin,
        clock=clock,
    )


def sim_reference(key: str) -> str:
    return "sim_" + hashlib.sha256(key.encode()).hexdigest()[:24]


class CutAfter:
    """The real gateway, but the answer of the n-th charge is lost (a timeout after the
    gateway charged): the run stops there."""

    def __init__(self, gateway: HttpCardGateway, n: int) -> None:
        self.gateway = gateway
        self.n = n
        self.calls = 0

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls += 1
        result = self.gateway.charge(request)
        if self.calls == self.n:
            raise CardGatewayError("the card gateway http://sim timed out")
        return result


def test_card_remittance_approvals_declines_expired_and_rerun(
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    settings: Settings,
    sim: SimulatorServer,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    b = books(uow, company_es, clock)
    mail_target(uow, company_es, smtp_server, settings, admin, clock)
    with uow:
        uow.session.add(
            CommitmentSettings(
                company_id=company_es.id, notify_email="avisos@ong.example", updated_at=clock()
            )
        )
        uow.commit()

    def card(customer: int, amount: str, token: str, email: str | None = None) -> int:
        return commit_to(
            uow, company_es, customer, amount, clock, admin, method="card", card_token=token,
            responsible_email=email, concept="Cuota con tarjeta",
        )  # fmt: skip

    visa = card(b.ana, "12.00", "tok_visa_ana")
    poor = card(b.bruno, "8.00", "tok_decline_funds_bruno")
    old = card(b.carla, "5.00", "tok_expired_carla", "responsable@ong.example")
    old2 = card(b.ana, "7.00", "tok_expired_ana")  # no responsible: the company's address
    master = card(b.bruno, "20.00", "tok_master_bruno")
    ids = {c: payment_of(uow, c).id for c in (visa, poor, old, old2, master)}
    rid = new_remittance(uow, b, admin, clock, kind="card", name="Tarjetas marzo")
    assert (
        remittances.add_payments(
            uow, company_es.id, rid, PaymentFilter(due_month="2026-03"), actor=admin, clock=clock
        ).added
        == 5
    )

    with HttpCardGateway(sim.url, SIM_KEY) as real:
        # The second charge's answer is lost: the run stops, what was recorded stays.
        cut = CutAfter(real, 2)
        with pytest.raises(Conflict, match="timed out; 1 payment\\(s\\) charged before it failed"):
            remittances.charge_card_remittance(
                uow, company_es.id, rid, gateway=cut, actor=admin, clock=clock, settings=settings
            )
        assert payment_of(uow, visa).status == "paid"
        assert payment_of(uow, poor).status == "not_remitted"  # charged, not recorded
        assert len(sim.state.charges) == 2

        run = remittances.charge_card_remittance(
            uow, company_es.id, rid, gateway=real, actor=admin, clock=clock, settings=settings
        )

    # The gateway saw each payment exactly once: the lost answer was replayed, not recharged.
    assert len(sim.state.charges) == 5
    assert sorted(c.key for c in sim.state.charges.values()) == sorted(
        f"{payment_of(uow, c).end_to_end_id}-R{rid}" for c in ids
    )
    assert [(line.payment_id, line.status, line.gateway_message) for line in run.lines] == [
        (ids[poor], "card_rejected", "Denegada: saldo insuficiente"),
        (ids[old], "card_rejected", "Tarjeta caducada"),
        (ids[old2], "card_rejected", "Tarjeta caducada"),
        (ids[master], "paid", "Autorizada"),
    ]
    assert (run.paid, run.rejected, run.expired) == (1, 3, 2)
    assert run.remittance.state == "sent"
    assert (run.remittance.transaction_count, str(run.remittance.control_sum)) == (5, "52.00")

    paid = payment_of(uow, visa)
    key = f"{paid.end_to_end_id}-R{rid}"
    assert (paid.status, paid.gateway_reference, paid.gateway_message) == (
        "paid",
        sim_reference(key),
        "Autorizada",
    )
    assert paid.paid_at is not None
    rejected = payment_of(uow, poor)
    assert (rejected.status, rejected.gateway_message) == (
        "card_rejected",
        "Denegada: saldo insuficiente",
    )
    with uow:
        ended = {
            c.id: (c.ends_on, c.ended_reason)
            for c in uow.session.scalars(select(Commitment).order_by(Commitment.id))
        }
    # Ended today (end dates are inclusive: the daily job clears `active` tomorrow).
    assert ended[old] == (date(2026, 3, 2), "card expired (Tarjeta caducada)")
    assert ended[old2] == (date(2026, 3, 2), "card expired (Tarjeta caducada)")
    assert ended[visa] == (None, None)

    # The responsible user and (for the one without) the company's address were told.
    assert sorted(m.rcpt_tos for m in smtp_server.messages) == [
        ("avisos@ong.example",),
        ("responsable@ong.example",),
    ]
    mail = next(m for m in smtp_server.messages if m.rcpt_tos == ("responsable@ong.example",))
    assert mail.message["Subject"] == f"Recaudo ong: compromiso {old} finalizado"
    body = mail.message.get_body()
    assert body is not None
    content = body.get_content()
    assert f"El compromiso {old} (Cuota con tarjeta) de Carla Gómez ha finalizado." in content
    assert "Motivo: card expired (Tarjeta caducada)" in content

    # Charged: a re-run is refused and charges nothing.
    with HttpCardGateway(sim.url, SIM_KEY) as real, pytest.raises(Conflict, match="already"):
        remittances.charge_card_remittance(
            uow, company_es.id, rid, gateway=real, actor=admin, clock=clock, settings=settings
        )
    assert len(sim.state.charges) == 5


def test_card_remittance_without_a_card_is_refused_and_a_missing_address_is_an_incident(
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    settings: Settings,
    sim: SimulatorServer,
) -> None:
    b = books(uow, company_es, clock)
    expired = commit_to(
        uow, company_es, b.ana, "5.00", clock, admin, method="card", card_token="tok_expired_x"
    )
    rid = new_remittance(uow, b, admin, clock, kind="card")
    remittances.add_payments(uow, company_es.id, rid, PaymentFilter(), actor=admin, clock=clock)
    with uow:
        row = uow.session.get(Commitment, expired)
        assert row is not None
        row.card_token = None
        uow.commit()
    with HttpCardGateway(sim.url, SIM_KEY) as gateway:
        with pytest.raises(RemittanceInvalid, match="1 blocking error"):
            remittances.charge_card_remittance(
                uow, company_es.id, rid, gateway=gateway, actor=admin, clock=clock
            )
        assert not sim.state.charges
        with uow:
            view = remittances.get_remittance(uow, company_es.id, rid)
        assert (view.state, [e["code"] for e in view.errors]) == ("open", ["card_missing"])
        with uow:
            row = uow.session.get(Commitment, expired)
            assert row is not None
            row.card_token = "tok_expired_x"
            uow.commit()
        # No responsible e-mail, no company address, no mail target: an incident says so.
        run = remittances.charge_card_remittance(
            uow, company_es.id, rid, gateway=gateway, actor=admin, clock=clock, settings=settings
        )
    assert [line.commitment_ended for line in run.lines] == [True]
    with uow:
        causes = uow.session.scalars(select(Incident.cause)).all()
    assert causes == [
        f"commitment notice not sent: commitment {expired}: card expired (Tarjeta caducada): "
        "no responsible e-mail nor notify_email to tell"
    ]


def test_simulator_api(sim: SimulatorServer) -> None:
    body = {"card_token": "tok_visa", "amount_minor": 1250, "currency": "EUR"}
    with httpx.Client(base_url=sim.url) as client:
        assert client.post("/v1/charges", json=body).status_code == 401
        auth = {"Authorization": f"Bearer {SIM_KEY}"}
        assert client.post("/v1/charges", json=body, headers=auth).json() == {
            "error": "the Idempotency-Key header is required (1-100 chars)"
        }
        first = client.post("/v1/charges", json=body, headers={**auth, "Idempotency-Key": "k1"})
        assert first.json() == {
            "id": sim_reference("k1"),
            "status": "approved",
            "message": "Autorizada",
            "amount_minor": 1250,
            "currency": "EUR",
            "replayed": False,
        }
        again = client.post("/v1/charges", json=body, headers={**auth, "Idempotency-Key": "k1"})
        assert again.json() == {**first.json(), "replayed": True}
        other = client.post(
            "/v1/charges",
            json={**body, "amount_minor": 99},
            headers={**auth, "Idempotency-Key": "k1"},
        )
        assert (other.status_code, other.json()) == (
            409,
            {"error": "this Idempotency-Key was used for a different charge"},
        )
        bad = client.post(
            "/v1/charges",
            json={**body, "amount_minor": 0},
            headers={**auth, "Idempotency-Key": "k2"},
        )
        assert (bad.status_code, bad.json()) == (
            422,
            {"error": "amount_minor must be a positive integer"},
        )
        listed = client.get("/v1/charges", headers=auth).json()
        assert [(c["idempotency_key"], c["status"]) for c in listed] == [("k1", "approved")]

    with HttpCardGateway(sim.url, SIM_KEY) as gateway:
        declined = gateway.charge(ChargeRequest("k3", "tok_decline_x", 100, "EUR", "x"))
        assert declined == ChargeResult(
            ChargeOutcome.DECLINED, sim_reference("k3"), "Denegada por el emisor"
        )
        unknown = gateway.charge(ChargeRequest("k4", "4111111111111111", 100, "EUR", "x"))
        assert (unknown.outcome, unknown.message) == (ChargeOutcome.DECLINED, "Tarjeta desconocida")
    with (
        HttpCardGateway(sim.url, "wrong") as gateway,
        pytest.raises(CardGatewayError, match="answered 401: missing or wrong API key"),
    ):
        gateway.charge(ChargeRequest("k5", "tok_visa", 100, "EUR", "x"))


def test_an_expired_card_with_two_payments_ends_the_commitment_once(
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    settings: Settings,
    sim: SimulatorServer,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    b = books(uow, company_es, clock)
    mail_target(uow, company_es, smtp_server, settings, admin, clock)
    old = commit_to(
        uow, company_es, b.ana, "9.00", clock, admin, method="card", card_token="tok_expired_a",
        responsible_email="resp@ong.example", first=date(2026, 2, 1),
    )  # fmt: skip
    rid = new_remittance(uow, b, admin, clock, kind="card")
    added = remittances.add_payments(
        uow, company_es.id, rid, PaymentFilter(), actor=admin, clock=clock
    )
    assert added.added == 2  # February and March
    with HttpCardGateway(sim.url, SIM_KEY) as gateway:
        run = remittances.charge_card_remittance(
            uow, company_es.id, rid, gateway=gateway, actor=admin, clock=clock, settings=settings
        )
    assert [(line.status, line.commitment_ended) for line in run.lines] == [
        ("card_rejected", True),
        ("card_rejected", True),
    ]
    assert len(smtp_server.messages) == 1
    with uow:
        ended = uow.session.scalars(
            select(AuditEvent.entity_id).where(AuditEvent.action == "commitment.ended")
        ).all()
    assert ended == [str(old)]


def test_gateway_adapter_failures_are_card_gateway_errors() -> None:
    request = ChargeRequest("k", "tok_visa", 100, "EUR", "x")

    def answer(status: int, body: bytes) -> HttpCardGateway:
        transport = httpx.MockTransport(lambda _r: httpx.Response(status, content=body))
        return HttpCardGateway("http://gateway.test", "key", transport=transport)

    with (
        answer(500, b"boom") as gateway,
        pytest.raises(CardGatewayError, match=r"^the card gateway answered 500: boom$"),
    ):
        gateway.charge(request)
    with (
        answer(200, b'{"status": "maybe"}') as gateway,
        pytest.raises(
            CardGatewayError, match=r"^the card gateway's answer is not a charge result$"
        ),
    ):
        gateway.charge(request)
    with (
        answer(200, b"not json") as gateway,
        pytest.raises(CardGatewayError, match="not a charge result"),
    ):
        gateway.charge(request)

    def refuse(_r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with (
        HttpCardGateway("http://gateway.test", transport=httpx.MockTransport(refuse)) as gateway,
        pytest.raises(
            CardGatewayError,
            match=r"^the card gateway http://gateway\.test could not be reached: ConnectError$",
        ),
    ):
        gateway.charge(request)

    def slow(_r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with (
        HttpCardGateway("http://gateway.test", transport=httpx.MockTransport(slow)) as gateway,
        pytest.raises(CardGatewayError, match="timed out"),
    ):
        gateway.charge(request)
    with pytest.raises(Conflict, match="no card gateway is configured"):
        card_gateway.from_settings(Settings(_env_file=None))
