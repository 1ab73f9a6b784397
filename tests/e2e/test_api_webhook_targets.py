"""The API refuses webhook and pass-through URLs on loopback, private or metadata
addresses (a 422 problem) unless the server allows private targets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Api, assert_problem
from tests.integration.receiver import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def strict(api: Api) -> Api:
    """The server with the default settings: private targets refused (the e2e fixture
    allows them, for its receivers on 127.0.0.1)."""
    api.container.settings.webhook_allow_private_targets = False
    return api


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://localhost:8000/api/v1/companies", "localhost is a loopback name"),
        ("http://10.1.2.3/hooks", "10.1.2.3 is a private address"),
        ("http://[fd12::1]/hooks", "fd12::1 is a private address"),
    ],
)
def test_registering_a_non_public_webhook_url_is_422(strict: Api, url: str, reason: str) -> None:
    problem = assert_problem(
        strict.client("acme_admin").post("/webhooks", json={"url": url}),
        422,
        "validation_failed",
        f"{reason}: webhook URLs must reach a public internet address",
    )
    assert [e["field"] for e in problem["errors"]] == ["url"]
    assert strict.client("acme_admin").get("/webhooks").json() == []


def test_the_setting_allows_the_loopback_receiver(strict: Api, receiver: Receiver) -> None:
    admin = strict.client("acme_admin")
    refused = admin.post("/webhooks", json={"url": f"{receiver.url}/hooks"})
    assert_problem(
        refused,
        422,
        "validation_failed",
        "127.0.0.1 is a loopback address: webhook URLs must reach a public internet address",
    )
    strict.container.settings.webhook_allow_private_targets = True
    created = admin.post("/webhooks", json={"url": f"{receiver.url}/hooks"})
    assert created.status_code == 201, created.text
    assert created.json()["url"] == f"{receiver.url}/hooks"


def test_a_non_public_passthrough_url_is_422(strict: Api) -> None:
    admin = strict.client("acme_admin")
    created = admin.post("/agreements", json={"channel": "caja-vecina", "convenio": "11223"})
    assert created.status_code == 201, created.text
    agreement_id = created.json()["id"]
    problem = assert_problem(
        admin.patch(
            f"/agreements/{agreement_id}",
            json={"passthrough_url": "http://169.254.169.254/latest/meta-data/"},
        ),
        422,
        "validation_failed",
        "169.254.169.254 is a link-local address: "
        "the pass-through URL must reach a public internet address",
    )
    assert [e["field"] for e in problem["errors"]] == ["passthrough_url"]
    refused = admin.post(
        "/agreements",
        json={
            "channel": "internet",
            "convenio": "44556",
            "passthrough_url": "http://127.0.0.1:9/deudas",
        },
    )
    assert_problem(refused, 422, "validation_failed")
    assert [a["channel"] for a in admin.get("/agreements").json()] == ["caja-vecina"]
    assert admin.get("/agreements").json()[0]["passthrough_url"] is None
