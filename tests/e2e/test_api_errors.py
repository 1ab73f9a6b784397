"""Bad input gets an RFC 9457 problem, never a 500: paths, JSON, amounts, sizes, failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from recaudo.adapters.db.engine import make_engine
from recaudo.api import create_app
from recaudo.bootstrap import Container
from recaudo.config import Settings
from tests.e2e.conftest import MAX_UPLOAD_BYTES, Api, LogCapture, Server, assert_problem


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("/customers/abc", "customer_id", "unable to parse string as an integer"),
        ("/customers/0", "customer_id", "greater than or equal to 1"),
        ("/customers/99999999999999999999", "customer_id", "less than or equal to"),
        ("/debts/1.5", "debt_id", "unable to parse string as an integer"),
        ("/payments/-1", "payment_id", "greater than or equal to 1"),
        ("/imports/x1", "import_id", "unable to parse string as an integer"),
        ("/debts?status=unpaid", "status", "Input should be 'open'"),
        ("/debts?due_before=2026-02-30", "due_before", "valid date"),
        ("/payments?paid_from=2026-01-01T00:00:00", "paid_from", "timezone info"),
        ("/customers/1/debts?status=nope", "status", "Input should be 'open'"),
        ("/audit-events?since=yesterday", "since", "valid datetime"),
    ],
)
def test_malformed_parameters(api: Api, path: str, field: str, message: str) -> None:
    body = assert_problem(api.client().get(path), 422, "invalid_request")
    assert [e["field"] for e in body["errors"]] == [field]
    assert message in body["errors"][0]["message"]
    assert body["detail"] == f"{field}: {body['errors'][0]['message']}"


def test_unknown_route_and_method(api: Api) -> None:
    client = api.client()
    assert_problem(
        client.get("/nothing-here"), 404, "not_found", "no resource at /api/v1/nothing-here"
    )
    with httpx.Client(base_url=api.url) as bare:
        assert_problem(bare.get("/favicon.ico"), 404, "not_found")
    response = client.delete("/payments/1")
    assert_problem(
        response, 405, "method_not_allowed", "DELETE is not allowed on /api/v1/payments/1"
    )
    assert response.headers["allow"] == "GET"


def test_unknown_objects_are_404(api: Api) -> None:
    client = api.client()
    assert_problem(client.get("/customers/7"), 404, "not_found", "no customer 7")
    assert_problem(client.get("/customers/7/debts"), 404, "not_found", "no customer 7")
    assert_problem(client.get("/debts/7"), 404, "not_found", "no debt 7")
    assert_problem(client.get("/payments/7"), 404, "not_found", "no payment 7")
    assert_problem(
        client.post("/payments/7/reverse", json={"reason": "x"}), 404, "not_found", "no payment 7"
    )


GOOD = {"customer_id": 1, "amount": "1000", "method": "cash", "idempotency_key": "k"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"amount": 1000}, "amount", "Input should be a valid string"),
        ({"amount": 10.5}, "amount", "Input should be a valid string"),
        ({"amount": "-5"}, "amount", "String should match pattern"),
        ({"amount": "1e3"}, "amount", "String should match pattern"),
        ({"amount": "NaN"}, "amount", "String should match pattern"),
        ({"method": "bitcoin"}, "method", "Input should be 'cash'"),
        ({"customer_id": "1"}, "customer_id", "Input should be a valid integer"),
        ({"customer_id": 1.5}, "customer_id", "Input should be a valid integer"),
        ({"debt_ids": "B-1"}, "debt_ids", "Input should be a valid list"),
        ({"debt_ids": [1]}, "debt_ids.0", "Input should be a valid string"),
        ({"debt_ids": [""]}, "debt_ids.0", "at least 1 character"),
        ({"paid_at": "2026-03-02T10:00:00"}, "paid_at", "timezone info"),
        ({"idempotency_key": "x" * 101}, "idempotency_key", "at most 100 characters"),
        ({"idempotency_key": "a\x00b"}, "idempotency_key", "NUL characters"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
        ({"national_id": "12.345.678-5"}, "body", "exactly one of customer_id and national_id"),
    ],
)
def test_wrong_payment_bodies(api: Api, change: dict[str, Any], field: str, message: str) -> None:
    response = api.client().post("/payments", json={**GOOD, **change})
    body = assert_problem(response, 422, "invalid_request")
    assert [e["field"] for e in body["errors"]] == [field]
    assert message in body["errors"][0]["message"]


def test_missing_and_non_json_bodies(api: Api) -> None:
    client = api.client()
    invalid = client.post(
        "/payments", content=b'{"amount": ', headers={"Content-Type": "application/json"}
    )
    body = assert_problem(invalid, 422, "invalid_request")
    assert body["errors"] == [
        {"field": "body", "message": "the body is not valid JSON: Expecting value"}
    ]
    missing = assert_problem(client.post("/payments"), 422, "invalid_request")
    assert missing["errors"] == [{"field": "body", "message": "Field required"}]
    not_an_object = assert_problem(client.post("/payments", json=[1, 2]), 422, "invalid_request")
    assert [e["field"] for e in not_an_object["errors"]] == ["body"]


def test_invalid_national_ids(api: Api) -> None:
    client = api.client()
    payment = client.post(
        "/payments",
        json={"national_id": "12.345.678-4", "amount": "100", "method": "cash"},
        headers={"Idempotency-Key": "n-1"},
    )
    assert_problem(
        payment, 422, "invalid_national_id", "'12.345.678-4' has a wrong check digit for RUT"
    )
    search = client.get("/customers", params={"national_id": "12.345.678-4"})
    body = assert_problem(
        search, 422, "validation_failed", "'12.345.678-4' is not a valid national id"
    )
    assert body["errors"] == [
        {"field": "national_id", "message": "'12.345.678-4' is not a valid national id"}
    ]
    unknown = client.post(
        "/payments",
        json={"national_id": "11.111.111-1", "amount": "100", "method": "cash"},
        headers={"Idempotency-Key": "n-2"},
    )
    assert_problem(unknown, 404, "not_found", "no customer with RUT 11*****11")


def test_idempotency_key_required_and_consistent(api: Api) -> None:
    client = api.client()
    body = {"customer_id": 1, "amount": "100", "method": "cash"}
    missing = assert_problem(client.post("/payments", json=body), 422, "validation_failed")
    assert missing["errors"] == [
        {
            "field": "idempotency_key",
            "message": "an office payment needs an idempotency key (header or body)",
        }
    ]
    differ = client.post(
        "/payments", json={**body, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"}
    )
    assert_problem(
        differ, 422, "validation_failed", "the Idempotency-Key header and idempotency_key differ"
    )


def test_reverse_needs_a_reason(api: Api) -> None:
    client = api.client()
    body = assert_problem(client.post("/payments/1/reverse", json={}), 422, "invalid_request")
    assert body["errors"] == [{"field": "reason", "message": "Field required"}]
    blank = client.post("/payments/1/reverse", json={"reason": "   "})
    # Passes the schema (not empty), then the service finds no payment before the reason.
    assert blank.status_code in (404, 422)


def test_declared_oversized_body_is_413(api: Api) -> None:
    payload = b'{"reason": "' + b"x" * MAX_UPLOAD_BYTES + b'"}'
    response = api.client().post(
        "/payments/1/reverse", content=payload, headers={"Content-Type": "application/json"}
    )
    assert_problem(
        response,
        413,
        "content_too_large",
        f"the request body is larger than {MAX_UPLOAD_BYTES} bytes",
    )


def test_streamed_oversized_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"reason": "'
        for _ in range(8):
            yield b"x" * (MAX_UPLOAD_BYTES // 4)
        yield b'"}'

    # A generator body goes out chunked, without Content-Length: the server must count.
    response = api.client().post(
        "/payments/1/reverse", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "content_too_large")


def test_declared_oversized_upload_is_413(api: Api) -> None:
    files = {"file": ("big.csv", b"x" * (MAX_UPLOAD_BYTES + 1), "text/csv")}
    response = api.client().post("/imports", files=files, data={"mode": "upsert"})
    assert "content-length" in response.request.headers
    assert_problem(response, 413, "content_too_large")
    # Refused on its Content-Length: not a byte of it reached the disk.
    assert not (api.container.settings.data_dir / "uploads").exists()


def test_streamed_oversized_upload_is_413_and_leaves_no_file(api: Api) -> None:
    boundary = "recaudo-test-boundary"

    def multipart() -> Iterator[bytes]:
        yield (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="mode"\r\n\r\nupsert\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        for _ in range(8):
            yield b"x" * (MAX_UPLOAD_BYTES // 4)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = api.client().post(
        "/imports",
        content=multipart(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "content_too_large")
    uploads = api.container.settings.data_dir / "uploads"
    assert uploads.is_dir()  # the upload had started streaming to disk...
    assert list(uploads.iterdir()) == []  # ...and its partial file is gone


@pytest.fixture
def failing_server(
    serve: Callable[[Callable[[FastAPI], None] | None], tuple[Server, Container]],
) -> Server:
    def add_failing_route(app: FastAPI) -> None:
        def explode() -> None:
            raise RuntimeError("connection to db-internal.example:5432 refused, rut 12.345.678-5")

        app.add_api_route("/api/v1/explode", explode)

    server, _ = serve(add_failing_route)
    return server


def test_unexpected_error_is_a_bare_500(failing_server: Server, logs: LogCapture) -> None:
    with httpx.Client(base_url=failing_server.url) as client:
        response = client.get("/api/v1/explode")
    body = assert_problem(
        response,
        500,
        "internal_error",
        "the server failed to handle this request; quote the error id to support",
    )
    assert body["instance"] == f"urn:uuid:{body['error_id']}"
    assert "db-internal" not in response.text and "Traceback" not in response.text
    log = logs.readouterr().err
    assert f"unexpected error {body['error_id']} on GET /api/v1/explode" in log
    assert "RuntimeError" in log and "explode" in log  # the traceback stays server-side
    assert "12.345.678-5" not in log  # masked by the logging filter


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    # Nothing listens on the discard port: connecting is refused at once.
    url = "postgresql+psycopg://recaudo@127.0.0.1:9/recaudo"
    container = Container(
        settings=Settings(database_url=url, data_dir=tmp_path), engine=make_engine(url)
    )
    server = Server(create_app(container))
    server.start()
    try:
        with httpx.Client(base_url=server.url) as client:
            response = client.get("/healthz")
    finally:
        server.stop()
        container.engine.dispose()
    assert_problem(response, 503, "unavailable", "the database is not reachable")
