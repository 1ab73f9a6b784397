"""Delivery targets and deliveries through the admin API (real HTTP), with a real SFTP
server on loopback: the secret is write-only, never answered and never logged."""

from __future__ import annotations

from datetime import date
from typing import Any

from recaudo.adapters.db.tables import SettlementFile
from recaudo.services import agreements, deliveries, storage
from recaudo.services.context import Actor
from tests.e2e.conftest import ROOT_ACTOR, TIMESTAMP, Api, LogCapture, assert_problem
from tests.integration.sftp_server import SftpServer, sftp_server  # noqa: F401

DATA = "Ñuñoa;12345\r\n".encode("latin-1")


def sftp_body(server: SftpServer, agreement_id: int | None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "banco-sftp",
        "kind": "sftp",
        "agreement_id": agreement_id,
        "settings": server.target_settings("/in"),
        "secret": server.password,
    }
    body.update(kw)
    return body


def add_settlement_file(api: Api, agreement_id: int, name: str) -> SettlementFile:
    path = f"files/settlements/{name}"
    sha = storage.store_bytes(api.container.settings.data_dir, path, DATA)
    with api.uow:
        sf = SettlementFile(
            company_id=api.acme.id,
            agreement_id=agreement_id,
            accounting_date=date(2026, 3, 2),
            version=1,
            layout="bancoestado-rendicion",
            file_name=name,
            sha256=sha,
            size_bytes=len(DATA),
            payment_count=1,
            record_count=1,
            total_minor=12345,
            currency="CLP",
            storage_path=path,
            status="generated",
            generated_by="test",
            generated_at=api.clock(),
        )
        api.uow.session.add(sf)
        api.uow.session.flush()
        deliveries.enqueue_settlement_file(api.uow, sf, actor=Actor("test"), clock=api.clock)
        api.uow.commit()
    return sf


