"""The file-exchange job: polls company inboxes and writes their outboxes' daily files.

Called every `EVERY_S` seconds; each exchange decides whether it is due (an inbox every
`poll_seconds`, an outbox once a day at `write_time`, company local time). Two servers
running it at once are safe: the services claim each poll and each file first
(`services.file_exchange`).
"""

from __future__ import annotations

from recaudo.bootstrap import Container
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import file_exchange

EVERY_S = 10.0


def run(container: Container) -> int:
    return file_exchange.run_due(
        container.uow(), settings=container.settings, clock=container.clock
    )


EXCHANGE_JOB = PeriodicJob("file-exchange", EVERY_S, run)
