"""Remittances on both backends: commitments → remittance → validation → pain.008/pain.001
file (XSD-valid) → sent → paid; FRST then RCUR; OOFF; every blocking rule; bulk adds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import func, select, update

from recaudo.adapters.db.tables import (
    AuditEvent,
    CommitmentPayment,
    Company,
    CreditorAccount,
    Customer,
    Mandate,
    OutboxEvent,
    Remittance,
)
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.formats import sepa_write
from recaudo.services import audit, commitments, remittances, storage
from recaudo.services.commitments import NewCommitment
from recaudo.services.context import Actor, Role
from recaudo.services.remittances import NewRemittance, PaymentFilter, RemittanceInvalid
from tests.conftest import FrozenClock
from tests.integration.helpers import add_customer

CREDITOR_ID = "ES77000B85626240"
CREDITOR_IBAN = "ES9121000418450200051332"
IBAN_A = "ES7921000813610123456789"
IBAN_B = "ES4721009999161234567890"
IBAN_C = "ES1000492352082414205416"
BAD_IBAN = "ES0921009999161234567890"  # wrong check digits (SOURCES.md)
BAD_CREDITOR_ID = "ES29000G12345678"  # wrong AT-02 check digits (SOURCES.md)
MARCH = date(2026, 3, 1)
CHARGE = date(2026, 3, 6)  # a Friday; "today" is Monday 2 March 2026
PAIN008 = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"


@dataclass
class Books:
    """A Spanish company with a creditor account and three members."""

    company: Company
    account_id: int
    ana: int
    bruno: int
    carla: int


def add_account(uow: UnitOfWork, company: Company, clock: FrozenClock, **values: Any) -> int:
    now = clock()
    row = CreditorAccount(
        company_id=company.id,
        name=values.pop("name", "Cuenta principal"),
        iban=values.pop("iban", CREDITOR_IBAN),
        bic=values.pop("bic", "CAIXESBBXXX"),
        creditor_identifier=values.pop("creditor_identifier", CREDITOR_ID),
        creditor_name=values.pop("creditor_name", "Fundacion Ejemplo"),
        pain008_version=values.pop("pain008_version", "pain.008.001.08"),
        pain001_version=values.pop("pain001_version", "pain.001.001.09"),
        include_bic=values.pop("include_bic", False),
        lead_days=values.pop("lead_days", 2),
        street=values.pop("street", "Calle Mayor 1"),
        town=values.pop("town", "Madrid"),
        postcode=values.pop("postcode", "28013"),
        country=values.pop("country", "ES"),
        active=True,
        created_at=now,
        updated_at=now,
    )
    assert not values, values
    with uow:
        uow.session.add(row)
        uow.commit()
    return row.id


def books(uow: UnitOfWork, company: Company, clock: FrozenClock) -> Books:
    account = add_account(uow, company, clock)
    ana = add_customer(uow, company, "12345678Z", "Ana Núñez Peña", clock)
    bruno = add_customer(uow, company, "11111111H", "Bruno Díaz", clock)
    carla = add_customer(uow, company, "22222222J", "Carla Gómez", clock)
    return Books(company, account, ana.id, bruno.id, carla.id)


def commit_to(
    uow: UnitOfWork,
    company: Company,
    customer_id: int,
    amount: str,
    clock: FrozenClock,
    admin: Actor,
    *,
    method: str = "direct_debit",
    periodicity: str = "monthly",
    iban: str | None = IBAN_A,
    bic: str | None = None,
    concept: str = "Cuota de socio",
    direction: str = "income",
    card_token: str | None = None,
    responsible_email: str | None = None,
    scheme: str = "CORE",
    first: date = MARCH,
) -> int:
    view = commitments.create_commitment(
        uow,
        company.id,
        NewCommitment(
            payer_customer_id=customer_id,
            kind="fee" if direction == "income" else "services",
            method=method,
            periodicity=periodicity,
            amount=amount,
            first_payment_on=first,
            concept=concept,
            direction=direction,
            iban=iban if method in ("direct_debit", "transfer_issued") else None,
            bic=bic,
            card_token=card_token,
            card_expiry="2030-12" if card_token else None,
            responsible_email=responsible_email,
            mandate_signed_on=date(2026, 2, 1) if method == "direct_debit" else None,
            mandate_scheme=scheme,
        ),
        actor=admin,
        clock=clock,
    )
    return view.id


def snap(row: CommitmentPayment) -> Any:
    """The payment's columns, readable after its unit of work has closed."""
    return SimpleNamespace(**{c.key: getattr(row, c.key) for c in CommitmentPayment.__table__.c})


