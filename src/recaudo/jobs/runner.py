"""The in-process job runner: a daemon thread that sends due webhook deliveries and runs
the periodic jobs (`recaudo.jobs.schedule`).

`recaudo serve` starts one beside the API; `recaudo webhooks deliver` runs the same loop
in the foreground. Several runners (several servers on one PostgreSQL) are safe:
`deliver_due` claims each delivery with `FOR UPDATE SKIP LOCKED`, and every periodic job
must be safe to run twice at once (claim its work the same way, or be idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.webhooks import HttpSender
from recaudo.bootstrap import Container
from recaudo.services import webhooks

logger = logging.getLogger("recaudo.jobs")


@dataclass(frozen=True)
class PeriodicJob:
    """Work the runner does every `every_s` seconds: `run` gets the container and returns
    how much it did (for the log). Jobs that act at a time of day (the daily settlement at
    18:30) are called often and decide themselves whether something is due."""

    name: str
    every_s: float
    run: Callable[[Container], int]


class Runner:
    """Calls `deliver_due` every `interval_s` seconds (at once again while work remains)."""

    def __init__(
        self,
        container: Container,
        *,
        interval_s: float = 1.0,
        sender: webhooks.WebhookSender | None = None,
        batch: int = 100,
        periodic: Sequence[PeriodicJob] | None = None,
    ) -> None:
        if periodic is None:
            from recaudo.jobs.schedule import PERIODIC_JOBS

            periodic = PERIODIC_JOBS
        self.periodic = tuple(periodic)
        self._next_run = {job.name: 0.0 for job in self.periodic}
        self.container = container
        self.interval_s = interval_s
        self.batch = batch
        self._own_sender = sender is None
        self.sender: webhooks.WebhookSender = sender or HttpSender(
            allow_private=container.settings.webhook_allow_private_targets
        )
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

    def run_periodic(self, *, force: bool = False) -> dict[str, int]:
        """Run the periodic jobs that are due (all of them with `force`); what each did."""
        done: dict[str, int] = {}
        for job in self.periodic:
            now = time.monotonic()
            if not force and now < self._next_run[job.name]:
                continue
            self._next_run[job.name] = now + job.every_s
            try:
                done[job.name] = job.run(self.container)
            except Exception:  # one failing job must not stop the others or the thread
                logger.exception("periodic job %s failed", job.name)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                tried = self.run_once()
            except Exception:  # a database hiccup must not kill the thread
                logger.exception("webhook delivery pass failed")
                tried = 0
            self.run_periodic()
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
