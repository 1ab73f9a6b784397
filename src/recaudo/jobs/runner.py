"""The in-process job runner: a daemon thread that sends due webhook deliveries.

`recaudo serve` starts one beside the API; `recaudo webhooks deliver` runs the same loop
in the foreground. Several runners (several servers on one PostgreSQL) are safe:
`deliver_due` claims each delivery with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import logging
import threading

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import HttpSender
from recaudo.bootstrap import Container
from recaudo.services import webhooks

logger = logging.getLogger("recaudo.jobs")


class Runner:
    """Calls `deliver_due` every `interval_s` seconds (at once again while work remains)."""

    def __init__(
        self,
        container: Container,
        *,
        interval_s: float = 1.0,
        sender: webhooks.WebhookSender | None = None,
        batch: int = 100,
    ) -> None:
        self.container = container
        self.interval_s = interval_s
        self.batch = batch
        self._own_sender = sender is None
        self.sender: webhooks.WebhookSender = sender or HttpSender()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One pass: try up to `batch` due deliveries; how many were tried."""
        return webhooks.deliver_due(
            UnitOfWork(self.container.engine),
            self.sender,
            self.container.clock,
            self.batch,
            max_attempts=self.container.settings.webhook_max_attempts,
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                tried = self.run_once()
            except Exception:  # a database hiccup must not kill the thread
                logger.exception("webhook delivery pass failed")
                tried = 0
            if tried < self.batch:
                self._stop.wait(self.interval_s)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the runner is already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="recaudo-jobs", daemon=True)
        self._thread.start()
        logger.info("job runner started (webhook deliveries every %.1f s)", self.interval_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the loop to end, wait for the attempt in flight (at most the send timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._own_sender and isinstance(self.sender, HttpSender):
            self.sender.close()
        logger.info("job runner stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