def payments_of(uow: UnitOfWork, remittance_id: int | None = None) -> list[Any]:
    with uow:
        stmt = select(CommitmentPayment).order_by(CommitmentPayment.id)
        if remittance_id is not None:
            stmt = stmt.where(CommitmentPayment.remittance_id == remittance_id)
        return [snap(p) for p in uow.session.scalars(stmt)]


def payment_of(uow: UnitOfWork, commitment_id: int) -> Any:
    """The commitment's latest payment."""
    with uow:
        row = uow.session.scalars(
            select(CommitmentPayment)
            .where(CommitmentPayment.commitment_id == commitment_id)
            .order_by(CommitmentPayment.period_start.desc())
        ).first()
        assert row is not None
        return snap(row)


def new_remittance(
    uow: UnitOfWork,
    b: Books,
    admin: Actor,
    clock: FrozenClock,
    *,
    kind: str = "direct_debit",
    charge: date = CHARGE,
    name: str = "Cuotas marzo",
    account_id: int | None = None,
) -> int:
    view = remittances.create_remittance(
        uow,
        b.company.id,
        NewRemittance(name, kind, charge, account_id or b.account_id),
        actor=admin,
        clock=clock,
    )
    return view.id


def stored_xml(tmp_path: Path, uow: UnitOfWork, remittance_id: int) -> bytes:
    with uow:
        row = uow.session.get(Remittance, remittance_id)
        assert row is not None and row.storage_path is not None
        return storage.read_bytes(tmp_path, row.storage_path)


def remittance_view(uow: UnitOfWork, company_id: int, rid: int) -> remittances.RemittanceView:
    with uow:
        return remittances.get_remittance(uow, company_id, rid)


def texts(doc: etree._Element, path: str, ns: str = PAIN008) -> list[str]:
    return [e.text or "" for e in doc.iterfind(path, {"p": ns})]


# --------------------------------------------------------------------------- the full flow


