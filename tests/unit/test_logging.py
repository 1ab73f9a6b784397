"""The logging filter keeps national ids, names and secrets out of every log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from recaudo.logging import MaskingFilter, configure_logging, mask_text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("recaudo.test_logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("clear", "masked"),
    [
        ("12.345.678-5", "12*****85"),
        ("12345678-5", "12*****85"),
        ("123456785", "12*****85"),  # stored compact form: the check digit is right
        ("7.654.321-6", "76****16"),
        ("15.876.203-K", "15*****3K"),
        ("15876217k", "15*****7k"),
        ("12345678Z", "12*****8Z"),  # DNI-based NIF
        ("12345678-z", "12*****8z"),
        ("X1234567L", "X1*****7L"),  # NIE
        ("B12345678", "B1*****78"),  # CIF
        ("900.123.456-7", "90******67"),  # Colombian NIT
    ],
)
def test_national_ids_are_reduced_to_their_ends(clear: str, masked: str) -> None:
    assert mask_text(f"customer {clear} paid") == f"customer {masked} paid"


@pytest.mark.parametrize(
    "text",
    [
        "amount 150000 CLP",
        "payment 123456789 applied",  # nine digits whose last one is not a RUT check digit
        "at 2026-03-02T13:00:00Z",
        "debt B-100001 and import 42",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ],
)
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("clear", "masked"),
    [
        ("Authorization: Bearer rk_0a1b2c3d4e5f_Zm9vYmFyYmF6cXV4", "Authorization: Bearer ***"),
        ("authorization=bearer abc.def.ghi", "authorization=bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("key rk_0a1b2c3d4e5f_Zm9vYmFy-YmF6_cXV4 issued", "key rk_0a1b2c3d4e5f_*** issued"),
        (
            "postgresql+psycopg://recaudo:s3cr3t@db:5432/recaudo",
            "postgresql+psycopg://recaudo:***@db:5432/recaudo",
        ),
        ("password=hunter2 user=ana", "password=*** user=ana"),
        ('{"api_key": "abc123"}', '{"api_key": "***"}'),
        ("token: abc123", "token: ***"),
    ],
)
def test_secrets_never_print(clear: str, masked: str) -> None:
    assert mask_text(clear) == masked


def test_log_records_are_masked_including_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("payment by %s with %s", "12.345.678-5", "Bearer rk_0a1b2c3d4e5f_c2VjcmV0")
    line = stream.getvalue()
    assert "12.345.678-5" not in line
    assert "c2VjcmV0" not in line
    assert line.strip() == "INFO payment by 12*****85 with Bearer ***"


def test_tracebacks_are_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError("no customer X1234567L with password=abc")
    except ValueError:
        logger.exception("lookup failed")
    text = stream.getvalue()
    assert "Traceback" in text
    assert "X1234567L" not in text
    assert "password=abc" not in text
    assert "X1*****7L" in text


def test_structured_fields_are_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    handler = logger.handlers[0]
    handler.setFormatter(logging.Formatter("%(message)s %(national_id)s %(customer_name)s"))
    logger.info(
        "customer created",
        extra={"national_id": "12.345.678-5", "customer_name": "María José Rojas Soto"},
    )
    assert stream.getvalue().strip() == "customer created 12*****85 M*** J*** R*** S***"


def test_configure_logging_masks_records_from_any_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure_logging("INFO")
        configure_logging("INFO")  # idempotent: one handler, not two
        logging.getLogger("uvicorn.access").info(
            'GET /api/v1/customers?national_id=12345678-5 "Bearer rk_0a1b2c3d4e5f_abc"'
        )
        err = capsys.readouterr().err
        assert err.count("uvicorn.access") == 1
        assert "12345678-5" not in err
        assert "rk_0a1b2c3d4e5f_abc" not in err
        assert "national_id=12*****85" in err
    finally:
        for handler in list(root.handlers):
            if handler.get_name() == "recaudo":
                root.removeHandler(handler)
        root.handlers[:0] = [h for h in before[0] if h not in root.handlers]
        root.setLevel(before[1])


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("LOUD")
