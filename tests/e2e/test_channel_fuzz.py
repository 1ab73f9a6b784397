"""Fuzzing both BancoEstado endpoints through the real server: no 5xx, never an internal error.

Hypothesis generates query strings and bodies, from raw bytes to nearly valid payment
notifications with one field mutated; every answer must be one of the contract's own,
and, the company being available, never "internal error" (1002 / 2003).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.bank import (  # noqa: F401 (the fixture)
    INVALID_QUERY,
    INVALID_REQUEST,
    JUANA_RUT,
    NO_DEBT,
    NOT_FOUND,
    OK,
    Bank,
    bank_fixture,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
QUERY_ERRORS = [INVALID_QUERY, NOT_FOUND, NO_DEBT]
QUOTE_KEYS = {
    "transaccion",
    "rut_cliente",
    "vencimiento",
    "facturas_pagar",
    "id_facturas",
    "nombre",
    "total",
}

texts = st.text(max_size=40)
ruts = st.one_of(
    texts,
    st.sampled_from([JUANA_RUT, "10.379.613-k", "10379613", "7654321-6", "12345678-5"]),
    st.from_regex(r"\A[0-9.]{1,12}-?[0-9kK]?\Z"),
)
params = st.dictionaries(
    st.one_of(st.sampled_from(["type", "rut_cliente", "token"]), texts),
    st.one_of(texts, ruts, st.just("String")),
    max_size=4,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "fecha-pago",
    "transaccion",
    "rut_cliente",
    "vencimiento",
    "facturas_pagar",
    "id_facturas",
    "nombre",
    "total",
]


def _near_valid(field: str, value: Any, transaction: str) -> bytes:
    body: dict[str, Any] = {
        "fecha-pago": "2026-03-02 10:00",
        "transaccion": transaction,
        "rut_cliente": JUANA_RUT,
        "vencimiento": "2026-01-10",
        "facturas_pagar": 2,
        "id_facturas": [134371, 134372],
        "nombre": "Juana",
        "total": "4000.00",
    }
    body[field] = value
    return json.dumps(body).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(
        _near_valid,
        st.sampled_from(FIELDS),
        st.one_of(json_values, ruts, st.from_regex(r"\A[0-9]{1,8}([.,][0-9]{0,3})?\Z")),
        st.uuids().map(str),
    ),
)


def test_query_fuzz(bank: Bank) -> None:
    @FUZZ
    @given(query=params, shape=st.sampled_from(["bank", "bank/", "canonical", "canonical/"]))
    def check(query: dict[str, str], shape: str) -> None:
        response = bank.http.get(bank.url(shape, "query"), params=query, headers=bank.auth())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body in QUERY_ERRORS or set(body) == QUOTE_KEYS, body

    check()


def test_notification_fuzz(bank: Bank) -> None:
    @FUZZ
    @given(body=bodies, shape=st.sampled_from(["bank", "bank/", "canonical", "canonical/"]))
    def check(body: bytes, shape: str) -> None:
        response = bank.notify(body, shape, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json() in (OK, INVALID_REQUEST)

    check()
    # Whatever was accepted was recorded whole: every payment's money is accounted for.
    for payment in bank.api.client().get("/payments", params={"page_size": 500}).json()["items"]:
        allocated = sum(int(a["amount"]) for a in payment["allocations"])
        if payment["status"] == "applied":
            assert allocated + int(payment["credit"]) == int(payment["amount"]), payment
