"""The commitment jobs: the monthly payment generation and the daily active flags.

**Generation** runs every five minutes and acts once a month per company: when the
company's scheduled moment (`commitment_settings.run_day` at `run_time`, default the 1st at
00:30, in the company's time zone) has passed and that month's run is not recorded as done,
it generates every missing payment up to the month the company generates for (this month,
or the next). A server that was down for three months catches all of them up in one run:
generation fills every missing period, not just the latest. Two servers running it at
once are safe: payments are inserted with ON CONFLICT DO NOTHING on the unique
(commitment_id, period_start), and `last_generated_month` only moves forwards.

**Active flags** run every hour (cheap: two indexed queries per company); a commitment
whose end date has passed in its company's time zone stops being active the first run
after midnight.

A generation that fails records an incident (`commitment_generation_failed`) and is
retried half an hour later; the month stays due until a run succeeds.
"""

from __future__ import annotations

import logging
import time as monotonic_time

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.domain.errors import RecaudoError
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import commitments, incidents
from recaudo.services.context import Actor, Role

logger = logging.getLogger("recaudo.jobs.commitments")

JOB_ACTOR = Actor("job:commitments", Role.OPERATOR)
GENERATION_FAILED = "commitment_generation_failed"
# A company whose generation fails is retried this often, not every five minutes, so
# that it makes one incident per half hour, not a flood.
RETRY_AFTER_S = 30 * 60

_failed_at: dict[int, float] = {}


def run_generation(container: Container) -> int:
    """Run every due monthly generation; how many payments were created."""
    with UnitOfWork(container.engine, write=False) as uow:
        due = commitments.due_generations(uow, container.clock())
    created = 0
    for item in due:
        failed = _failed_at.get(item.company_id)
        if failed is not None and monotonic_time.monotonic() - failed < RETRY_AFTER_S:
            continue
        try:
            run = commitments.generate_payments(
                UnitOfWork(container.engine),
                item.company_id,
                month=item.target,
                clock=container.clock,
                actor=JOB_ACTOR,
            )
        except RecaudoError as exc:
            _failed(container, item, exc.message)
            continue
        except Exception as exc:  # one company's failure must not stop the others
            logger.exception("payment generation for company %s failed", item.company_id)
            _failed(container, item, f"internal error: {type(exc).__name__}")
            continue
        _failed_at.pop(item.company_id, None)
        commitments.mark_generated(
            UnitOfWork(container.engine), item.company_id, item.run_month, container.clock
        )
        created += run.created
        logger.info(
            "commitment payments up to %s for company %s: %s created (%s commitments)",
            item.target.strftime("%Y-%m"),
            item.company_id,
            run.created,
            run.commitments,
        )
    return created


def _failed(container: Container, item: commitments.DueGeneration, cause: str) -> None:
    _failed_at[item.company_id] = monotonic_time.monotonic()
    logger.warning(
        "payment generation for company %s up to %s failed: %s",
        item.company_id,
        item.target.strftime("%Y-%m"),
        cause,
    )
    incidents.record_incident(
        UnitOfWork(container.engine),
        item.company_id,
        None,
        GENERATION_FAILED,
        f"commitment payments up to {item.target:%Y-%m} not generated: {cause}",
        container.clock,
    )


def run_active_flags(container: Container) -> int:
    """Bring every commitment's `active` flag in line with its end date; how many changed."""
    return commitments.refresh_active_flags(
        UnitOfWork(container.engine), clock=container.clock, actor=JOB_ACTOR
    )


GENERATION_JOB = PeriodicJob("commitment_generation", 300.0, run_generation)
ACTIVE_FLAGS_JOB = PeriodicJob("commitment_active_flags", 3600.0, run_active_flags)
