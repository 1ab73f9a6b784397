"""File delivery jobs: send due deliveries (SFTP, e-mail, local) and apply retention.

`DELIVERY_JOB` runs every `EVERY_S` seconds and tries up to `BATCH` due deliveries, each
claimed with `FOR UPDATE SKIP LOCKED` (`services.deliveries.deliver_due`), so several
servers never send one twice. `RETENTION_JOB` removes delivered files past their target's
retention; it runs hourly (retention is counted in days, and a pass with nothing aged is
two queries) and is idempotent, so two servers running it at once are safe.
"""

from __future__ import annotations

from recaudo.bootstrap import Container
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import deliveries
from recaudo.services.context import Actor

EVERY_S = 5.0
BATCH = 10
RETENTION_EVERY_S = 3600.0
RETENTION_ACTOR = Actor("system:retention")


def run_deliveries(container: Container) -> int:
    return deliveries.deliver_due(container.uow(), container.settings, container.clock, BATCH)


def run_retention(container: Container) -> int:
    result = deliveries.purge(
        container.uow(), container.settings, container.clock, actor=RETENTION_ACTOR
    )
    return result.remote_removed + result.local_removed


DELIVERY_JOB = PeriodicJob("deliveries", EVERY_S, run_deliveries)
RETENTION_JOB = PeriodicJob("delivery-retention", RETENTION_EVERY_S, run_retention)
