"""Property-based checks of every operation in /api/openapi.json against the real server.

Schemathesis generates valid and invalid requests from the published schema; each answer
must be no 5xx, have a documented status and content type, and match its schema. Its
pytest plugin does not run under this pytest, so each operation's Hypothesis strategy
is driven by hand.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.e2e.conftest import Api

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode, checks  # noqa: E402

# Random ids mostly name nothing (404), so "valid data is accepted" does not hold here;
# these checks are the contract.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
EXAMPLES = 25  # per operation and mode: about 10 s per backend


def test_every_operation_honours_the_schema(api: Api) -> None:
    # Some data, so that generated ids and national ids sometimes hit real rows.
    juan = api.customer(api.acme, "12.345.678-5", "Juan Pérez")
    api.debt(api.acme, juan, "B-1", "5000", date(2026, 1, 5))
    api.debt(api.acme, juan, "B-2", "7000", date(2026, 2, 5))
    schema = schemathesis.openapi.from_url(f"{api.url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {api.keys['acme_admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid input to make.
                assert mode is GenerationMode.NEGATIVE
