"""Loading return files on both backends: pain.002 and camt.054 built from a remittance
Recaudo generated, the bank samples matched to payments, every follow-up, loading twice,
malformed files and files about someone else's remittance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from recaudo.adapters.db.tables import (
    AuditEvent,
    Commitment,
    CommitmentPayment,
    Company,
    Incident,
    Mandate,
    Remittance,
    SepaReturnFile,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.config import Settings
from recaudo.services import remittances, returns
from recaudo.services.context import Actor
from recaudo.services.remittances import PaymentFilter
from recaudo.services.returns import ReturnFileRefused, ReturnItem
from tests.conftest import FrozenClock
from tests.integration.smtp_server import SmtpServer, smtp_server  # noqa: F401
from tests.integration.test_card_remittance import mail_target
from tests.integration.test_remittances import (
    IBAN_A,
    IBAN_B,
    IBAN_C,
    books,
    commit_to,
    new_remittance,
    payment_of,
)

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "sepa_returns"
PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"
CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"


def sample(name: str) -> bytes:
    """A bank sample (../shared/specs/sepa-iso20022/SOURCES.md), copied into the test data:
    the tests run from a clone without ../shared."""
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db_url,
        data_dir=tmp_path / "data",
        delivery_allow_private_targets=True,
    )


@dataclass
class Sent:
    company: Company
    remittance_id: int
    message_id: str
    commitments: list[int]
    payments: list[Any]  # snapshots, in commitment order


def sent_remittance(
    uow: UnitOfWork,
    company: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
    amounts: Sequence[str],
    *,
    email: str | None = None,
) -> Sent:
    """Commitments with these amounts, one direct-debit remittance generated and sent."""
    b = books(uow, company, clock)
    customers = [b.ana, b.bruno, b.carla]
    ibans = [IBAN_A, IBAN_B, IBAN_C]
    made = [
        commit_to(
            uow,
            company,
            customers[n % 3],
            amount,
            clock,
            admin,
            iban=ibans[n % 3],
            responsible_email=email,
            concept=f"Cuota {n + 1}",
        )
        for n, amount in enumerate(amounts)
    ]
    rid = new_remittance(uow, b, admin, clock)
    remittances.add_payments(uow, company.id, rid, PaymentFilter(), actor=admin, clock=clock)
    generated = remittances.generate_remittance(
        uow, company.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    remittances.mark_sent(uow, company.id, rid, actor=admin, clock=clock)
    message_id = generated.remittance.message_id
    assert message_id is not None
    return Sent(company, rid, message_id, made, [payment_of(uow, c) for c in made])


def pain002(message_id: str, rows: Sequence[tuple[str, str, str]], *, msg: str = "RPT-1") -> bytes:
    """A pain.002.001.03 rejecting (end-to-end id, reason code, amount) transactions."""
    txs = "".join(
        f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
        f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>"
        f'<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{amount}</InstdAmt></Amt></OrgnlTxRef>'
        "</TxInfAndSts>"
        for e2e, code, amount in rows
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{PAIN002}"><CstmrPmtStsRpt>'
        f"<GrpHdr><MsgId>{msg}</MsgId><CreDtTm>2026-03-09T10:00:00</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{message_id}</OrgnlMsgId>"
        "<OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId><GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>"
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{message_id}-1</OrgnlPmtInfId>{txs}"
        "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    ).encode()


def camt054(rows: Sequence[tuple[str, str, str]]) -> bytes:
    """A camt.054.001.02 with one returned direct debit entry per (e2e, code, amount)."""
    entries = "".join(
        f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>'
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>IDDT</Cd><SubFmlyCd>UPDD</SubFmlyCd></Fmly>"
        "</Domn></BkTxCd><NtryDtls><TxDtls>"
        f"<Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
        f"<RtrInf><Rsn><Cd>{code}</Cd></Rsn><AddtlInf>/RTYP/RTRN</AddtlInf></RtrInf>"
        "</TxDtls></NtryDtls></Ntry>"
        for e2e, code, amount in rows
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{CAMT054}">'
        "<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>NTF-77</MsgId>"
        "<CreDtTm>2026-03-12T08:00:00</CreDtTm></GrpHdr><Ntfctn><Id>N1</Id>"
        "<CreDtTm>2026-03-12T08:00:00</CreDtTm>"
        f"<Acct><Id><IBAN>{IBAN_A}</IBAN></Id></Acct>{entries}</Ntfctn>"
        "</BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


def state(uow: UnitOfWork) -> dict[str, Any]:
    """Everything a return file may change."""
    with uow:
        s = uow.session
        return {
            "payments": s.execute(
                select(
                    CommitmentPayment.id,
                    CommitmentPayment.status,
                    CommitmentPayment.return_reason_code,
                    CommitmentPayment.return_reason,
                    CommitmentPayment.refund_requested,
                ).order_by(CommitmentPayment.id)
            ).all(),
            "commitments": s.execute(
                select(Commitment.id, Commitment.ends_on, Commitment.ended_reason).order_by(
                    Commitment.id
                )
            ).all(),
            "mandates": s.execute(
                select(Mandate.id, Mandate.status, Mandate.first_collection_done).order_by(
                    Mandate.id
                )
            ).all(),
            "files": s.scalar(select(func.count()).select_from(SepaReturnFile)),
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)),
        }


def item(
    p: Any, code: str | None, reason: str | None, amount: str, outcome: str, status: str
) -> ReturnItem:
    return ReturnItem(p.end_to_end_id, p.id, code, reason, Decimal(amount), "EUR", outcome, status)


def test_pain002_from_our_remittance_every_follow_up_and_loading_twice(
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
    settings: Settings,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    sent = sent_remittance(
        uow, company_es, clock, admin, tmp_path,
        ["10.00", "11.00", "12.00", "13.00", "14.00", "15.00", "16.00"],
        email="socios@ong.example",
    )  # fmt: skip
    mail_target(uow, company_es, smtp_server, settings, admin, clock)
    p = sent.payments
    codes = ["AM04", "MS03", "AC04", "MD01", "MD06", "AC06"]
    rows = [(p[n].end_to_end_id, code, f"{10 + n}.00") for n, code in enumerate(codes)]
    data = pain002(sent.message_id, [*rows, ("SOMEONE-ELSES-1", "AM04", "9.99")])
    clock.advance(days=7)

    load = returns.load_return_file(
        uow, company_es.id, data, "rechazos.xml", actor=admin, clock=clock, settings=settings
    )
    assert load.created
    view = load.file
    assert (view.kind, view.message_id, view.remittance_id, view.returned_count) == (
        "pain.002",
        "RPT-1",
        sent.remittance_id,
        6,
    )
    assert (view.file_name, view.loaded_by) == ("rechazos.xml", admin.label)
    assert view.items == [
        item(p[0], "AM04", "Saldo insuficiente", "10.00", "to_recover", "to_recover"),
        item(
            p[1],
            "MS03",
            "Motivo no especificado por la entidad del deudor",
            "11.00",
            "to_recover",
            "to_recover",
        ),
        item(p[2], "AC04", "Cuenta cancelada", "12.00", "commitment_ended", "unpaid"),
        item(p[3], "MD01", "Mandato no válido o inexistente", "13.00", "mandate_invalid", "unpaid"),
        item(
            p[4],
            "MD06",
            "Devolución solicitada por el deudor (adeudo autorizado)",
            "14.00",
            "refund_requested",
            "unpaid",
        ),
        item(p[5], "AC06", "Cuenta bloqueada", "15.00", "unpaid", "unpaid"),
        ReturnItem(
            "SOMEONE-ELSES-1",
            None,
            "AM04",
            "Saldo insuficiente",
            Decimal("9.99"),
            "EUR",
            "unknown_payment",
            None,
        ),
    ]
    after = {row.id: row for row in state(uow)["payments"]}
    assert [tuple(after[x.id])[1:] for x in p] == [
        ("to_recover", "AM04", "Saldo insuficiente", False),
        ("to_recover", "MS03", "Motivo no especificado por la entidad del deudor", False),
        ("unpaid", "AC04", "Cuenta cancelada", False),
        ("unpaid", "MD01", "Mandato no válido o inexistente", False),
        ("unpaid", "MD06", "Devolución solicitada por el deudor (adeudo autorizado)", True),
        ("unpaid", "AC06", "Cuenta bloqueada", False),
        ("paid", None, None, False),
    ]
    with uow:
        ended = uow.session.get(Commitment, sent.commitments[2])
        assert ended is not None
        assert (ended.ends_on, ended.ended_reason) == (
            date(2026, 3, 9),
            "return AC04: Cuenta cancelada",
        )
        mandates = {
            m.commitment_id: (m.status, m.invalid_reason, m.first_collection_done)
            for m in uow.session.scalars(select(Mandate))
        }
    assert mandates[sent.commitments[3]] == (
        "invalid",
        "return MD01: Mandato no válido o inexistente",
        False,
    )
    # Returned first collections: the next one is a first collection again.
    assert [mandates[c][2] for c in sent.commitments] == [False] * 6 + [True]
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("socios@ong.example",)
    assert mail.message["Subject"] == f"Recaudo ong: compromiso {sent.commitments[2]} finalizado"

    # The same bytes again: nothing changes, the first result is the answer.
    before = state(uow)
    again = returns.load_return_file(
        uow, company_es.id, data, "otra-vez.xml", actor=admin, clock=clock, settings=settings
    )
    assert not again.created
    assert again.file == view
    assert state(uow) == before
    assert len(smtp_server.messages) == 1

    # The detail and the list read the same.
    with uow:
        assert returns.get_return_file(uow, company_es.id, view.id) == view
        listed = returns.list_return_files(uow, company_es.id)
    assert [(f.id, f.returned_count, f.items) for f in listed.items] == [(view.id, 6, [])]

    # The payments to recover go in a later remittance, which collects them as FRST again.
    later = new_remittance_for(uow, sent, admin, clock)
    bulk = remittances.add_payments(
        uow, company_es.id, later, PaymentFilter(status="to_recover"), actor=admin, clock=clock
    )
    assert bulk.added == 2


def new_remittance_for(uow: UnitOfWork, sent: Sent, admin: Actor, clock: FrozenClock) -> int:
    with uow:
        account_id = uow.session.scalar(
            select(Remittance.creditor_account_id).where(Remittance.id == sent.remittance_id)
        )
    view = remittances.create_remittance(
        uow,
        sent.company.id,
        remittances.NewRemittance("Recobro", "direct_debit", date(2026, 3, 20), account_id or 0),
        actor=admin,
        clock=clock,
    )
    return view.id


def test_camt054_matched_by_end_to_end_ids(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    sent = sent_remittance(uow, company_es, clock, admin, tmp_path, ["20.00", "30.00", "40.00"])
    p = sent.payments
    data = camt054([(p[0].end_to_end_id, "MD02", "20.00"), (p[1].end_to_end_id, "AC01", "30.00")])
    load = returns.load_return_file(uow, company_es.id, data, "camt.xml", actor=admin, clock=clock)
    assert (load.file.kind, load.file.remittance_id, load.file.returned_count) == (
        "camt.054",
        sent.remittance_id,
        2,
    )
    assert [(i.payment_id, i.outcome, i.status) for i in load.file.items] == [
        (p[0].id, "mandate_invalid", "unpaid"),
        (p[1].id, "commitment_ended", "unpaid"),
    ]
    # Nobody to tell about the ended commitment: an incident says so (no e-mail target).
    with uow:
        causes = uow.session.scalars(select(Incident.cause)).all()
    assert causes == [
        f"commitment notice not sent: commitment {sent.commitments[1]}: return AC01: "
        "Identificador de cuenta incorrecto (IBAN no válido o inexistente): no responsible "
        "e-mail nor notify_email to tell"
    ]


def test_group_rejection_returns_every_payment(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    sent = sent_remittance(uow, company_es, clock, admin, tmp_path, ["5.00", "6.00"])
    data = (
        f'<?xml version="1.0"?><Document xmlns="{PAIN002}"><CstmrPmtStsRpt>'
        "<GrpHdr><MsgId>RJ-ALL</MsgId><CreDtTm>2026-03-03T09:00:00</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{sent.message_id}</OrgnlMsgId>"
        "<OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId><GrpSts>RJCT</GrpSts>"
        "<StsRsnInf><Rsn><Cd>MS03</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>"
        "</CstmrPmtStsRpt></Document>"
    ).encode()
    load = returns.load_return_file(uow, company_es.id, data, "rj.xml", actor=admin, clock=clock)
    assert [(i.payment_id, i.reason_code, i.outcome) for i in load.file.items] == [
        (sent.payments[0].id, "MS03", "to_recover"),
        (sent.payments[1].id, "MS03", "to_recover"),
    ]


def match_sample(uow: UnitOfWork, sent: Sent, message_id: str, e2e_ids: Sequence[str]) -> None:
    """Give our payments and remittance the ids a bank sample uses."""
    with uow:
        for payment, e2e in zip(sent.payments, e2e_ids, strict=True):
            uow.session.execute(
                update(CommitmentPayment)
                .where(CommitmentPayment.id == payment.id)
                .values(end_to_end_id=e2e)
            )
        uow.session.execute(
            update(Remittance)
            .where(Remittance.id == sent.remittance_id)
            .values(message_id=message_id)
        )
        uow.commit()


def test_bank_samples_matched_to_payments(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    sent = sent_remittance(uow, company_es, clock, admin, tmp_path, ["100.00"] * 4)
    match_sample(uow, sent, "MSGID12345678912", ["E2EID1", "E2EID2", "E2EID3", "E2EID4"])
    load = returns.load_return_file(
        uow, company_es.id, sample("test-sepa-pain-unpaid.xml"), "oca.xml", actor=admin,
        clock=clock,
    )  # fmt: skip
    assert load.file.remittance_id == sent.remittance_id
    assert [(i.end_to_end_id, i.reason_code, i.outcome, i.status) for i in load.file.items] == [
        ("E2EID1", "AC01", "commitment_ended", "unpaid"),
        ("E2EID2", "MS02", "unpaid", "unpaid"),
        ("E2EID3", "MD06", "refund_requested", "unpaid"),
        ("E2EID4", "AM04", "to_recover", "to_recover"),
    ]

    # The Spanish bank's sample, in a second remittance of the same company.
    caixa = sent_remittance_more(
        uow, sent, clock, admin, tmp_path, ["193.45", "464.28", "277.45", "71.47"]
    )
    ids = [
        "15M/025450120151203",
        "15M/025720120151203",
        "15M/022581120151204",
        "15M/026530120151204",
    ]
    match_sample(uow, caixa, "2015-12-08DEV0801000010G35008770033", ids)
    load = returns.load_return_file(
        uow, company_es.id, sample("LaCaixa_pain00200103_Example2.xml"), "caixa.xml",
        actor=admin, clock=clock,
    )  # fmt: skip
    assert [(i.end_to_end_id, i.reason_code, i.amount, i.outcome) for i in load.file.items] == [
        (ids[0], "AM04", Decimal("193.45"), "to_recover"),
        (ids[1], "AM04", Decimal("464.28"), "to_recover"),
        (ids[2], "AM04", Decimal("277.45"), "to_recover"),
        (ids[3], "MD01", Decimal("71.47"), "mandate_invalid"),
    ]

    # The camt.054 sample (E2EID1 is returned already: not returnable twice).
    camt = returns.load_return_file(
        uow, company_es.id, sample("test-sepa-camt-unpaid.xml"), "camt.xml", actor=admin,
        clock=clock,
    )  # fmt: skip
    assert [(i.end_to_end_id, i.reason_code, i.outcome, i.status) for i in camt.file.items] == [
        ("E2EID1", "AC06", "not_returnable", "unpaid")
    ]
    assert camt.file.returned_count == 0


def sent_remittance_more(
    uow: UnitOfWork, sent: Sent, clock: FrozenClock, admin: Actor, tmp_path: Path,
    amounts: Sequence[str],
) -> Sent:  # fmt: skip
    """A second remittance of the same company (its creditor account and customers)."""
    with uow:
        customer = uow.session.scalar(select(Commitment.payer_customer_id).limit(1))
    made = [
        commit_to(uow, sent.company, customer or 0, a, clock, admin, concept=f"Recibo {n}")
        for n, a in enumerate(amounts)
    ]
    rid = new_remittance_for(uow, sent, admin, clock)
    for c in made:
        remittances.add_payment(
            uow, sent.company.id, rid, payment_of(uow, c).id, actor=admin, clock=clock
        )
    generated = remittances.generate_remittance(
        uow, sent.company.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    assert generated.remittance.message_id is not None
    return Sent(
        sent.company, rid, generated.remittance.message_id, made, [payment_of(uow, c) for c in made]
    )


def test_malformed_or_foreign_files_change_nothing(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    sent_remittance(uow, company_es, clock, admin, tmp_path, ["10.00"])
    before = state(uow)
    with pytest.raises(ReturnFileRefused, match="the return file was refused: ") as bad:
        returns.load_return_file(
            uow, company_es.id, sample("test-sepa-pain-unpaid-invalid.xml"), "x.xml",
            actor=admin, clock=clock,
        )  # fmt: skip
    assert "other.002.001.03" in bad.value.message
    with pytest.raises(ReturnFileRefused, match="the return file was refused: "):
        returns.load_return_file(
            uow, company_es.id, b"<Document><CstmrPmtStsRpt>", "cut.xml", actor=admin, clock=clock
        )
    with pytest.raises(
        ReturnFileRefused,
        match="not about a remittance Recaudo generated: original message id CAVAY1234, and "
        "none of its 1 end-to-end id",
    ):
        returns.load_return_file(
            uow, company_es.id, sample("pain.002.001.03_2.xml"), "y.xml", actor=admin, clock=clock
        )
    assert state(uow) == before


def test_rejected_before_sent_joins_a_later_remittance(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    sent = sent_remittance(uow, company_es, clock, admin, tmp_path, ["10.00"])
    more = sent_remittance_more(uow, sent, clock, admin, tmp_path, ["8.00", "9.00"])
    # `more` is generated, not sent: the bank rejects one of its payments at once.
    p = more.payments[0]
    returns.load_return_file(
        uow, company_es.id, pain002(more.message_id, [(p.end_to_end_id, "AM04", "8.00")]),
        "pronto.xml", actor=admin, clock=clock,
    )  # fmt: skip
    assert payment_of(uow, more.commitments[0]).status == "to_recover"
    later = new_remittance_for(uow, sent, admin, clock)
    bulk = remittances.add_payments(
        uow, company_es.id, later, PaymentFilter(status="to_recover"), actor=admin, clock=clock
    )
    assert (bulk.added, bulk.remittance.payments_total) == (1, Decimal("8.00"))
    # The other payment of `more` is still in it, and is paid when `more` is sent.
    done = remittances.mark_sent(uow, company_es.id, more.remittance_id, actor=admin, clock=clock)
    assert done.payment_count == 1
    assert payment_of(uow, more.commitments[1]).status == "paid"
    assert payment_of(uow, more.commitments[0]).status == "to_recover"
