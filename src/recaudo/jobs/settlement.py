"""The daily settlement job: each agreement's file, once its accounting date has closed.

Runs every minute; for every agreement with `settlement_enabled` it writes the file of each
business day whose local time has passed the agreement's `settlement_time` (and cut-off)
and has no file yet, catching up days missed while no server ran (up to a week back).

Two servers running it at once are safe: `generate_settlement` is idempotent (the same
bytes give no new version, and the version number is unique per agreement and date), so
the second one finds the first one's file.
"""

from __future__ import annotations

import logging
import time as monotonic_time

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.domain.errors import RecaudoError
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import incidents, settlements
from recaudo.services.context import Actor, Role

logger = logging.getLogger("recaudo.jobs.settlement")

JOB_ACTOR = Actor("job:settlement", Role.OPERATOR)
SETTLEMENT_FAILED = "settlement_failed"
# A file that cannot be written (a bad layout, a value that does not fit) is retried this
# often, not every minute, so that it makes one incident per quarter hour, not a flood.
RETRY_AFTER_S = 15 * 60

_failed_at: dict[tuple[int, object], float] = {}


def run_due(container: Container) -> int:
    """Write every due settlement file; how many files were written or found unchanged."""
    now = container.clock()
    with UnitOfWork(container.engine, write=False) as uow:
        due = settlements.due_settlements(uow, now)
    done = 0
    for item in due:
        key = (item.agreement_id, item.accounting_date)
        failed = _failed_at.get(key)
        if failed is not None and monotonic_time.monotonic() - failed < RETRY_AFTER_S:
            continue
        try:
            run = settlements.generate_settlement(
                UnitOfWork(container.engine),
                item.agreement_id,
                item.accounting_date,
                data_dir=container.settings.data_dir,
                actor=JOB_ACTOR,
                clock=container.clock,
            )
        except RecaudoError as exc:
            _failed(container, item, exc.message)
            continue
        except Exception as exc:  # one agreement's failure must not stop the others
            logger.exception("settlement of agreement %s failed", item.agreement_id)
            _failed(container, item, f"internal error: {type(exc).__name__}")
            continue
        _failed_at.pop(key, None)
        done += 1
        logger.info(
            "settlement file %s for agreement %s, %s (version %s, %s)",
            run.file.file_name,
            item.agreement_id,
            item.accounting_date.isoformat(),
            run.file.version,
            "new" if run.created else "unchanged",
        )
    return done


def _failed(container: Container, item: settlements.Due, cause: str) -> None:
    _failed_at[(item.agreement_id, item.accounting_date)] = monotonic_time.monotonic()
    logger.warning(
        "settlement of agreement %s for %s failed: %s",
        item.agreement_id,
        item.accounting_date.isoformat(),
        cause,
    )
    incidents.record_incident(
        UnitOfWork(container.engine),
        item.company_id,
        item.agreement_id,
        SETTLEMENT_FAILED,
        f"settlement file for {item.accounting_date.isoformat()} not written: {cause}",
        container.clock,
    )


SETTLEMENT_JOB = PeriodicJob("settlement", 60.0, run_due)
