"""A company admin cannot aim an SFTP or e-mail delivery target at the operator's network
through the API (SSRF): 422 on create and update, and the connection test refuses a target
to a private address once the operator turns `delivery_allow_private_targets` off."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Api, assert_problem
from tests.integration.sftp_server import SftpServer, sftp_server  # noqa: F401


def sftp_body(server: SftpServer, host: str | None = None, **kw: Any) -> dict[str, Any]:
    settings = server.target_settings("/")
    if host is not None:
        settings["host"] = host
    body: dict[str, Any] = {
        "name": "banco-sftp",
        "kind": "sftp",
        "settings": settings,
        "secret": server.password,
    }
    body.update(kw)
    return body


def mail_body(host: str) -> dict[str, Any]:
    return {
        "name": "banco-mail",
        "kind": "email",
        "settings": {
            "host": host,
            "from": "recaudo@example.test",
            "recipients": ["tesoreria@bank.example"],
        },
    }


def test_private_and_metadata_hosts_are_refused_over_http(
    api: Api,
    sftp_server: SftpServer,  # noqa: F811
) -> None:
    api.container.settings.delivery_allow_private_targets = False
    admin, operator = api.client("acme_admin"), api.client("acme_operator")

    for host in ("127.0.0.1", "10.0.0.5", "169.254.169.254", "[::1]", "localhost"):
        for body in (sftp_body(sftp_server, host), mail_body(host)):
            problem = assert_problem(
                admin.post("/delivery-targets", json=body), 422, "validation_failed"
            )
            [error] = problem["errors"]
            assert error["field"] == "settings.host"
            assert "must reach a public internet address" in error["message"]
    assert admin.get("/delivery-targets").json() == []

    # The operator allows private hosts (one company, an internal server): created and
    # tested; cloud metadata stays refused.
    api.container.settings.delivery_allow_private_targets = True
    created = admin.post("/delivery-targets", json=sftp_body(sftp_server))
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert operator.post(f"/delivery-targets/{tid}/test").json()["ok"] is True
    metadata = assert_problem(
        admin.post("/delivery-targets", json=mail_body("169.254.169.254")),
        422,
        "validation_failed",
    )
    assert metadata["errors"][0]["message"].startswith("169.254.169.254 is a link-local address")

    # Turned off again: the test connects to nothing and says why, secret-free; a new
    # private host is refused, other changes are not.
    api.container.settings.delivery_allow_private_targets = False
    answer = operator.post(f"/delivery-targets/{tid}/test").json()
    assert answer == {
        "ok": False,
        "detail": f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} refused: "
        "127.0.0.1 is a loopback address (delivery targets must reach a public internet "
        "address)",
    }
    assert sftp_server.password not in str(answer)
    changed = admin.patch(f"/delivery-targets/{tid}", json={"settings": {"host": "10.0.0.5"}})
    assert assert_problem(changed, 422, "validation_failed")["errors"][0]["field"] == (
        "settings.host"
    )
    renamed = admin.patch(f"/delivery-targets/{tid}", json={"name": "old-sftp", "enabled": False})
    assert renamed.status_code == 200, renamed.text
