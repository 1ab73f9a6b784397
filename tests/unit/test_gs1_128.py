"""GS1-128 payment barcodes: GLN check digit, element string, human-readable line, parsing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from biip import parse as biip_parse
from hypothesis import given
from hypothesis import strategies as st

from recaudo.domain.errors import ValidationFailed
from recaudo.formats import gs1_128
from recaudo.formats.gs1_128 import GS, PaymentCode

# Human-readable lines found in public code (../shared/specs/gs1-128-colombia/SOURCES.md).
SAMPLES = [
    "(415)7709998013711(8020)000010129389000011127135(3900)0001168375(96)20111207",
    "(415)7709998726789(8020)0000081324(3900)0000131225(96)20200401",
    "(415)7709998014350(8020)0000017209701643(3900)01983090(96)20180630",
]


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        ("770999801371", 1),
        ("770999872678", 9),
        ("770999801435", 0),
        ("770999888848", 7),  # the Asobancaria service code 7709998888487
        ("000000000000", 0),
        ("123456789012", 8),
    ],
)
def test_gln_check_digit(body: str, digit: int) -> None:
    assert gs1_128.gln_check_digit(body) == digit
    assert gs1_128.is_valid_gln(body + str(digit))
    assert gs1_128.with_check_digit(body) == body + str(digit)


def test_gln_with_wrong_check_digit_is_refused() -> None:
    assert not gs1_128.is_valid_gln("7709998013712")
    with pytest.raises(ValidationFailed, match="check digit is 2, expected 1"):
        gs1_128.check_gln("7709998013712")
    with pytest.raises(ValidationFailed, match="13 digits"):
        gs1_128.check_gln("770999801371")
    with pytest.raises(ValidationFailed, match="13 digits"):
        gs1_128.check_gln("77099980137a1")
    with pytest.raises(ValidationFailed, match="12 digits"):
        gs1_128.gln_check_digit("7709")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(1, 9))
def test_any_single_digit_change_breaks_the_check(body: str, delta: int) -> None:
    gln = gs1_128.with_check_digit(body)
    assert gs1_128.is_valid_gln(gln)
    broken = gln[:12] + str((int(gln[12]) + delta) % 10)
    assert not gs1_128.is_valid_gln(broken)


@pytest.mark.parametrize("hri", SAMPLES)
def test_samples_parse_and_render_back(hri: str) -> None:
    code = gs1_128.parse(hri)
    assert code.human_readable() == hri
    assert gs1_128.parse(code.element_string()) == code
    assert gs1_128.parse("]C1" + code.element_string()) == code
    assert gs1_128.parse(code.barcode_input()) == code


def test_first_sample_fields_and_element_string() -> None:
    code = gs1_128.parse(SAMPLES[0])
    assert code == PaymentCode(
        gln="7709998013711",
        reference="000010129389000011127135",
        amount=Decimal("1168375"),
        due_date=date(2011, 12, 7),
        decimals=0,
        amount_width=10,
    )
    # No FNC1 after the fixed-length (415), one after (8020) and (3900), none at the end.
    assert code.element_string() == (
        "4157709998013711"
        + "8020000010129389000011127135"
        + GS
        + "39000001168375"
        + GS
        + "9620111207"
    )
    assert code.barcode_input() == (
        "\xf14157709998013711"
        + "8020000010129389000011127135\xf1"
        + "39000001168375\xf1"
        + "9620111207"
    )


@pytest.mark.parametrize("hri", SAMPLES)
def test_biip_reads_our_element_string_the_same(hri: str) -> None:
    code = gs1_128.parse(hri)
    message = biip_parse("]C1" + code.element_string()).gs1_message
    assert message is not None
    assert message.as_hri() == hri
    assert [(e.ai.ai, e.value) for e in message.element_strings] == code.elements()


def test_amount_with_implied_decimals_and_padding() -> None:
    code = PaymentCode(
        gln="7709998013711",
        reference="ABC-12",
        amount=Decimal("150000.50"),
        due_date=date(2026, 12, 31),
        decimals=2,
        amount_width=12,
    )
    assert code.human_readable() == "(415)7709998013711(8020)ABC-12(3902)000015000050(96)20261231"
    assert gs1_128.parse(code.human_readable()).amount == Decimal("150000.50")


def test_without_due_date_the_amount_is_last_and_has_no_fnc1() -> None:
    code = PaymentCode(gln="7709998013711", reference="77", amount=Decimal(5000))
    assert code.element_string() == "4157709998013711" + "802077" + GS + "39005000"
    again = gs1_128.parse(code.element_string())
    assert (again.amount, again.due_date, again.amount_width) == (Decimal(5000), None, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gln": "7709998013712"}, "check digit"),
        ({"reference": ""}, "1 to 25"),
        ({"reference": "1" * 26}, "1 to 25"),
        ({"reference": "ÑANDÚ"}, "cannot carry"),
        ({"reference": "A B"}, "cannot carry"),
        ({"amount": Decimal("10.5")}, "does not fit 0 decimals"),
        ({"amount": Decimal("-1")}, "does not fit"),
        ({"amount": Decimal(10**15)}, "at most 15 digits"),
    ],
)
def test_invalid_codes_are_refused(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "gln": "7709998013711",
        "reference": "123",
        "amount": Decimal(100),
    }
    values.update(kwargs)
    with pytest.raises(ValidationFailed, match=message):
        PaymentCode(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("(415)7709998013711(3900)100", r"no \(8020\)"),
        ("(415)7709998013711(8020)1", r"no \(390n\)"),
        ("(8020)1(3900)100", r"no \(415\)"),
        ("(415)7709998013711(8020)1(3900)1(3900)2", "repeated"),
        ("(415)7709998013711(8020)1(3900)1(96)20261301", "not a calendar date"),
        ("(415)7709998013711(8020)1(3900)1(96)2026", "YYYYMMDD"),
        ("(415)7709998013711(8020)1(3900)1x", "digits"),
        ("(415)77099980137(8020)1(3900)1", "13 digits"),
        ("(01)07709998013711", "unexpected"),
        ("4157709998013711" + "80201" + GS + "1234", "unknown Application Identifier"),
        ("(415)7709998013711(8020)1(3900", "human-readable"),
        ("(415)7709998013711(8020)1(3900)1 junk", "digits"),
        ("", "unknown|human|no"),
    ],
)
def test_malformed_barcodes_are_refused(data: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        gs1_128.parse(data)


_cset82 = st.text(
    alphabet="!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
    min_size=1,
    max_size=25,
)


@given(
    body=st.text(alphabet="0123456789", min_size=12, max_size=12),
    reference=_cset82,
    minor=st.integers(0, 10**12),
    decimals=st.integers(0, 2),
    width=st.integers(0, 15),
    due=st.none() | st.dates(date(2000, 1, 1), date(2099, 12, 31)),
)
def test_element_string_round_trip(
    body: str, reference: str, minor: int, decimals: int, width: int, due: date | None
) -> None:
    code = PaymentCode(
        gln=gs1_128.with_check_digit(body),
        reference=reference,
        amount=Decimal(minor).scaleb(-decimals),
        due_date=due,
        decimals=decimals,
        amount_width=width,
    )
    again = gs1_128.parse(code.element_string())
    assert again.element_string() == code.element_string()
    assert again.amount == code.amount
    assert again.reference == reference
    assert again.due_date == due
    message = biip_parse("]C1" + code.element_string()).gs1_message
    assert message is not None
    assert [(e.ai.ai, e.value) for e in message.element_strings] == code.elements()


# --- The coupon PDF: its barcode, rendered and scanned by an independent decoder -------


def _coupon(code: PaymentCode) -> bytes:
    from recaudo.adapters.pdf import CouponDocument, coupon_pdf

    return coupon_pdf(
        CouponDocument(
            company_name="Universidad de Prueba S.A.S.",
            company_tax_id="900123456-7",
            service_name="Matrícula 2027-1",
            number="CP-00000001",
            amount_text="$ 1.168.375",
            due_date=code.due_date,
            code=code,
            references=[("Documento", "1020304050"), ("Periodo", "2027-1")],
            issued_on=date(2026, 11, 22),
        )
    )


def _scan(pdf: bytes, scale: float) -> list[tuple[str, str, bytes]]:
    import pypdfium2
    import zxingcpp

    image = pypdfium2.PdfDocument(pdf)[0].render(scale=scale).to_pil()
    return [(r.symbology_identifier, r.text, bytes(r.bytes)) for r in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize(
    ("code", "scale"),
    [
        (gs1_128.parse(SAMPLES[0]), 3),
        (gs1_128.parse(SAMPLES[2]), 3),
        # The longest message there is: 25-character alphanumeric reference, 15-digit amount;
        # the bars are narrowed to fit the page and still scan at 288 dpi.
        (
            PaymentCode(
                gln="7709998013711",
                reference="ABCDEFGHIJKLMNOPQRSTUVWXY",
                amount=Decimal("123456789012345"),
                due_date=date(2026, 12, 31),
            ),
            4,
        ),
    ],
)
def test_coupon_barcode_scans_back_to_the_same_elements(code: PaymentCode, scale: float) -> None:
    pdf = _coupon(code)
    assert pdf.startswith(b"%PDF-")
    assert pdf == _coupon(code)  # reproducible bytes
    scanned = _scan(pdf, scale)
    assert len(scanned) == 1
    symbology, text, data = scanned[0]
    assert symbology == "]C1"  # GS1-128: the symbol starts with FNC1
    assert text == code.human_readable()
    assert data.decode("ascii") == code.element_string()
    message = biip_parse(symbology + data.decode("ascii")).gs1_message
    assert message is not None
    assert [(e.ai.ai, e.value) for e in message.element_strings] == code.elements()
    assert gs1_128.parse(symbology + data.decode("ascii")) == code
    text_layer = pypdfium_text(pdf)
    assert code.human_readable() in text_layer
    assert "CP-00000001" in text_layer
    assert "$ 1.168.375" in text_layer


def pypdfium_text(pdf: bytes) -> str:
    import pypdfium2

    page = pypdfium2.PdfDocument(pdf)[0]
    return str(page.get_textpage().get_text_range())
