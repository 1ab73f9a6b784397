"""Group commit: rows from many concurrent requests written in one transaction.

A debt query must record its quote before it answers, and one transaction per quote
costs a commit (and on SQLite the database's write lock) per request. Here requests
hand their row to one writer thread per process and wait; the thread writes whatever
has queued up meanwhile with one `executemany` per table in one transaction, then
wakes every waiter. Under load a batch holds tens of rows, so the commit and the
statement overhead are shared; an idle server writes each row at once (a batch of
one), so nobody waits for a timer. A batch that fails is retried row by row, so one
bad row fails only its own request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine, Table, insert

logger = logging.getLogger(__name__)

_Item = tuple[Table, dict[str, Any], Future[None]]


class GroupCommit:
    """One writer thread per process, started on first use."""

    def __init__(self, engine: Engine, *, max_batch: int = 500) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def insert(self, table: Table, values: dict[str, Any]) -> None:
        """Return once the row is committed; raise what writing it raised."""
        future: Future[None] = Future()
        self._ensure_started()
        self._queue.put((table, values, future))
        await asyncio.wrap_future(future)

    def insert_sync(self, table: Table, values: dict[str, Any]) -> None:
        future: Future[None] = Future()
        self._ensure_started()
        self._queue.put((table, values, future))
        future.result()

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="recaudo-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as error:
                if len(batch) == 1:
                    self._fail(batch[0], error)
                    continue
                logger.warning(
                    "group commit of %d rows failed; writing them one by one", len(batch)
                )
                for item in batch:
                    try:
                        self._write([item])
                    except Exception as single:
                        self._fail(item, single)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _write(self, batch: list[_Item]) -> None:
        by_table: dict[Table, list[dict[str, Any]]] = {}
        for table, values, _ in batch:
            by_table.setdefault(table, []).append(values)
        with self.engine.connect().execution_options(recaudo_write=True) as conn, conn.begin():
            for table, rows in by_table.items():
                conn.execute(insert(table), rows)

    @staticmethod
    def _fail(item: _Item, error: BaseException) -> None:
        future = item[2]
        if not future.done():
            future.set_exception(error)
