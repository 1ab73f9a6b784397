"""SEPA writers: XSD-valid output in the four versions, golden bytes, totals, refusals,
streaming, and a cross-check of pain.008 against an independent generator (sepaxml)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from recaudo.domain.sepa import Scheme, SequenceType
from recaudo.formats.sepa_write import (
    PAIN_001_VERSIONS,
    PAIN_008_VERSIONS,
    Account,
    CreditTransferGroup,
    CreditTransferTransaction,
    DirectDebitGroup,
    DirectDebitTransaction,
    MessageHeader,
    PostalAddress,
    SepaSchemaError,
    SepaWriteError,
    WriteSummary,
    format_amount,
    validate_xml,
    write_pain001,
    write_pain008,
)

DATA = Path(__file__).parent.parent / "data" / "sepa"
UPDATE_GOLDEN = os.environ.get("RECAUDO_UPDATE_GOLDEN") == "1"
CREATED = datetime(2026, 11, 22, 9, 30, 15, tzinfo=UTC)

CREDITOR = Account(
    name="Asociación Peña & Hijos",
    iban="ES9121000418450200051332",
    bic="CAIXESBBXXX",
    include_bic=True,
    creditor_identifier="ES77000B85626240",
    address=PostalAddress("ES", "Calle Mayor", "5", "28013", "Madrid"),
)


def _dd_groups() -> list[DirectDebitGroup]:
    """A fixed remittance: first collections, recurrent ones, and a one-off B2B debit."""
    first = [
        DirectDebitTransaction(
            end_to_end_id="RCD000000001220261101",
            amount=Decimal("25.00"),
            mandate_id="RCD-M-000001",
            mandate_signed_on=date(2026, 10, 15),
            debtor_name="José Núñez Ibáñez",
            debtor_iban="ES4721009999161234567890",
            debtor_bic="CAIXESBBXXX",
            debtor_address=PostalAddress("ES", "Calle del Sol", "3", "08001", "Barcelona"),
            remittance_information="Cuota socio noviembre 2026",
        ),
        DirectDebitTransaction(
            end_to_end_id="RCD000000001320261101",
            amount=Decimal("12.5"),
            mandate_id="RCD-M-000002",
            mandate_signed_on=date(2026, 10, 20),
            debtor_name="Ana María O’Connor",
            debtor_iban="NL77ABNA0574908765",
            remittance_information="Cuota socio noviembre 2026",
        ),
    ]
    recurrent = [
        DirectDebitTransaction(
            end_to_end_id="RCD000000000720261101",
            amount=Decimal("1234.56"),
            mandate_id="RCD-M-000003",
            mandate_signed_on=date(2025, 1, 31),
            debtor_name="Müller Straße GmbH",
            debtor_iban="DE89370400440532013000",
            debtor_bic="COBADEFFXXX",
            debtor_address=PostalAddress("DE", town="Berlin"),
        ),
    ]
    one_off = [
        DirectDebitTransaction(
            end_to_end_id="RCD000000003020261101",
            amount=Decimal("300.00"),
            mandate_id="RCD-M-000004",
            mandate_signed_on=date(2026, 11, 2),
            debtor_name="Talleres García, S.L.",
            debtor_iban="ES9121000418450200051332",
            remittance_information="Donación campaña invierno",
        ),
    ]
    return [
        DirectDebitGroup("RMT-7-FRST-20261125", SequenceType.FRST, Scheme.CORE,
                         date(2026, 11, 25), 2, Decimal("37.50"), iter(first)),
        DirectDebitGroup("RMT-7-RCUR-20261125", SequenceType.RCUR, Scheme.CORE,
                         date(2026, 11, 25), 1, Decimal("1234.56"), iter(recurrent)),
        DirectDebitGroup("RMT-7-OOFF-B2B-20261126", SequenceType.OOFF, Scheme.B2B,
                         date(2026, 11, 26), 1, Decimal("300.00"), iter(one_off)),
    ]  # fmt: skip


def _dd_header() -> MessageHeader:
    return MessageHeader(
        message_id="RCD-RMT-0000007",
        created_at=CREATED,
        initiating_party_name="Asociación Peña & Hijos",
        number_of_transactions=4,
        control_sum=Decimal("1572.06"),
        initiating_party_id="ES77000B85626240",
    )


def _ct_groups() -> list[CreditTransferGroup]:
    transfers = [
        CreditTransferTransaction(
            end_to_end_id="RCD-T-0001",
            amount=Decimal("150.00"),
            creditor_name="Proveedora Ñandú S.A.",
            creditor_iban="ES4721009999161234567890",
            creditor_bic="CAIXESBBXXX",
            creditor_address=PostalAddress("ES", "Avenida de América", "10", "28028", "Madrid"),
            remittance_information="Factura 2026/118",
        ),
        CreditTransferTransaction(
            end_to_end_id="RCD-T-0002",
            amount=Decimal("0.01"),
            creditor_name="Jan de Vries",
            creditor_iban="NL77ABNA0574908765",
        ),
    ]
    later = [
        CreditTransferTransaction(
            end_to_end_id="RCD-T-0003",
            amount=Decimal("99.99"),
            creditor_name="Beneficiario Proyecto Agua",
            creditor_iban="DE89370400440532013000",
            creditor_bic="COBADEFFXXX",
            remittance_information="Ayuda proyecto 12",
        ),
    ]
    return [
        CreditTransferGroup(
            "RMT-8-20261125", date(2026, 11, 25), 2, Decimal("150.01"), iter(transfers)
        ),
        CreditTransferGroup("RMT-8-20261201", date(2026, 12, 1), 1, Decimal("99.99"), iter(later)),
    ]


def _ct_header() -> MessageHeader:
    return MessageHeader(
        "RCD-RMT-0000008", CREATED, "Asociación Peña & Hijos", 3, Decimal("250.00")
    )


def _write_dd(version: str, **header_changes: object) -> bytes:
    out = io.BytesIO()
    write_pain008(
        out, replace(_dd_header(), **header_changes), CREDITOR, _dd_groups(), version=version
    )  # type: ignore[arg-type]
    return out.getvalue()


def _write_ct(version: str) -> bytes:
    out = io.BytesIO()
    write_pain001(out, _ct_header(), CREDITOR, _ct_groups(), version=version)
    return out.getvalue()


def _check_golden(name: str, produced: bytes) -> None:
    path = DATA / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(produced)
    assert produced == path.read_bytes()


def _ns(version: str) -> dict[str, str]:
    return {"p": f"urn:iso:std:iso:20022:tech:xsd:{version}"}


# --- schema-valid output and golden files ---------------------------------------------------------


@pytest.mark.parametrize("version", PAIN_008_VERSIONS)
def test_direct_debit_file_is_schema_valid_and_matches_golden(version: str) -> None:
    produced = _write_dd(version)
    validate_xml(produced, version)
    _check_golden(f"{version}.xml", produced)


@pytest.mark.parametrize("version", PAIN_001_VERSIONS)
def test_credit_transfer_file_is_schema_valid_and_matches_golden(version: str) -> None:
    produced = _write_ct(version)
    validate_xml(produced, version)
    _check_golden(f"{version}.xml", produced)


def test_write_summary() -> None:
    out = io.BytesIO()
    summary = write_pain008(out, _dd_header(), CREDITOR, _dd_groups())
    assert summary == WriteSummary("RCD-RMT-0000007", "pain.008.001.08", 4, Decimal("1572.06"), 3)
    out = io.BytesIO()
    summary = write_pain001(out, _ct_header(), CREDITOR, _ct_groups(), version="pain.001.001.03")
    assert summary == WriteSummary("RCD-RMT-0000008", "pain.001.001.03", 3, Decimal("250.00"), 2)


def test_direct_debit_content_v08() -> None:
    version = "pain.008.001.08"
    doc = etree.fromstring(_write_dd(version))
    ns = _ns(version)
    assert doc.xpath("string(//p:GrpHdr/p:NbOfTxs)", namespaces=ns) == "4"
    assert doc.xpath("string(//p:GrpHdr/p:CtrlSum)", namespaces=ns) == "1572.06"
    assert doc.xpath("string(//p:GrpHdr/p:CreDtTm)", namespaces=ns) == "2026-11-22T09:30:15"
    blocks = doc.xpath("//p:PmtInf", namespaces=ns)
    summary = [
        (
            b.xpath("string(p:PmtTpInf/p:SeqTp)", namespaces=ns),
            b.xpath("string(p:PmtTpInf/p:LclInstrm/p:Cd)", namespaces=ns),
            b.xpath("string(p:ReqdColltnDt)", namespaces=ns),
            b.xpath("string(p:NbOfTxs)", namespaces=ns),
            b.xpath("string(p:CtrlSum)", namespaces=ns),
        )
        for b in blocks
    ]
    assert summary == [
        ("FRST", "CORE", "2026-11-25", "2", "37.50"),
        ("RCUR", "CORE", "2026-11-25", "1", "1234.56"),
        ("OOFF", "B2B", "2026-11-26", "1", "300.00"),
    ]
    assert (
        doc.xpath("//p:PmtInf/p:Cdtr/p:Nm/text()", namespaces=ns) == ["Asociacion Pena + Hijos"] * 3
    )
    assert (
        doc.xpath("//p:CdtrSchmeId//p:Othr/p:Id/text()", namespaces=ns) == ["ES77000B85626240"] * 3
    )
    assert doc.xpath("//p:InstdAmt/text()", namespaces=ns) == [
        "25.00",
        "12.50",
        "1234.56",
        "300.00",
    ]
    assert doc.xpath("//p:InstdAmt/@Ccy", namespaces=ns) == ["EUR"] * 4
    assert doc.xpath("//p:Dbtr/p:Nm/text()", namespaces=ns) == [
        "Jose Nunez Ibanez",
        "Ana Maria O'Connor",
        "Muller Strasse GmbH",
        "Talleres Garcia, S.L.",
    ]
    # Structured debtor addresses; BICFI where the debtor has one, NOTPROVIDED otherwise.
    first = doc.xpath("//p:DrctDbtTxInf", namespaces=ns)[0]
    assert [(e.tag.split("}")[1], e.text) for e in first.find("p:Dbtr/p:PstlAdr", ns)] == [
        ("StrtNm", "Calle del Sol"),
        ("BldgNb", "3"),
        ("PstCd", "08001"),
        ("TwnNm", "Barcelona"),
        ("Ctry", "ES"),
    ]
    assert doc.xpath("//p:DbtrAgt/p:FinInstnId/p:BICFI/text()", namespaces=ns) == [
        "CAIXESBBXXX",
        "COBADEFFXXX",
    ]
    assert doc.xpath("//p:DbtrAgt//p:Othr/p:Id/text()", namespaces=ns) == ["NOTPROVIDED"] * 2
    assert (
        doc.xpath("//p:CdtrAgt/p:FinInstnId/p:BICFI/text()", namespaces=ns) == ["CAIXESBBXXX"] * 3
    )
    assert doc.xpath("//p:MndtRltdInf/p:DtOfSgntr/text()", namespaces=ns) == [
        "2026-10-15",
        "2026-10-20",
        "2025-01-31",
        "2026-11-02",
    ]
    assert doc.xpath("//p:RmtInf/p:Ustrd/text()", namespaces=ns) == [
        "Cuota socio noviembre 2026",
        "Cuota socio noviembre 2026",
        "Donacion campana invierno",
    ]


def test_direct_debit_content_v02_uses_bic_and_address_lines() -> None:
    version = "pain.008.001.02"
    doc = etree.fromstring(_write_dd(version))
    ns = _ns(version)
    assert doc.xpath("//p:BICFI", namespaces=ns) == []
    assert doc.xpath("//p:DbtrAgt/p:FinInstnId/p:BIC/text()", namespaces=ns) == [
        "CAIXESBBXXX",
        "COBADEFFXXX",
    ]
    first = doc.xpath("//p:DrctDbtTxInf", namespaces=ns)[0]
    assert [(e.tag.split("}")[1], e.text) for e in first.find("p:Dbtr/p:PstlAdr", ns)] == [
        ("Ctry", "ES"),
        ("AdrLine", "Calle del Sol 3"),
        ("AdrLine", "08001 Barcelona"),
    ]
    creditor_address = doc.xpath("//p:PmtInf[1]/p:Cdtr/p:PstlAdr/*/text()", namespaces=ns)
    assert creditor_address == ["ES", "Calle Mayor 5", "28013 Madrid"]


def test_without_include_bic_no_bic_is_written() -> None:
    creditor = replace(CREDITOR, include_bic=False)
    for version in PAIN_008_VERSIONS:
        out = io.BytesIO()
        write_pain008(out, _dd_header(), creditor, _dd_groups(), version=version)
        validate_xml(out.getvalue(), version)
        doc = etree.fromstring(out.getvalue())
        ns = _ns(version)
        assert doc.xpath("//p:BIC | //p:BICFI", namespaces=ns) == []
        assert doc.xpath("//p:CdtrAgt//p:Othr/p:Id/text()", namespaces=ns) == ["NOTPROVIDED"] * 3
        assert doc.xpath("//p:DbtrAgt//p:Othr/p:Id/text()", namespaces=ns) == ["NOTPROVIDED"] * 4
    for version in PAIN_001_VERSIONS:
        out = io.BytesIO()
        write_pain001(out, _ct_header(), creditor, _ct_groups(), version=version)
        validate_xml(out.getvalue(), version)
        doc = etree.fromstring(out.getvalue())
        ns = _ns(version)
        assert doc.xpath("//p:BIC | //p:BICFI", namespaces=ns) == []
        assert doc.xpath("//p:CdtTrfTxInf/p:CdtrAgt", namespaces=ns) == []  # optional: left out
        assert doc.xpath("//p:DbtrAgt//p:Othr/p:Id/text()", namespaces=ns) == ["NOTPROVIDED"] * 2


def test_credit_transfer_execution_date_per_version() -> None:
    doc = etree.fromstring(_write_ct("pain.001.001.09"))
    ns = _ns("pain.001.001.09")
    assert doc.xpath("//p:ReqdExctnDt/p:Dt/text()", namespaces=ns) == ["2026-11-25", "2026-12-01"]
    assert doc.xpath("//p:CdtTrfTxInf/p:CdtrAgt/p:FinInstnId/p:BICFI/text()", namespaces=ns) == [
        "CAIXESBBXXX",
        "COBADEFFXXX",
    ]
    doc = etree.fromstring(_write_ct("pain.001.001.03"))
    ns = _ns("pain.001.001.03")
    assert doc.xpath("//p:ReqdExctnDt/text()", namespaces=ns) == ["2026-11-25", "2026-12-01"]
    assert doc.xpath("//p:Amt/p:InstdAmt/text()", namespaces=ns) == ["150.00", "0.01", "99.99"]
    assert doc.xpath("//p:Cdtr/p:Nm/text()", namespaces=ns) == [
        "Proveedora Nandu S.A.",
        "Jan de Vries",
        "Beneficiario Proyecto Agua",
    ]


def test_creation_time_is_written_in_utc() -> None:
    madrid = timezone(timedelta(hours=1))
    doc = etree.fromstring(
        _write_dd("pain.008.001.08", created_at=datetime(2026, 11, 22, 10, 30, 15, tzinfo=madrid))
    )
    assert (
        doc.xpath("string(//p:CreDtTm)", namespaces=_ns("pain.008.001.08")) == "2026-11-22T09:30:15"
    )
    with pytest.raises(SepaWriteError, match="the creation time must be timezone-aware"):
        _write_dd("pain.008.001.08", created_at=datetime(2026, 11, 22, 9, 30))


# --- totals are checked ---------------------------------------------------------------------------


def test_group_count_mismatch_raises() -> None:
    groups = _dd_groups()
    groups[0] = replace(groups[0], number_of_transactions=3)
    with pytest.raises(SepaWriteError) as caught:
        write_pain008(
            io.BytesIO(), replace(_dd_header(), number_of_transactions=5), CREDITOR, groups
        )
    assert caught.value.message == (
        "payment information RMT-7-FRST-20261125: declared 3 transactions for 37.50 but "
        "2 transactions for 37.50 were written; discard this file"
    )


def test_group_sum_mismatch_raises() -> None:
    groups = _dd_groups()
    groups[1] = replace(groups[1], control_sum=Decimal("1234.55"))
    with pytest.raises(SepaWriteError) as caught:
        write_pain008(io.BytesIO(), _dd_header(), CREDITOR, groups)
    assert caught.value.message == (
        "payment information RMT-7-RCUR-20261125: declared 1 transactions for 1234.55 but "
        "1 transactions for 1234.56 were written; discard this file"
    )
    assert caught.value.details["written_sum"] == "1234.56"


def test_file_totals_mismatch_raises() -> None:
    with pytest.raises(SepaWriteError) as caught:
        _write_dd("pain.008.001.02", control_sum=Decimal("1572.07"))
    assert caught.value.message == (
        "file: declared 4 transactions for 1572.07 but 4 transactions for 1572.06 were "
        "written; discard this file"
    )
    out = io.BytesIO()
    groups = _ct_groups()[:1]
    with pytest.raises(
        SepaWriteError, match=re.escape("file: declared 3 transactions for 250.00 but 2")
    ):
        write_pain001(out, _ct_header(), CREDITOR, groups)


def test_empty_file_and_empty_group_are_refused() -> None:
    with pytest.raises(SepaWriteError, match="needs at least one payment information block"):
        write_pain008(io.BytesIO(), _dd_header(), CREDITOR, [])
    out = io.BytesIO()
    with pytest.raises(SepaWriteError, match="a SEPA file needs at least one transaction"):
        write_pain008(out, replace(_dd_header(), number_of_transactions=0), CREDITOR, [])
    assert out.getvalue() == b""  # the header is checked before anything is written
    groups = [replace(_dd_groups()[0], number_of_transactions=0)]
    with pytest.raises(SepaWriteError, match="RMT-7-FRST-20261125: needs at least one transaction"):
        write_pain008(io.BytesIO(), _dd_header(), CREDITOR, groups)
    with pytest.raises(
        SepaWriteError, match="file control sum Decimal\\('0'\\) must be a positive"
    ):
        _write_dd("pain.008.001.08", control_sum=Decimal(0))


# --- values that cannot be written -------------------------------------------------------------


def _one_dd(**changes: object) -> None:
    base = _dd_groups()[1]
    tx = replace(next(iter(base.transactions)), **changes)  # type: ignore[arg-type]
    group = replace(base, transactions=[tx])
    header = replace(_dd_header(), number_of_transactions=1, control_sum=base.control_sum)
    write_pain008(io.BytesIO(), header, CREDITOR, [group])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"debtor_iban": "ES0921009999161234567890"},  # SOURCES.md: bad checksum
            "transaction RCD000000000720261101 debtor: IBAN 'ES0921009999161234567890' is not a "
            "valid IBAN (format or check digits)",
        ),
        (
            {"debtor_iban": "IE98BOFI90393912121212"},  # SOURCES.md: bad checksum
            "transaction RCD000000000720261101 debtor: IBAN 'IE98BOFI90393912121212' is not a "
            "valid IBAN (format or check digits)",
        ),
        (
            {"debtor_iban": "de89370400440532013000"},
            "transaction RCD000000000720261101 debtor: IBAN 'de89370400440532013000' is not a "
            "valid IBAN (format or check digits)",
        ),
        (
            {"debtor_bic": "COBADEFF1"},
            "transaction RCD000000000720261101: BIC 'COBADEFF1' is not 8 or 11 letters and digits",
        ),
        (
            {"debtor_name": "Pepe 😀"},
            "transaction RCD000000000720261101 debtor name 'Pepe 😀' has characters outside the "
            "SEPA character set that cannot be transliterated: '😀'",
        ),
        (
            {"end_to_end_id": "X" * 36},
            f"end to end id {'X' * 36!r} is longer than 35 characters",
        ),
        (
            {"mandate_id": "M/Ñ"},
            "transaction RCD000000000720261101 mandate id 'M/Ñ' has characters outside the SEPA "
            "character set",
        ),
        (
            {"amount": Decimal("0.00")},
            "transaction RCD000000000720261101: amount 0.00 is outside 0.01 to 999999999.99",
        ),
        (
            {"amount": Decimal("1.005")},
            "transaction RCD000000000720261101: amount 1.005 has more than 2 decimals",
        ),
        (
            {"debtor_address": PostalAddress("Spain", town="Madrid")},
            "transaction RCD000000000720261101 debtor: country 'Spain' is not an ISO 3166 "
            "alpha-2 code",
        ),
    ],
)
def test_transaction_values_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SepaWriteError) as caught:
        _one_dd(**changes)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (Decimal("0.00"), "amount 0.00 is outside 0.01 to 999999999.99"),
        (Decimal("1.005"), "amount 1.005 has more than 2 decimals"),
        (Decimal("1000000000"), "amount 1000000000 is outside 0.01 to 999999999.99"),
        (Decimal("NaN"), "amount Decimal('NaN') is not a finite Decimal"),
        (10, "amount 10 is not a finite Decimal"),
    ],
)
def test_amounts_are_refused(amount: Decimal, message: str) -> None:
    with pytest.raises(SepaWriteError) as caught:
        format_amount(amount)
    assert caught.value.message == message


def test_amount_format() -> None:
    assert format_amount(Decimal("1234.5")) == "1234.50"
    assert format_amount(Decimal("7")) == "7.00"
    assert format_amount(Decimal("0.010")) == "0.01"
    assert format_amount(Decimal("999999999.99")) == "999999999.99"


@pytest.mark.parametrize(
    ("creditor", "message"),
    [
        (
            replace(CREDITOR, creditor_identifier=None),
            "the creditor account has no creditor identifier (AT-02)",
        ),
        (
            replace(
                CREDITOR, creditor_identifier="ES29000G12345678"
            ),  # SOURCES.md: LaCaixa samples
            "creditor identifier 'ES29000G12345678' has a wrong check digit (AT-02, ISO 7064 "
            "MOD 97-10): 29 instead of 26",
        ),
        (
            replace(CREDITOR, creditor_identifier="IE03ZZZ123456"),  # SOURCES.md: OCA samples
            "creditor identifier 'IE03ZZZ123456' has a wrong check digit (AT-02, ISO 7064 "
            "MOD 97-10): 03 instead of 84",
        ),
        (
            replace(CREDITOR, iban="ES0921009999161234567890"),
            "creditor: IBAN 'ES0921009999161234567890' is not a valid IBAN "
            "(format or check digits)",
        ),
        (
            replace(CREDITOR, name="@@@"),
            "creditor name '@@@' has characters outside the SEPA character set that cannot be "
            "transliterated: '@'",
        ),
    ],
)
def test_creditor_account_is_checked(creditor: Account, message: str) -> None:
    out = io.BytesIO()
    with pytest.raises(SepaWriteError) as caught:
        write_pain008(out, _dd_header(), creditor, _dd_groups())
    assert caught.value.message == message
    assert out.getvalue() == b""  # refused before anything is written


def test_unsupported_versions() -> None:
    with pytest.raises(
        SepaWriteError, match=re.escape("unsupported direct debit version 'pain.008.001.10'")
    ):
        write_pain008(io.BytesIO(), _dd_header(), CREDITOR, _dd_groups(), version="pain.008.001.10")
    with pytest.raises(
        SepaWriteError, match=re.escape("unsupported credit transfer version 'pain.008.001.08'")
    ):
        write_pain001(io.BytesIO(), _ct_header(), CREDITOR, _ct_groups(), version="pain.008.001.08")


def test_long_texts_are_cut() -> None:
    tx = replace(
        next(iter(_dd_groups()[1].transactions)),
        debtor_name="Ñ" * 80,
        remittance_information="é" * 200,
    )
    group = replace(_dd_groups()[1], transactions=[tx])
    header = replace(_dd_header(), number_of_transactions=1, control_sum=tx.amount)
    out = io.BytesIO()
    write_pain008(out, header, CREDITOR, [group])
    validate_xml(out.getvalue(), "pain.008.001.08")
    doc = etree.fromstring(out.getvalue())
    ns = _ns("pain.008.001.08")
    assert doc.xpath("string(//p:Dbtr/p:Nm)", namespaces=ns) == "N" * 70
    assert doc.xpath("string(//p:Ustrd)", namespaces=ns) == "e" * 140


# --- streaming --------------------------------------------------------------------------------


def test_transactions_are_streamed_not_collected() -> None:
    """The output grows while the iterator is consumed: nothing waits for the end."""
    out = io.BytesIO()
    sizes: list[int] = []
    count = 5_000

    def transactions() -> Iterator[DirectDebitTransaction]:
        for i in range(count):
            sizes.append(out.tell())
            yield DirectDebitTransaction(
                f"RCD{i:012d}",
                Decimal("1.00"),
                f"M{i}",
                date(2026, 1, 1),
                "Socio",
                "NL77ABNA0574908765",
            )

    group = DirectDebitGroup("P", SequenceType.RCUR, Scheme.CORE, date(2026, 11, 25), count,
                             Decimal(count), transactions())  # fmt: skip
    header = replace(_dd_header(), number_of_transactions=count, control_sum=Decimal(count))
    write_pain008(out, header, CREDITOR, [group])
    final = out.tell()
    assert sizes[count // 2] > final // 4  # half-way, a good part of the file is already out
    validate_xml(out.getvalue(), "pain.008.001.08")


# --- XSD validation helper ---------------------------------------------------------------------


def test_validate_xml_accepts_paths_bytes_and_files(tmp_path: Path) -> None:
    produced = _write_dd("pain.008.001.02")
    path = tmp_path / "remesa.xml"
    path.write_bytes(produced)
    validate_xml(path, "pain.008.001.02")
    validate_xml(str(path), "pain.008.001.02")
    with path.open("rb") as handle:
        validate_xml(handle, "pain.008.001.02")


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("samples/sepa_king-pain.008.001.02.xml", "pain.008.001.02"),
        ("samples/sepa_king-pain.001.001.03.xml", "pain.001.001.03"),
    ],
)
def test_validate_xml_accepts_third_party_samples(name: str, version: str) -> None:
    validate_xml(DATA / name, version)


def test_validate_xml_refuses_wrong_version() -> None:
    with pytest.raises(SepaSchemaError) as caught:
        validate_xml(_write_dd("pain.008.001.02"), "pain.008.001.08")
    assert caught.value.message == (
        "not a valid pain.008.001.08 document: line 2: Element "
        "'{urn:iso:std:iso:20022:tech:xsd:pain.008.001.02}Document': No matching global "
        "declaration available for the validation root."
    )


def test_validate_xml_says_where_the_error_is(tmp_path: Path) -> None:
    produced = _write_dd("pain.008.001.08").replace(
        b"<MndtId>RCD-M-000003</MndtId>", b"<MndtId>RCD-M-000003</MndtId><Extra>1</Extra>"
    )
    line = produced[: produced.index(b"<Extra>")].count(b"\n") + 1
    expected = (
        f"not a valid pain.008.001.08 document: line {line}: Element "
        "'{urn:iso:std:iso:20022:tech:xsd:pain.008.001.08}Extra': This element is not expected."
    )
    path = tmp_path / "bad.xml"
    path.write_bytes(produced)
    for source in (produced, path, io.BytesIO(produced)):
        with pytest.raises(SepaSchemaError) as caught:
            validate_xml(source, "pain.008.001.08")
        assert caught.value.message.startswith(expected)
        assert len(caught.value.details["errors"]) == 1  # type: ignore[arg-type]


def test_validate_xml_refuses_malformed_xml_and_unknown_messages() -> None:
    with pytest.raises(SepaSchemaError) as caught:
        validate_xml(b"<Document><unclosed></Document>", "pain.008.001.08")
    assert caught.value.message == (
        "not a valid pain.008.001.08 document: line 1: Opening and ending tag mismatch: "
        "unclosed line 1 and Document"
    )
    with pytest.raises(SepaSchemaError, match=re.escape("no schema shipped for 'camt.054.001.08'")):
        validate_xml(b"<x/>", "camt.054.001.08")


# --- cross-check with an independent generator -------------------------------------------------


@pytest.mark.parametrize("version", PAIN_008_VERSIONS)
def test_same_transactions_as_sepaxml(version: str) -> None:
    from sepaxml import SepaDD

    groups = [g for g in _dd_groups() if g.scheme is Scheme.CORE]  # sepaxml: one scheme a file
    transactions = [(g, tx) for g in groups for tx in list(g.transactions)]
    config = {
        "name": "Asociacion Pena + Hijos",
        "IBAN": CREDITOR.iban,
        "BIC": CREDITOR.bic,
        "batch": True,
        "creditor_id": CREDITOR.creditor_identifier,
        "currency": "EUR",
        "instrument": "CORE",
    }
    reference = SepaDD(config, schema=version, clean=True)
    for group, tx in transactions:
        payment = {
            "name": tx.debtor_name,
            "IBAN": tx.debtor_iban,
            "amount": int(tx.amount * 100),
            "type": group.sequence_type.value,
            "collection_date": group.collection_date,
            "mandate_id": tx.mandate_id,
            "mandate_date": tx.mandate_signed_on,
            "description": tx.remittance_information or "-",  # sepaxml writes an empty Ustrd
            "endtoend_id": tx.end_to_end_id,
        }
        if tx.debtor_bic:
            payment["BIC"] = tx.debtor_bic
        reference.add_payment(payment)
    theirs = reference.export(validate=True)

    total = sum((tx.amount for _, tx in transactions), Decimal(0))
    header = replace(_dd_header(), number_of_transactions=len(transactions), control_sum=total)
    rebuilt = [replace(g, transactions=[tx for gg, tx in transactions if gg is g]) for g in groups]
    out = io.BytesIO()
    write_pain008(out, header, CREDITOR, rebuilt, version=version)
    ours = out.getvalue()
    validate_xml(ours, version)
    validate_xml(theirs, version)

    def facts(document: bytes) -> tuple[object, ...]:
        doc = etree.fromstring(document)
        ns = _ns(version)
        txs = sorted(
            (
                t.xpath("string(p:PmtId/p:EndToEndId)", namespaces=ns),
                Decimal(t.xpath("string(p:InstdAmt)", namespaces=ns)),
                t.xpath("string(p:DrctDbtTx/p:MndtRltdInf/p:MndtId)", namespaces=ns),
                t.xpath("string(p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr)", namespaces=ns),
                t.xpath("string(p:DbtrAcct/p:Id/p:IBAN)", namespaces=ns),
                t.xpath("string(../p:PmtTpInf/p:SeqTp)", namespaces=ns),
                t.xpath("string(../p:ReqdColltnDt)", namespaces=ns),
            )
            for t in doc.xpath("//p:DrctDbtTxInf", namespaces=ns)
        )
        blocks = sorted(
            (
                b.xpath("string(p:PmtTpInf/p:SeqTp)", namespaces=ns),
                int(b.xpath("string(p:NbOfTxs)", namespaces=ns)),
                Decimal(b.xpath("string(p:CtrlSum)", namespaces=ns)),
            )
            for b in doc.xpath("//p:PmtInf", namespaces=ns)
        )
        return (
            int(doc.xpath("string(//p:GrpHdr/p:NbOfTxs)", namespaces=ns)),
            Decimal(doc.xpath("string(//p:GrpHdr/p:CtrlSum)", namespaces=ns)),
            blocks,
            txs,
        )

    assert facts(ours) == facts(theirs)
    assert facts(ours)[:2] == (3, Decimal("1272.06"))


# --- checking the output while writing it ---------------------------------------------------------


@pytest.mark.parametrize("version", PAIN_008_VERSIONS + PAIN_001_VERSIONS)
def test_validate_while_writing_gives_the_same_bytes(version: str) -> None:
    out = io.BytesIO()
    if version.startswith("pain.008"):
        write_pain008(out, _dd_header(), CREDITOR, _dd_groups(), version=version, validate=True)
    else:
        write_pain001(out, _ct_header(), CREDITOR, _ct_groups(), version=version, validate=True)
    assert out.getvalue() == (DATA / f"{version}.xml").read_bytes()


def test_validate_while_writing_on_a_large_file() -> None:
    """Several chunks go through the checking thread; the bytes equal an unchecked write."""
    count = 3_000

    def groups() -> list[DirectDebitGroup]:
        txs = (
            DirectDebitTransaction(
                f"RCD{i:012d}",
                Decimal("2.50"),
                f"M{i}",
                date(2026, 1, 1),
                "Socio",
                "NL77ABNA0574908765",
            )
            for i in range(count)
        )
        return [DirectDebitGroup("P", SequenceType.RCUR, Scheme.CORE, date(2026, 11, 25), count,
                                 Decimal("7500.00"), txs)]  # fmt: skip

    header = replace(_dd_header(), number_of_transactions=count, control_sum=Decimal("7500.00"))
    checked, unchecked = io.BytesIO(), io.BytesIO()
    write_pain008(checked, header, CREDITOR, groups(), validate=True)
    write_pain008(unchecked, header, CREDITOR, groups())
    assert len(checked.getvalue()) > 4 * (1 << 18) / 2
    assert checked.getvalue() == unchecked.getvalue()


def test_validate_while_writing_reports_an_invalid_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recaudo.formats import sepa_write

    # An agent id longer than Max35Text: only the schema can notice it.
    monkeypatch.setattr(sepa_write, "NOT_PROVIDED", "N" * 40)
    creditor = replace(CREDITOR, include_bic=False)
    with pytest.raises(SepaSchemaError) as caught:
        write_pain008(io.BytesIO(), _dd_header(), creditor, _dd_groups(), validate=True)
    message = caught.value.message
    assert message.startswith(
        "the written pain.008.001.08 document is not valid: Element "
        "'{urn:iso:std:iso:20022:tech:xsd:pain.008.001.08}Id': [facet 'maxLength'] The value "
    )
    assert "this exceeds the allowed maximum length of '35'" in message


def test_a_write_error_stops_the_checking_thread() -> None:
    import threading

    groups = _dd_groups()
    groups[0] = replace(groups[0], number_of_transactions=3)
    before = threading.active_count()
    with pytest.raises(SepaWriteError, match="declared 3 transactions"):
        write_pain008(io.BytesIO(), _dd_header(), CREDITOR, groups, validate=True)
    assert threading.active_count() == before


@pytest.mark.parametrize("version", PAIN_008_VERSIONS + PAIN_001_VERSIONS)
def test_golden_files_pass_an_independent_validator(version: str) -> None:
    """xmlschema (pure Python, sepaxml's validator) agrees with libxml2 on our files."""
    xmlschema = pytest.importorskip("xmlschema")
    from importlib import resources

    xsd = resources.files("recaudo.formats").joinpath("sepa_xsd", f"{version}.xsd")
    with resources.as_file(xsd) as path:
        schema = xmlschema.XMLSchema(str(path))
    schema.validate((DATA / f"{version}.xml").read_text(encoding="utf-8"))
