"""The batched access log: uvicorn's line, masked, written in one go per batch."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import Any

import pytest

from recaudo.api.access_log import MAX_PENDING_LINES, AccessLog, flush_all

LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} INFO    recaudo\.access: (?P<rest>.*)$"
)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/silent":  # the client went away before any answer
        return
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(path: str, query: bytes = b"", method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": query,
        "http_version": "1.1",
        "client": ("10.0.0.7", 51234),
    }


async def _noop_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _request(log: AccessLog, scope: dict[str, Any]) -> None:
    async def send(message: dict[str, Any]) -> None:
        pass

    await log(scope, _noop_receive, send)


@pytest.fixture(autouse=True)
def _info_level() -> Any:
    logger = logging.getLogger("recaudo.access")
    before = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(before)


def _lines(stream: io.StringIO) -> list[str]:
    out = []
    for line in stream.getvalue().splitlines():
        match = LINE.match(line)
        assert match, line
        out.append(match.group("rest"))
    return out


def test_lines_wait_for_the_batch_and_are_masked() -> None:
    stream = io.StringIO()
    log = AccessLog(_app, flush_after_s=0.05, stream=lambda: stream)

    async def run() -> None:
        await _request(log, _scope("/api/v1/customers", b"national_id=12.345.678-5"))
        await _request(log, _scope("/silent", method="POST"))
        assert stream.getvalue() == ""  # not yet: the batch is still open
        await asyncio.sleep(0.1)

    asyncio.run(run())
    assert _lines(stream) == [
        '10.0.0.7:51234 - "GET /api/v1/customers?national_id=12*****85 HTTP/1.1" 201',
        '10.0.0.7:51234 - "POST /silent HTTP/1.1" 0',
    ]


def test_a_full_batch_is_written_at_once_and_flush_all_empties_the_rest() -> None:
    stream = io.StringIO()
    log = AccessLog(_app, flush_after_s=60, stream=lambda: stream)

    async def run() -> None:
        for n in range(MAX_PENDING_LINES + 3):
            await _request(log, _scope(f"/r/{n}"))
        assert len(_lines(stream)) == MAX_PENDING_LINES
        flush_all()
        assert len(_lines(stream)) == MAX_PENDING_LINES + 3

    asyncio.run(run())
    assert _lines(stream)[-1] == f'10.0.0.7:51234 - "GET /r/{MAX_PENDING_LINES + 2} HTTP/1.1" 201'


def test_lifespan_shutdown_writes_what_is_pending() -> None:
    stream = io.StringIO()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.shutdown"
            return
        await _app(scope, receive, send)

    log = AccessLog(app, flush_after_s=60, stream=lambda: stream)

    async def shutdown() -> dict[str, Any]:
        return {"type": "lifespan.shutdown"}

    async def run() -> None:
        await _request(log, _scope("/a"))
        assert stream.getvalue() == ""

        async def send(message: dict[str, Any]) -> None:
            pass

        await log({"type": "lifespan"}, shutdown, send)

    asyncio.run(run())
    assert _lines(stream) == ['10.0.0.7:51234 - "GET /a HTTP/1.1" 201']


def test_warning_level_writes_nothing() -> None:
    logging.getLogger("recaudo.access").setLevel(logging.WARNING)
    stream = io.StringIO()
    log = AccessLog(_app, flush_after_s=0, stream=lambda: stream)

    async def run() -> None:
        await _request(log, _scope("/a"))
        await asyncio.sleep(0.01)

    asyncio.run(run())
    log.flush()
    assert stream.getvalue() == ""
