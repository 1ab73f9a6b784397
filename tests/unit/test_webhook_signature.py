"""The webhook signature: what Recaudo sends and what a receiver checks (no sockets)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from recaudo.adapters.webhooks import sign, verify_signature
from recaudo.services.webhooks import SendResult, backoff

SECRET = "whsec_test"
BODY = b'{"id":1,"type":"payment.applied","data":{"amount":"1500"}}'
T = 1_772_456_400


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == f"t={T},v1={expected}"


@pytest.mark.parametrize(
    ("header", "body", "now", "ok"),
    [
        (sign(SECRET, T, BODY), BODY, T, True),
        (sign(SECRET, T, BODY), BODY, T + 300, True),
        (sign(SECRET, T, BODY), BODY, T - 300, True),
        (sign(SECRET, T, BODY), BODY, T + 301, False),
        (sign(SECRET, T, BODY), BODY + b"\n", T, False),
        (sign("whsec_other", T, BODY), BODY, T, False),
        (sign(SECRET, T, BODY).replace(f"t={T}", f"t={T + 1}"), BODY, T, False),
        (f"v1=0,{sign(SECRET, T, BODY)}", BODY, T, True),  # any v1 may match
        (f"t={T}", BODY, T, False),
        (f"t=abc,v1={'0' * 64}", BODY, T, False),
        (f"t={T},t={T},v1={'0' * 64}", BODY, T, False),
        ("", BODY, T, False),
        ("garbage", BODY, T, False),
    ],
)
def test_verify_signature(header: str, body: bytes, now: int, ok: bool) -> None:
    assert verify_signature(SECRET, header, body, 300, now=now) is ok


def test_send_result_ok_only_for_2xx() -> None:
    assert [SendResult(code, None, 1).ok for code in (200, 204, 299, 300, 404, 500)] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert SendResult(None, "timeout", 10_000).ok is False


def test_backoff_doubles_from_ten_seconds_up_to_six_hours() -> None:
    waits = [int(backoff(n).total_seconds()) for n in range(1, 16)]
    assert waits == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        2560,
        5120,
        10240,
        20480,
        21600,
        21600,
        21600,
    ]