def test_direct_debit_flow_frst_ooff_then_rcur(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    b = books(uow, company_es, clock)
    monthly_a = commit_to(uow, company_es, b.ana, "10.00", clock, admin, iban=IBAN_A)
    monthly_b = commit_to(uow, company_es, b.bruno, "25.50", clock, admin, iban=IBAN_B)
    one_off = commit_to(
        uow, company_es, b.carla, "100.00", clock, admin, iban=IBAN_C, periodicity="one_off",
        concept="Donativo campaña invierno",
    )  # fmt: skip
    rid = new_remittance(uow, b, admin, clock)

    added = remittances.add_payments(
        uow, company_es.id, rid, PaymentFilter(due_month="2026-03"), actor=admin, clock=clock
    )
    assert added.added == 3
    assert (added.remittance.payment_count, added.remittance.payments_total) == (
        3,
        Decimal("135.50"),
    )

    report = remittances.validate_remittance(uow, company_es.id, rid, actor=admin, clock=clock)
    assert report.ok and report.error_count == 0
    assert [(w.code, w.payment_id) for w in report.warnings] == [("debtor_without_address", None)]
    assert report.remittance.warnings == [
        {
            "severity": "warning",
            "code": "debtor_without_address",
            "message": "3 debtor(s) have no postal address: the file carries none (banks "
            "outside the EEA need it)",
            "payment_id": None,
        }
    ]

    result = remittances.generate_remittance(
        uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    view = result.remittance
    assert (result.transaction_count, result.control_sum, result.groups) == (
        3,
        Decimal("135.50"),
        2,
    )
    assert view.state == "generated"
    assert view.message_id == f"RCD-{rid}-20260302130000"
    assert view.file_version == "pain.008.001.08"
    assert view.file_name == f"{view.message_id}.xml"
    assert (view.transaction_count, view.control_sum) == (3, Decimal("135.50"))

    data = stored_xml(tmp_path, uow, rid)
    assert storage.sha256_of(data) == view.sha256
    assert result.size_bytes == len(data)
    sepa_write.validate_xml(data, "pain.008.001.08")
    doc = etree.fromstring(data)
    assert texts(doc, ".//p:GrpHdr/p:MsgId") == [view.message_id]
    assert texts(doc, ".//p:GrpHdr/p:NbOfTxs") == ["3"]
    assert texts(doc, ".//p:GrpHdr/p:CtrlSum") == ["135.50"]
    assert texts(doc, ".//p:PmtInf/p:PmtTpInf/p:SeqTp") == ["FRST", "OOFF"]
    assert texts(doc, ".//p:PmtInf/p:NbOfTxs") == ["2", "1"]
    assert texts(doc, ".//p:PmtInf/p:CtrlSum") == ["35.50", "100.00"]
    assert texts(doc, ".//p:PmtInf/p:ReqdColltnDt") == ["2026-03-06", "2026-03-06"]
    assert texts(doc, ".//p:PmtInf/p:PmtTpInf/p:LclInstrm/p:Cd") == ["CORE", "CORE"]
    assert texts(doc, ".//p:DrctDbtTxInf/p:Dbtr/p:Nm") == [
        "Ana Nunez Pena",
        "Bruno Diaz",
        "Carla Gomez",
    ]
    assert texts(doc, ".//p:DrctDbtTxInf/p:RmtInf/p:Ustrd") == [
        "Cuota de socio",
        "Cuota de socio",
        "Donativo campana invierno",
    ]
    assert texts(doc, ".//p:CdtrSchmeId//p:Othr/p:Id") == [CREDITOR_ID, CREDITOR_ID]

    paid_a, paid_b, paid_c = (payment_of(uow, c) for c in (monthly_a, monthly_b, one_off))
    assert [(p.status, p.sequence_type) for p in (paid_a, paid_b, paid_c)] == [
        ("remitted", "FRST"),
        ("remitted", "FRST"),
        ("remitted", "OOFF"),
    ]
    assert texts(doc, ".//p:DrctDbtTxInf/p:PmtId/p:EndToEndId") == [
        paid_a.end_to_end_id,
        paid_b.end_to_end_id,
        paid_c.end_to_end_id,
    ]
    with uow:
        audit_rows = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.entity_type == "remittance", AuditEvent.entity_id == str(rid)
            )
        ).all()
        # One audit row for the bulk move to remitted, none per payment.
        generated = [a for a in audit_rows if a.action == "remittance.generated"]
        assert len(generated) == 1 and generated[0].after is not None
        assert generated[0].after["payments_remitted"] == 3

    # A generated remittance no longer changes.
    with pytest.raises(Conflict, match="only open remittances change"):
        remittances.add_payments(uow, company_es.id, rid, PaymentFilter(), actor=admin, clock=clock)

    sent = remittances.mark_sent(uow, company_es.id, rid, actor=admin, clock=clock)
    assert sent.state == "sent" and sent.sent_at is not None
    assert {p.status for p in payments_of(uow, rid)} == {"paid"}
    with uow:
        done = {
            c: flag
            for c, flag in uow.session.execute(
                select(Mandate.commitment_id, Mandate.first_collection_done)
            )
        }
    assert done == {monthly_a: True, monthly_b: True, one_off: True}
    with pytest.raises(Conflict, match="only a generated one is sent"):
        remittances.mark_sent(uow, company_es.id, rid, actor=admin, clock=clock)

    # April: the job generates the next payments; the same mandates are now RCUR.
    clock.advance(days=30)  # 1 April 2026
    commitments.generate_payments(uow, company_es.id, clock=clock, actor=admin)
    april = new_remittance(uow, b, admin, clock, charge=date(2026, 4, 10), name="Cuotas abril")
    bulk = remittances.add_payments(
        uow, company_es.id, april, PaymentFilter(status="not_remitted"), actor=admin, clock=clock
    )
    assert bulk.added == 2  # the one-off commitment has no April payment
    second = remittances.generate_remittance(
        uow, company_es.id, april, data_dir=tmp_path, actor=admin, clock=clock
    )
    april_doc = etree.fromstring(stored_xml(tmp_path, uow, april))
    assert texts(april_doc, ".//p:PmtInf/p:PmtTpInf/p:SeqTp") == ["RCUR"]
    assert texts(april_doc, ".//p:GrpHdr/p:CtrlSum") == ["35.50"]
    assert second.remittance.message_id != view.message_id
    assert [p.sequence_type for p in payments_of(uow, april)] == ["RCUR", "RCUR"]