def test_targets_and_deliveries_over_http(
    api: Api,
    sftp_server: SftpServer,  # noqa: F811
    logs: LogCapture,
) -> None:
    (sftp_server.root / "in").mkdir()
    agreement = agreements.create_agreement(
        api.uow, "acme", "caja-vecina", "4321", actor=ROOT_ACTOR, clock=api.clock
    ).agreement
    admin, operator = api.client("acme_admin"), api.client("acme_operator")
    auditor, beta = api.client("acme_auditor"), api.client("beta_admin")

    created = admin.post("/delivery-targets", json=sftp_body(sftp_server, agreement.id))
    assert created.status_code == 201, created.text
    target = created.json()
    assert target == {
        "id": target["id"],
        "agreement_id": agreement.id,
        "name": "banco-sftp",
        "kind": "sftp",
        "settings": {
            "host": "127.0.0.1",
            "port": sftp_server.port,
            "username": "bank",
            "auth": "password",
            "host_key": sftp_server.host_key,
            "directory": "/in",
        },
        "has_secret": True,
        "retention_days": 60,
        "enabled": True,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    tid = target["id"]
    for client in (admin, operator, auditor):
        assert client.get(f"/delivery-targets/{tid}").json() == target
        assert client.get("/delivery-targets").json() == [target]
    assert_problem(beta.get(f"/delivery-targets/{tid}"), 404, "not_found")
    assert beta.get("/delivery-targets").json() == []
    assert_problem(
        operator.post("/delivery-targets", json=sftp_body(sftp_server, None, name="x")),
        403,
        "permission_denied",
    )
    assert_problem(
        auditor.post("/delivery-targets", json=sftp_body(sftp_server, None, name="x")),
        403,
        "permission_denied",
    )
    assert_problem(
        admin.post("/delivery-targets", json=sftp_body(sftp_server, agreement.id)),
        409,
        "conflict",
    )
    bad = admin.post(
        "/delivery-targets",
        json=sftp_body(
            sftp_server, None, name="y", settings={**sftp_server.target_settings(), "host": ""}
        ),
    )
    assert assert_problem(bad, 422, "validation_failed")["errors"] == [
        {"field": "settings.host", "message": "host is required"}
    ]
    leaked = admin.post(
        "/delivery-targets",
        json=sftp_body(
            sftp_server,
            None,
            name="y",
            settings={**sftp_server.target_settings(), "password": "in-the-settings-pw"},
        ),
    )
    assert_problem(leaked, 422, "validation_failed")
    assert "in-the-settings-pw" not in leaked.text
    not_text = admin.post(
        "/delivery-targets", json=sftp_body(sftp_server, None, name="z", secret=12345678)
    )
    assert_problem(not_text, 422, "invalid_request")
    assert "12345678" not in not_text.text
    assert_problem(
        admin.post("/delivery-targets", json=sftp_body(sftp_server, 999999, name="w")),
        404,
        "not_found",
    )

    # Test the connection: up, then down.
    assert operator.post(f"/delivery-targets/{tid}/test").json() == {
        "ok": True,
        "detail": f"sftp://bank@127.0.0.1:{sftp_server.port}/in: connected, 0 file(s) there",
    }
    sftp_server.stop()
    assert operator.post(f"/delivery-targets/{tid}/test").json() == {
        "ok": False,
        "detail": f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: "
        "connection refused",
    }
    sftp_server.start()
    assert_problem(auditor.post(f"/delivery-targets/{tid}/test"), 403, "permission_denied")

    # A settlement file is delivered; its delivery and attempts are listed.
    sf = add_settlement_file(api, agreement.id, "R_20260302.txt")
    assert deliveries.deliver_due(api.uow, api.container.settings, api.clock) == 1
    assert (sftp_server.root / "in" / "R_20260302.txt").read_bytes() == DATA
    page = auditor.get("/deliveries", params={"status": "delivered"}).json()
    assert page["total"] == 1
    [item] = page["items"]
    assert item["file_name"] == "R_20260302.txt"
    assert item["settlement_file_id"] == sf.id
    assert item["remote_path"] == "/in/R_20260302.txt"
    assert item["target_name"] == "banco-sftp"
    did = item["id"]
    assert auditor.get("/deliveries", params={"status": "failed"}).json()["total"] == 0
    assert auditor.get("/deliveries", params={"settlement_file_id": sf.id}).json()["total"] == 1
    detail = auditor.get(f"/deliveries/{did}").json()
    assert [(a["ok"], a["error"]) for a in detail["attempt_log"]] == [(True, None)]
    assert_problem(beta.get(f"/deliveries/{did}"), 404, "not_found")
    assert_problem(beta.post(f"/deliveries/{did}/redeliver"), 404, "not_found")

    # Re-delivery on demand, by delivery and by settlement file.
    (sftp_server.root / "in" / "R_20260302.txt").unlink()
    again = operator.post(f"/deliveries/{did}/redeliver")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    assert again.json()["attempts"] == 0
    assert deliveries.deliver_due(api.uow, api.container.settings, api.clock) == 1
    assert (sftp_server.root / "in" / "R_20260302.txt").read_bytes() == DATA
    by_file = operator.post(f"/settlements/{sf.id}/redeliver")
    assert [d["id"] for d in by_file.json()] == [did]
    assert_problem(auditor.post(f"/settlements/{sf.id}/redeliver"), 403, "permission_denied")
    assert_problem(beta.post(f"/settlements/{sf.id}/redeliver"), 404, "not_found")
    assert deliveries.deliver_due(api.uow, api.container.settings, api.clock) == 1
    log = auditor.get(f"/deliveries/{did}").json()["attempt_log"]
    assert [a["ok"] for a in log] == [True, True, True]

    # Change the secret (write-only) and the settings; disable; remove.
    patched = admin.patch(
        f"/delivery-targets/{tid}",
        json={"secret": "a-new-pa55word", "settings": {"timeout_s": 10}, "retention_days": 30},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["has_secret"] is True
    assert patched.json()["settings"]["timeout_s"] == 10.0
    assert patched.json()["retention_days"] == 30
    assert "a-new-pa55word" not in patched.text
    assert (
        operator.post(f"/delivery-targets/{tid}/test")
        .json()["detail"]
        .endswith("login refused (permission denied)")
    )
    assert_problem(admin.delete(f"/delivery-targets/{tid}"), 409, "conflict")
    disabled = admin.patch(f"/delivery-targets/{tid}", json={"enabled": False})
    assert disabled.json()["enabled"] is False
    assert_problem(operator.post(f"/deliveries/{did}/redeliver"), 409, "conflict")
    # A local directory is the server's own: only its operator (the CLI) names one.
    assert_problem(
        admin.post(
            "/delivery-targets",
            json={"name": "carpeta", "kind": "local", "settings": {"directory": "/etc"}},
        ),
        422,
        "validation_failed",
        "local directory targets name the server's own directories: the server's operator "
        "sets them with `recaudo delivery target add --kind local`",
    )
    spare = admin.post(
        "/delivery-targets",
        json={"name": "correo", "kind": "email", "settings": {"host": "smtp.example.com",
              "from": "recaudo@example.com", "recipients": ["tesoreria@example.com"]}},
    )  # fmt: skip
    assert spare.status_code == 201, spare.text
    assert spare.json()["has_secret"] is False
    assert admin.delete(f"/delivery-targets/{spare.json()['id']}").status_code == 204
    assert_problem(admin.get(f"/delivery-targets/{spare.json()['id']}"), 404, "not_found")

    # Never a secret in the logs (request logs included).
    captured = logs.readouterr()
    text = captured.out + captured.err
    assert "delivery" in text  # the log was captured at all
    for secret in (sftp_server.password, "a-new-pa55word", "in-the-settings-pw"):
        assert secret not in text
