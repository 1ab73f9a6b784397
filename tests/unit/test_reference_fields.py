"""Reference-field validation (every type and forced-length form), service rules, states."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recaudo.domain.checkout import (
    CAPTURED,
    CREATED,
    EXPIRED,
    FAILED,
    FINAL,
    NOT_AUTHORIZED,
    OK,
    PENDING,
    STATES,
    LengthRule,
    ListItem,
    ReferenceSpec,
    ServiceRules,
    next_state,
    parse_forced_length,
    validate_references,
)
from recaudo.domain.errors import Conflict, ValidationFailed


def fields_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    fields = exc.value.details["fields"]
    assert isinstance(fields, dict)
    return fields


# --- forced length ------------------------------------------------------------------------


def test_forced_length_forms() -> None:
    assert parse_forced_length("8") == LengthRule("8", 8, 8)
    assert parse_forced_length("-10") == LengthRule("-10", 0, 10)
    assert parse_forced_length("4-6") == LengthRule("4-6", 4, 6)
    rule = parse_forced_length("6,8,10")
    assert rule.one_of == frozenset({6, 8, 10})
    assert [n for n in range(12) if rule.allows(n)] == [6, 8, 10]
    assert parse_forced_length("100").allows(100)


@pytest.mark.parametrize("bad", ["", "0", "101", "-0", "-101", "7-3", "a", "3-", "1,,2", "1,101"])
def test_forced_length_refused(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_forced_length(bad)


@given(st.integers(1, 100), st.integers(0, 120))
def test_exact_length_property(n: int, length: int) -> None:
    assert parse_forced_length(str(n)).allows(length) is (length == n)


@given(st.integers(1, 100), st.integers(0, 120))
def test_max_length_property(n: int, length: int) -> None:
    assert parse_forced_length(f"-{n}").allows(length) is (length <= n)


@given(st.integers(0, 100), st.integers(1, 100), st.integers(0, 120))
def test_range_length_property(low: int, high: int, length: int) -> None:
    if low > high:
        with pytest.raises(ValidationFailed):
            parse_forced_length(f"{low}-{high}")
        return
    assert parse_forced_length(f"{low}-{high}").allows(length) is (low <= length <= high)


@given(st.lists(st.integers(1, 100), min_size=2, max_size=6), st.integers(0, 120))
def test_one_of_length_property(lengths: list[int], length: int) -> None:
    rule = parse_forced_length(",".join(str(n) for n in lengths))
    assert rule.allows(length) is (length in lengths)


@given(st.integers(1, 30), st.text(alphabet=string.ascii_letters, max_size=40))
def test_text_with_forced_length_accepts_exactly_the_allowed(n: int, text: str) -> None:
    spec = ReferenceSpec("Código", forced_length=parse_forced_length(f"-{n}"), required=True)
    if text and len(text) <= n:
        assert validate_references([spec], [text]).values == (text,)
    else:
        with pytest.raises(ValidationFailed):
            validate_references([spec], [text])


# --- types --------------------------------------------------------------------------------


@given(st.integers(0, 10**30))
def test_integer_accepts_every_natural(n: int) -> None:
    assert validate_references([ReferenceSpec("N", kind="integer")], [str(n)]).values == (str(n),)


@given(st.text(min_size=1).filter(lambda s: s.strip() and not s.strip().isascii()))
def test_integer_refuses_non_digits(text: str) -> None:
    with pytest.raises(ValidationFailed):
        validate_references([ReferenceSpec("N", kind="integer")], [text])


@pytest.mark.parametrize("bad", ["12a", "-3", "1.5", "1 2", "+1"])
def test_integer_refusals(bad: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_references([ReferenceSpec("Número", kind="integer")], [bad])
    assert fields_of(exc) == {"0": "Número: debe contener solo dígitos"}


@given(st.integers(0, 10**12), st.integers(0, 99))
def test_currency_normalises_the_separator(units: int, cents: int) -> None:
    spec = ReferenceSpec("Valor", kind="currency")
    assert validate_references([spec], [f"{units},{cents:02d}"]).values == (f"{units}.{cents:02d}",)
    assert validate_references([spec], [str(units)]).values == (str(units),)


@pytest.mark.parametrize("bad", ["1.234.567", "12.345", "$100", "1e5", "-1"])
def test_currency_refusals(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        validate_references([ReferenceSpec("Valor", kind="currency")], [bad])


def test_email() -> None:
    spec = ReferenceSpec("Correo", kind="email")
    assert validate_references([spec], ["Ana.Perez@Example.CO"]).values == ("ana.perez@example.co",)
    for bad in ["ana", "ana@", "@x.co", "ana@x", "a b@x.co", "ana@@x.co"]:
        with pytest.raises(ValidationFailed):
            validate_references([spec], [bad])


@given(st.emails())
def test_email_accepts_generated_addresses_without_dotless_domains(address: str) -> None:
    domain = address.rsplit("@", 1)[1]
    if "." not in domain or len(address) > 254 or not address.isascii():
        return
    spec = ReferenceSpec("Correo", kind="email")
    assert validate_references([spec], [address]).values == (address.lower(),)


def test_customer_id_and_type() -> None:
    specs = [
        ReferenceSpec("Tipo", kind="customer_id_type", required=True),
        ReferenceSpec("Documento", kind="customer_id", required=True),
    ]
    assert validate_references(specs, ["cc", "1.020.304.050"]).values == ("CC", "1020304050")
    assert validate_references(specs, ["PA", "ab12345"]).values == ("PA", "AB12345")
    assert validate_references(specs, ["NIT", "860069804-2"]).values == ("NIT", "8600698042")
    with pytest.raises(ValidationFailed) as exc:
        validate_references(specs, ["NIT", "860069804-3"])
    assert fields_of(exc) == {"1": "Documento: el NIT no es válido (dígito de verificación)"}
    with pytest.raises(ValidationFailed) as exc:
        validate_references(specs, ["CC", "AB123"])
    assert fields_of(exc) == {"1": "Documento: un documento CC tiene solo dígitos"}
    with pytest.raises(ValidationFailed) as exc:
        validate_references(specs, ["XX", "123"])
    assert fields_of(exc) == {"0": "Tipo: debe ser uno de CC, CE, TI, RC, NIT, PA, PEP, PPT"}


def test_constant_hidden_read_only_and_fixed_value() -> None:
    specs = [
        ReferenceSpec("Cuenta", kind="constant", fixed_value="4110-05", hidden=True),
        ReferenceSpec("Periodo", read_only=True, fixed_value="2026-2"),
        ReferenceSpec("Sede", fixed_value="BOG"),
    ]
    # Constants and read-only fixed values ignore what is sent; a fixed value is a default.
    assert validate_references(specs, ["x", "y", ""]).values == ("4110-05", "2026-2", "BOG")
    assert validate_references(specs, [None, None, "MED"]).values == ("4110-05", "2026-2", "MED")
    with pytest.raises(ValidationFailed):
        ReferenceSpec("Cuenta", kind="constant")


def test_required_upper_case_prefix() -> None:
    specs = [
        ReferenceSpec("Placa", required=True, upper_case=True, forced_length=LengthRule("6", 6, 6)),
        ReferenceSpec("Expediente", prefix="DOP-2014-FG-", kind="integer"),
        ReferenceSpec("Nota"),
    ]
    assert validate_references(specs, ["abc123", "99999999"]).values == (
        "ABC123",
        "DOP-2014-FG-99999999",
        "",
    )
    with pytest.raises(ValidationFailed) as exc:
        validate_references(specs, ["  ", "12a"])
    assert fields_of(exc) == {
        "0": "Placa: es obligatorio",
        "1": "Expediente: debe contener solo dígitos",
    }
    with pytest.raises(ValidationFailed) as exc:
        validate_references(specs, ["abc12", "1"])
    assert fields_of(exc) == {"0": "Placa: debe tener exactamente 6 caracteres"}
    with pytest.raises(ValidationFailed):
        validate_references(specs, ["ABC123", "1", "", "extra"])


def test_lists_prices_and_related_lists() -> None:
    department = ReferenceSpec(
        "Departamento",
        required=True,
        list_items=(ListItem("05", "Antioquia"), ListItem("11", "Bogotá D.C.")),
    )
    city = ReferenceSpec(
        "Municipio",
        required=True,
        parent_index=0,
        list_items=(
            ListItem("05001", "Medellín", parent="05"),
            ListItem("05088", "Bello", parent="05"),
            ListItem("11001", "Bogotá", parent="11"),
        ),
    )
    level = ReferenceSpec(
        "Nivel",
        list_items=(
            ListItem("PRE", "Pregrado", 150_000_00),
            ListItem("POS", "Posgrado", 300_000_00),
        ),
    )
    valid = validate_references([department, city, level], ["05", "05088", "POS"])
    assert valid.values == ("05", "05088", "POS")
    assert valid.list_price_minor == 300_000_00
    with pytest.raises(ValidationFailed) as exc:
        validate_references([department, city, level], ["11", "05001", "XX"])
    assert fields_of(exc) == {
        "1": "Municipio: no corresponde a la opción elegida arriba",
        "2": "Nivel: no es una opción de la lista",
    }
    assert validate_references([department, city, level], ["11", "11001"]).list_price_minor is None


def test_mapping_input_and_double_payment_key() -> None:
    specs = [
        ReferenceSpec("Documento", kind="integer", double_payment_control=True),
        ReferenceSpec("Periodo", double_payment_control=True),
        ReferenceSpec("Nota"),
        ReferenceSpec("Cuarta", double_payment_control=True),
    ]
    valid = validate_references(specs, {0: "123", 1: "2026-1", 3: "x"})
    assert valid.values == ("123", "2026-1", "", "x")
    # Only the first three references may be controlled.
    assert valid.double_payment_key(specs) == "0=123|1=2026-1"
    assert valid.double_payment_key([ReferenceSpec(s.title) for s in specs]) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["text", "integer"]),
            st.booleans(),
            st.booleans(),
            st.one_of(st.none(), st.integers(1, 12)),
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_validation_is_idempotent_and_total(
    shape: list[tuple[str, bool, bool, int | None]], data: st.DataObject
) -> None:
    """Whatever is sent: either every field is valid, or each failing position is reported;
    validating the normalised values again gives the same values."""
    specs = [
        ReferenceSpec(
            f"R{i}",
            kind=kind,
            required=required,
            upper_case=upper,
            forced_length=None if n is None else parse_forced_length(f"-{n}"),
        )
        for i, (kind, required, upper, n) in enumerate(shape)
    ]
    sent = [data.draw(st.one_of(st.none(), st.text(alphabet="aB3 9-", max_size=14))) for _ in specs]
    try:
        valid = validate_references(specs, sent)
    except ValidationFailed as exc:
        assert set(exc.details["fields"]) <= {str(i) for i in range(len(specs))}  # type: ignore[arg-type]
        assert exc.details["fields"]
        return
    assert validate_references(specs, list(valid.values)).values == valid.values
    for spec, value in zip(specs, valid.values, strict=True):
        if spec.upper_case:
            assert value == value.upper()
        if spec.forced_length is not None and value:
            assert spec.forced_length.allows(len(value))


# --- service rules ------------------------------------------------------------------------


def test_activation_and_informative_only() -> None:
    rules = ServiceRules(
        "open", "COP", active_from=date(2026, 1, 10), active_until=date(2026, 2, 1)
    )
    rules.check_open(date(2026, 1, 10))
    rules.check_open(date(2026, 2, 1))
    with pytest.raises(Conflict, match="opens on 2026-01-10"):
        rules.check_open(date(2026, 1, 9))
    with pytest.raises(Conflict, match="closed on 2026-02-01"):
        rules.check_open(date(2026, 2, 2))
    with pytest.raises(Conflict, match="not active"):
        ServiceRules("open", "COP", active=False).check_open(date(2026, 1, 1))
    with pytest.raises(Conflict, match="informative only"):
        ServiceRules("open", "COP", informative_only=True).check_open(date(2026, 1, 1))


def test_price_kinds_and_vat() -> None:
    fixed = ServiceRules("fixed", "COP", fixed_price_minor=100_000_00, vat_basis_points=1900)
    assert fixed.amount(list_price_minor=None, typed_minor=None) == (100_000_00, 19_000_00)
    assert fixed.amount(list_price_minor=None, typed_minor=100_000_00, typed_vat_minor=19_000_00)
    with pytest.raises(ValidationFailed):
        fixed.amount(list_price_minor=None, typed_minor=99_000_00)
    with pytest.raises(ValidationFailed, match="the tax is 1900000, not 1"):
        fixed.amount(list_price_minor=None, typed_minor=None, typed_vat_minor=1)
    listed = ServiceRules("list", "COP")
    assert listed.amount(list_price_minor=5_000_00, typed_minor=None) == (5_000_00, 0)
    with pytest.raises(ValidationFailed):
        listed.amount(list_price_minor=None, typed_minor=None)
    opened = ServiceRules("open", "COP", min_amount_minor=10_000_00, vat_basis_points=500)
    assert opened.amount(list_price_minor=None, typed_minor=10_000_01) == (10_000_01, 50_000)
    with pytest.raises(ValidationFailed, match="below the minimum"):
        opened.amount(list_price_minor=None, typed_minor=9_999_99)
    # VAT rounds half-up to the cent: 0.5 % of 1 cent is 0; 19 % of 3 cents is 0.57 -> 1.
    assert ServiceRules("open", "COP", vat_basis_points=1900).vat_for(3) == 1
    assert ServiceRules("open", "COP", vat_basis_points=50).vat_for(1) == 0
    with pytest.raises(ValidationFailed):
        ServiceRules("fixed", "COP")


@given(st.integers(1, 10**12), st.integers(0, 10_000))
def test_vat_property(base: int, bp: int) -> None:
    vat = ServiceRules("open", "COP", vat_basis_points=bp).vat_for(base)
    assert abs(vat * 10_000 - base * bp) <= 5_000


def test_portfolio_partial_payment() -> None:
    whole = ServiceRules("portfolio", "COP", partial_payment=False)
    assert whole.amount(list_price_minor=None, typed_minor=None, portfolio_total_minor=500) == (
        500,
        0,
    )
    with pytest.raises(ValidationFailed, match="does not accept partial"):
        whole.amount(list_price_minor=None, typed_minor=200, portfolio_total_minor=500)
    partial = ServiceRules("portfolio", "COP", partial_payment=True)
    assert partial.amount(list_price_minor=None, typed_minor=200, portfolio_total_minor=500) == (
        200,
        0,
    )
    with pytest.raises(ValidationFailed):
        partial.amount(list_price_minor=None, typed_minor=501, portfolio_total_minor=500)
    with pytest.raises(Conflict, match="no open debts"):
        partial.amount(list_price_minor=None, typed_minor=None, portfolio_total_minor=0)


def test_overdue_retries_limits_double_payment_means() -> None:
    due = date(2026, 3, 1)
    never = ServiceRules("open", "COP")
    assert never.overdue_ok(due, date(2026, 3, 1))
    assert not never.overdue_ok(due, date(2026, 3, 2))
    five = ServiceRules("open", "COP", overdue_days=5)
    assert five.overdue_ok(due, date(2026, 3, 6))
    assert not five.overdue_ok(due, date(2026, 3, 7))

    retries = ServiceRules("open", "COP", max_retries=2)
    retries.check_retry(2)
    with pytest.raises(Conflict, match="retried 2 times"):
        retries.check_retry(3)

    limited = ServiceRules(
        "open", "COP", daily_attempt_limit=3, daily_amount_limits={"PSE": 1_000_000}
    )
    limited.check_daily_attempts(2)
    with pytest.raises(Conflict, match="daily limit of 3 attempts"):
        limited.check_daily_attempts(3)
    limited.check_daily_amount("PSE", 400_000, 600_000)
    limited.check_daily_amount("CARD", 10**9, 10**9)
    with pytest.raises(Conflict, match="daily amount limit for PSE"):
        limited.check_daily_amount("PSE", 400_000, 600_001)

    assert ServiceRules("open", "COP", double_payment="warn").double_payment_outcome(True) == "warn"
    assert ServiceRules("open", "COP", double_payment="warn").double_payment_outcome(False) is None
    assert ServiceRules("open", "COP").double_payment_outcome(True) is None
    with pytest.raises(Conflict, match="already paid"):
        ServiceRules("open", "COP", double_payment="refuse").double_payment_outcome(True)

    card_only = ServiceRules("open", "COP", accepted_means=("CARD",))
    card_only.check_means("CARD")
    with pytest.raises(ValidationFailed):
        card_only.check_means("PSE")


# --- states -------------------------------------------------------------------------------


def test_state_machine() -> None:
    assert next_state(CREATED, PENDING) == PENDING
    assert next_state(CREATED, CAPTURED) == CAPTURED
    assert next_state(CREATED, EXPIRED) == EXPIRED
    for final in (OK, NOT_AUTHORIZED, FAILED, EXPIRED):
        assert next_state(PENDING, final) == final
    with pytest.raises(Conflict):
        next_state(PENDING, CAPTURED)
    with pytest.raises(Conflict):
        next_state(CREATED, OK)


@given(st.sampled_from(sorted(FINAL)), st.sampled_from(STATES))
def test_final_states_never_change(final: str, target: str) -> None:
    with pytest.raises(Conflict, match="a final state"):
        next_state(final, target)