def test_a_mandates_catch_up_months_in_one_file_are_one_frst_then_rcur(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    """Created on 2 March with a first payment in January: three payments of one mandate
    go in one remittance; only the earliest is its first collection."""
    b = books(uow, company_es, clock)
    ana = commit_to(uow, company_es, b.ana, "20.00", clock, admin, first=date(2026, 1, 15))
    bruno = commit_to(uow, company_es, b.bruno, "15.50", clock, admin, iban=IBAN_B)
    rid = new_remittance(uow, b, admin, clock)
    added = remittances.add_payments(
        uow, company_es.id, rid, PaymentFilter(status="not_remitted"), actor=admin, clock=clock
    )
    assert added.added == 4
    remittances.generate_remittance(
        uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    doc = etree.fromstring(stored_xml(tmp_path, uow, rid))
    assert texts(doc, ".//p:PmtInf/p:PmtTpInf/p:SeqTp") == ["FRST", "RCUR"]
    assert texts(doc, ".//p:PmtInf/p:NbOfTxs") == ["2", "2"]
    assert texts(doc, ".//p:PmtInf/p:CtrlSum") == ["35.50", "40.00"]
    with uow:
        rows = uow.session.execute(
            select(
                CommitmentPayment.commitment_id,
                CommitmentPayment.due_on,
                CommitmentPayment.sequence_type,
            ).order_by(CommitmentPayment.commitment_id, CommitmentPayment.due_on)
        ).all()
    assert [tuple(r) for r in rows] == [
        (ana, date(2026, 1, 15), "FRST"),
        (ana, date(2026, 2, 15), "RCUR"),
        (ana, date(2026, 3, 15), "RCUR"),
        (bruno, date(2026, 3, 1), "FRST"),
    ]

    # Sent: one event for the whole file tells the company's system (not one per payment).
    clock.advance(hours=1)
    sent = remittances.mark_sent(uow, company_es.id, rid, actor=admin, clock=clock)
    with uow:
        events = uow.session.execute(
            select(OutboxEvent.event_type, OutboxEvent.payload).where(
                OutboxEvent.event_type == "remittance.sent"
            )
        ).all()
    assert [tuple(e) for e in events] == [
        (
            "remittance.sent",
            {
                "remittance_id": rid,
                "name": sent.name,
                "kind": "direct_debit",
                "message_id": sent.message_id,
                "charge_date": "2026-03-06",
                "transaction_count": 4,
                "control_sum": "75.50",
                "currency": "EUR",
                "payments_paid": 4,
                "sent_at": sent.sent_at.isoformat() if sent.sent_at else None,
            },
        )
    ]


def test_b2b_mandates_and_pain008_001_02(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    b = books(uow, company_es, clock)
    with uow:
        uow.session.execute(
            update(CreditorAccount)
            .where(CreditorAccount.id == b.account_id)
            .values(pain008_version="pain.008.001.02", include_bic=True)
        )
        uow.commit()
    commit_to(uow, company_es, b.ana, "10.00", clock, admin, iban=IBAN_A, bic="CAIXESBBXXX")
    commit_to(uow, company_es, b.bruno, "20.00", clock, admin, iban=IBAN_B, scheme="B2B")
    rid = new_remittance(uow, b, admin, clock)
    remittances.add_payments(uow, company_es.id, rid, PaymentFilter(), actor=admin, clock=clock)
    result = remittances.generate_remittance(
        uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    assert result.remittance.file_version == "pain.008.001.02"
    data = stored_xml(tmp_path, uow, rid)
    sepa_write.validate_xml(data, "pain.008.001.02")
    ns = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"
    doc = etree.fromstring(data)
    assert texts(doc, ".//p:PmtInf/p:PmtTpInf/p:LclInstrm/p:Cd", ns) == ["B2B", "CORE"]
    assert texts(doc, ".//p:PmtInf/p:NbOfTxs", ns) == ["1", "1"]
    assert texts(doc, ".//p:DrctDbtTxInf/p:DbtrAgt/p:FinInstnId/p:BIC", ns) == ["CAIXESBBXXX"]


# --------------------------------------------------------------------------- validation


def test_every_blocking_rule_stops_generation(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor, tmp_path: Path
) -> None:
    b = books(uow, company_es, clock)
    ok = commit_to(uow, company_es, b.ana, "10.00", clock, admin, iban=IBAN_A)
    bad_iban = commit_to(uow, company_es, b.bruno, "11.00", clock, admin, iban=IBAN_B)
    no_mandate = commit_to(uow, company_es, b.carla, "12.00", clock, admin, iban=IBAN_C)
    zero = commit_to(uow, company_es, b.ana, "13.00", clock, admin, iban=IBAN_A, concept="Zero")
    emoji = add_customer(uow, company_es, "33333333P", "Dani 😀 Ruiz", clock)
    bad_name = commit_to(uow, company_es, emoji.id, "14.00", clock, admin, iban=IBAN_B)
    mismatch = commit_to(
        uow, company_es, b.bruno, "15.00", clock, admin, iban=IBAN_A, bic="BSCHESMMXXX",
        concept="Otra cuota",
    )  # fmt: skip
    with uow:
        s = uow.session
        s.execute(
            update(CommitmentPayment)
            .where(CommitmentPayment.commitment_id == bad_iban)
            .values(iban=BAD_IBAN)
        )
        s.execute(
            update(CommitmentPayment)
            .where(CommitmentPayment.commitment_id == no_mandate)
            .values(mandate_id=None)
        )
        s.execute(
            update(CommitmentPayment)
            .where(CommitmentPayment.commitment_id == zero)
            .values(amount_minor=0)
        )
        s.execute(
            update(CreditorAccount)
            .where(CreditorAccount.id == b.account_id)
            .values(creditor_identifier=BAD_CREDITOR_ID)
        )
        uow.commit()
    ids = {c: payment_of(uow, c).id for c in (ok, bad_iban, no_mandate, zero, bad_name, mismatch)}
    # Charge date: tomorrow, but the bank wants two TARGET2 business days.
    rid = new_remittance(uow, b, admin, clock, charge=date(2026, 3, 3))
    assert (
        remittances.add_payments(
            uow, company_es.id, rid, PaymentFilter(), actor=admin, clock=clock
        ).added
        == 6
    )

    report = remittances.validate_remittance(uow, company_es.id, rid, actor=admin, clock=clock)
    assert not report.ok
    assert [(e.code, e.payment_id) for e in report.errors] == [
        ("invalid_creditor_identifier", None),
        ("charge_date_too_early", None),
        ("invalid_iban", ids[bad_iban]),
        ("mandate_missing", ids[no_mandate]),
        ("amount_not_positive", ids[zero]),
        ("invalid_name", ids[bad_name]),
    ]
    assert report.errors[0].message == (
        "creditor identifier 'ES29000G12345678' has a wrong check digit (AT-02, ISO 7064 "
        "MOD 97-10): 29 instead of 26"
    )
    assert report.errors[1].message == (
        "charge date 2026-03-03 is too early: with 2 TARGET2 business day(s) of lead time "
        "the earliest is 2026-03-04"
    )
    assert report.errors[4].message == f"payment {ids[zero]}: the amount 0.00 is not above zero"
    assert [(w.code, w.payment_id) for w in report.warnings] == [
        ("bic_mismatch", ids[mismatch]),
        ("debtor_without_address", None),
    ]
    stored = remittance_view(uow, company_es.id, rid)
    assert [e["code"] for e in stored.errors] == [e.code for e in report.errors]
    assert [w["code"] for w in stored.warnings] == ["bic_mismatch", "debtor_without_address"]

    with pytest.raises(RemittanceInvalid, match="has 6 blocking error") as refused:
        remittances.generate_remittance(
            uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
        )
    assert refused.value.details["error_count"] == 6
    after = remittance_view(uow, company_es.id, rid)
    assert (after.state, after.message_id, after.sha256) == ("open", None, None)
    assert {p.status for p in payments_of(uow, rid)} == {"not_remitted"}
    assert {p.sequence_type for p in payments_of(uow, rid)} == {None}
    assert not list((tmp_path / "files").glob("remittances/**/*.xml"))

    # A missing creditor identifier is an error of its own.
    with uow:
        uow.session.execute(
            update(CreditorAccount)
            .where(CreditorAccount.id == b.account_id)
            .values(creditor_identifier="")
        )
        uow.commit()
    again = remittances.validate_remittance(uow, company_es.id, rid, actor=admin, clock=clock)
    assert again.errors[0].code == "creditor_identifier_missing"


def test_a_failure_after_writing_leaves_everything_as_it_was(
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = books(uow, company_es, clock)
    commit_to(uow, company_es, b.ana, "10.00", clock, admin)
    rid = new_remittance(uow, b, admin, clock)
    remittances.add_payments(uow, company_es.id, rid, PaymentFilter(), actor=admin, clock=clock)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(audit, "record", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        remittances.generate_remittance(
            uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
        )
    monkeypatch.undo()
    view = remittance_view(uow, company_es.id, rid)
    assert (view.state, view.message_id) == ("open", None)
    assert [(p.status, p.sequence_type) for p in payments_of(uow, rid)] == [("not_remitted", None)]
    # It can be generated once the problem is gone.
    done = remittances.generate_remittance(
        uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    assert done.remittance.state == "generated"


# --------------------------------------------------------------------------- adding, removing


def test_add_one_add_by_filter_and_remove(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor
) -> None:
    b = books(uow, company_es, clock)
    a = commit_to(uow, company_es, b.ana, "10.00", clock, admin, first=date(2026, 2, 1))
    card = commit_to(
        uow, company_es, b.bruno, "5.00", clock, admin, method="card", card_token="tok_visa"
    )
    feb, mar = (
        sorted(payments_of_commitment(uow, a), key=lambda p: p.period_start)[0].id,
        payment_of(uow, a).id,
    )
    first = new_remittance(uow, b, admin, clock)
    second = new_remittance(uow, b, admin, clock, name="Otra")

    only_feb = remittances.add_payments(
        uow, company_es.id, first, PaymentFilter(due_month="2026-02"), actor=admin, clock=clock
    )
    assert only_feb.added == 1
    assert [p.id for p in payments_of(uow, first)] == [feb]
    # Already in an open remittance: neither the filter nor the one-by-one add takes it.
    assert (
        remittances.add_payments(
            uow, company_es.id, second, PaymentFilter(), actor=admin, clock=clock
        ).added
        == 1
    )
    with pytest.raises(Conflict, match=f"payment {feb} is already in remittance {first}"):
        remittances.add_payment(uow, company_es.id, second, feb, actor=admin, clock=clock)
    with pytest.raises(Conflict, match="is paid by card; a direct_debit remittance takes"):
        remittances.add_payment(
            uow, company_es.id, first, payment_of(uow, card).id, actor=admin, clock=clock
        )
    with pytest.raises(ValidationFailed, match="takes direct_debit payments, not card"):
        remittances.add_payments(
            uow, company_es.id, first, PaymentFilter(method="card"), actor=admin, clock=clock
        )
    with pytest.raises(ValidationFailed, match="not a month"):
        remittances.add_payments(
            uow, company_es.id, first, PaymentFilter(due_month="2026-13"), actor=admin, clock=clock
        )

    removed = remittances.remove_payment(uow, company_es.id, second, mar, actor=admin, clock=clock)
    assert removed.payment_count == 0
    added = remittances.add_payment(uow, company_es.id, first, mar, actor=admin, clock=clock)
    assert (added.payment_count, added.payments_total) == (2, Decimal("20.00"))
    with pytest.raises(NotFound):
        remittances.remove_payment(uow, company_es.id, second, mar, actor=admin, clock=clock)

    auditor = Actor("test:auditor", Role.AUDITOR)
    with pytest.raises(Exception, match="may not"):
        remittances.add_payment(uow, company_es.id, first, mar, actor=auditor, clock=clock)
    # Another company sees nothing.
    with uow, pytest.raises(NotFound):
        remittances.get_remittance(uow, company_es.id + 1000, first)
    with uow:
        listed = remittances.list_remittances(uow, company_es.id, state="open")
    assert [r.id for r in listed.items] == [second, first]


def payments_of_commitment(uow: UnitOfWork, commitment_id: int) -> list[Any]:
    with uow:
        return [
            snap(p)
            for p in uow.session.scalars(
                select(CommitmentPayment).where(CommitmentPayment.commitment_id == commitment_id)
            )
        ]


# --------------------------------------------------------------------------- transfers


@pytest.mark.parametrize("version", ["pain.001.001.09", "pain.001.001.03"])
def test_transfer_remittance_pain001(
    version: str,
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
) -> None:
    b = books(uow, company_es, clock)
    with uow:
        uow.session.execute(
            update(CreditorAccount)
            .where(CreditorAccount.id == b.account_id)
            .values(pain001_version=version)
        )
        uow.commit()
    grant = commit_to(
        uow, company_es, b.carla, "250.00", clock, admin, method="transfer_issued",
        direction="expense", iban=IBAN_C, concept="Beca comedor", periodicity="one_off",
    )  # fmt: skip
    rid = new_remittance(uow, b, admin, clock, kind="transfer", charge=date(2026, 3, 2))
    assert (
        remittances.add_payments(
            uow, company_es.id, rid, PaymentFilter(status="pending"), actor=admin, clock=clock
        ).added
        == 1
    )
    result = remittances.generate_remittance(
        uow, company_es.id, rid, data_dir=tmp_path, actor=admin, clock=clock
    )
    assert result.remittance.file_version == version
    data = stored_xml(tmp_path, uow, rid)
    sepa_write.validate_xml(data, version)
    ns = f"urn:iso:std:iso:20022:tech:xsd:{version}"
    doc = etree.fromstring(data)
    assert texts(doc, ".//p:GrpHdr/p:CtrlSum", ns) == ["250.00"]
    assert texts(doc, ".//p:CdtTrfTxInf/p:Cdtr/p:Nm", ns) == ["Carla Gomez"]
    assert texts(doc, ".//p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN", ns) == [IBAN_C]
    assert payment_of(uow, grant).status == "remitted"
    remittances.mark_sent(uow, company_es.id, rid, actor=admin, clock=clock)
    assert payment_of(uow, grant).status == "paid"


def test_remittance_needs_an_active_account_of_the_company(
    uow: UnitOfWork, company_es: Company, clock: FrozenClock, admin: Actor
) -> None:
    b = books(uow, company_es, clock)
    with pytest.raises(ValidationFailed, match="unknown remittance kind"):
        remittances.create_remittance(
            uow, company_es.id, NewRemittance("x", "cheque", CHARGE, b.account_id),
            actor=admin, clock=clock,
        )  # fmt: skip
    with pytest.raises(NotFound, match="no creditor account"):
        remittances.create_remittance(
            uow, company_es.id, NewRemittance("x", "direct_debit", CHARGE, b.account_id + 99),
            actor=admin, clock=clock,
        )  # fmt: skip
    with uow:
        count = uow.session.scalar(select(func.count()).select_from(Remittance))
    assert count == 0
    with uow:
        names = uow.session.scalars(select(Customer.name).order_by(Customer.id)).all()
    assert names[0] == "Ana Núñez Peña"


# --------------------------------------------------------------------------- command line


def test_cli_create_add_validate_generate_download_sent_and_returns_load(
    db_url: str,
    uow: UnitOfWork,
    company_es: Company,
    clock: FrozenClock,
    admin: Actor,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from recaudo.cli import app
    from tests.integration.test_returns import pain002

    runner = CliRunner()
    data_dir = tmp_path / "data"

    def run(*args: str) -> Any:
        env = {"RECAUDO_DATABASE_URL": db_url, "RECAUDO_DATA_DIR": str(data_dir), "COLUMNS": "240"}
        result = runner.invoke(app, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    b = books(uow, company_es, clock)
    first = commit_to(uow, company_es, b.ana, "10.00", clock, admin)
    commit_to(uow, company_es, b.bruno, "5.25", clock, admin, iban=IBAN_B)
    # The command line runs on the real clock: a charge date far enough ahead.
    created = run(
        "remittance", "create", "--company", "ong", "--name", "Cuotas", "--charge-date",
        "2099-03-06", "--account", str(b.account_id),
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    rid = created.stdout.split()[1]
    assert created.stdout == f"Remittance {rid} (direct_debit, charge date 2099-03-06) is open.\n"
    added = run("remittance", "add", rid, "--company", "ong", "--due-month", "2026-03")
    assert added.stdout == f"Added 2 payment(s); remittance {rid} has 2 (15.25 EUR).\n"
    checked = run("remittance", "validate", rid, "--company", "ong")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[-1] == "0 blocking error(s), 1 warning(s)."
    generated = run("remittance", "generate", rid, "--company", "ong")
    assert generated.exit_code == 0, generated.output
    lines = generated.stdout.splitlines()
    assert lines[0].endswith(".xml (pain.008.001.08): 2 transaction(s) in 1 block(s), 15.25 EUR")
    message_id = lines[0].split(".xml")[0]
    target = tmp_path / "out.xml"
    download = run("remittance", "download", rid, "--company", "ong", "-o", str(target))
    assert download.exit_code == 0, download.output
    sepa_write.validate_xml(target.read_bytes(), "pain.008.001.08")
    assert run("remittance", "sent", rid, "--company", "ong").stdout == (
        f"Remittance {rid} sent: 2 payment(s) paid.\n"
    )
    shown = run("remittance", "show", rid, "--company", "ong")
    assert "state:            sent" in shown.stdout
    listing = run("remittance", "list", "--company", "ong", "--state", "sent")
    assert message_id in listing.stdout

    returned = tmp_path / "rechazo.xml"
    p = payment_of(uow, first)
    returned.write_bytes(pain002(message_id, [(p.end_to_end_id, "MD06", "10.00")]))
    loaded = run("returns", "load", str(returned), "--company", "ong")
    assert loaded.exit_code == 0, loaded.output
    assert loaded.stdout.splitlines()[-1].endswith(f"for remittance {rid}: 1 payment(s) returned.")
    assert payment_of(uow, first).refund_requested is True
    again = run("returns", "load", str(returned), "--company", "ong")
    assert again.stdout.startswith("Already loaded as return file")
    file_id = again.stdout.split()[5]
    listed = run("returns", "list", "--company", "ong")
    assert "rechazo.xml" in listed.stdout
    shown = run("returns", "show", file_id, "--company", "ong")
    assert shown.stdout.startswith(
        f"Return file {file_id}: pain.002 RPT-1 (rechazo.xml), remittance {rid}, 1 returned"
    )
    assert "refund_requested" in shown.stdout

    # Errors are one line and a non-zero exit.
    bad = run("remittance", "generate", rid, "--company", "ong")
    assert bad.exit_code == 1
    assert "is generated" not in bad.stdout
    refused = run(
        "remittance", "create", "--company", "ong", "--name", "x", "--charge-date", "2099-13-01",
        "--account", str(b.account_id),
    )  # fmt: skip
    assert refused.exit_code == 2
