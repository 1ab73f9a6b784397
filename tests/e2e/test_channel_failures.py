"""An internal failure answers the bank's own error code and is recorded as an incident."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from recaudo.services import collections_online
from tests.e2e.bank import (  # noqa: F401 (the fixture)
    INTERNAL,
    JUANA_RUT,
    Bank,
    bank_fixture,
    paid_body,
)
from tests.e2e.conftest import LogCapture

NOTIFY_INTERNAL = {"resultado": "Ha ocurrido un error", "codigo_resultado": 2003}


def _boom(*args: Any, **kwargs: Any) -> NoReturn:
    raise RuntimeError("database on fire 10379613-K")


async def _async_boom(*args: Any, **kwargs: Any) -> NoReturn:
    _boom()


@pytest.mark.parametrize("shape", ["bank", "canonical/"])
def test_internal_failures(
    bank: Bank, shape: str, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    quote = bank.quote(JUANA_RUT, shape)
    monkeypatch.setattr(collections_online.OnlineChannel, "quote", _async_boom)
    monkeypatch.setattr(collections_online.OnlineChannel, "notify", _async_boom)
    response = bank.query(JUANA_RUT, shape)
    assert (response.status_code, response.json()) == (200, INTERNAL)
    assert response.headers["content-type"] == "application/json"
    notified = bank.notify(paid_body(quote), shape)
    assert (notified.status_code, notified.json()) == (200, NOTIFY_INTERNAL)
    incidents = bank.api.client().get("/incidents").json()["items"]
    assert [(i["kind"], i["cause"], i["agreement_id"]) for i in incidents] == [
        (
            "internal_error",
            "RuntimeError while answering the bank",
            bank.agreements["caja-vecina"].id,
        )
    ] * 2
    bank.settings("caja-vecina", errors_as_http_200=False)
    assert bank.query(JUANA_RUT, shape).status_code == 503
    assert bank.notify(paid_body(quote), shape).status_code == 500
    err = logs.readouterr().err
    assert "debt query failed (RuntimeError)" in err
    assert "payment notification failed (RuntimeError)" in err
    assert "10379613" not in err and bank.secrets["caja-vecina"] not in err
