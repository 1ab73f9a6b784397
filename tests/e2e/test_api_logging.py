"""What the server logs while serving the API: no API keys, no clear national ids or names."""

from __future__ import annotations

from datetime import date

from tests.e2e.conftest import Api, LogCapture


def test_access_and_error_logs_keep_personal_data_out(api: Api, logs: LogCapture) -> None:
    juan = api.customer(api.acme, "12.345.678-5", "Juan Pérez")
    api.debt(api.acme, juan, "B-1", "1000", date(2026, 1, 5))
    client = api.client()
    assert client.get("/customers", params={"national_id": "12.345.678-5"}).status_code == 200
    assert client.get("/customers", params={"national_id": "123456785"}).status_code == 200
    assert client.get("/customers", params={"q": "Juan Pérez"}).status_code == 200
    assert client.get("/customers", params={"national_id": "12.345.678-4"}).status_code == 422
    paid = client.post(
        "/payments",
        json={"national_id": "12.345.678-5", "amount": "1000", "method": "cash"},
        headers={"Idempotency-Key": "log-1"},
    )
    assert paid.status_code == 201
    bad_key = api.client(None, Authorization=f"Bearer {api.keys['acme_admin']}x")
    assert bad_key.get("/company").status_code == 401

    log = logs.readouterr().err
    assert "GET /api/v1/customers?national_id=12*****85 HTTP/1.1" in log  # access log, masked
    assert "GET /api/v1/customers?q=*** HTTP/1.1" in log
    for secret in [
        "12.345.678-5",
        "123456785",
        "12.345.678-4",
        "Juan",
        "P%C3%A9rez",
        "Pérez",
        api.keys["acme_admin"].split("_", 2)[2][:16],
    ]:
        assert secret not in log, secret
