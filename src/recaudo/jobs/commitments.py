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
"""

from __future__ import annotations

import logging

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.domain.errors import RecaudoError
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import commitments
from recaudo.services.context import Actor, Role

logger = logging.getLogger("recaudo.jobs.commitments")

JOB_ACTOR = Actor("job:commitments", Role.OPERATOR)


def run_generation(container: Container) -> int:
    """Run every due monthly generation; how many payments were created."""
    with UnitOfWork(container.engine, write=False) as uow:
        due = commitments.due_generations(uow, container.clock())
    created = 0
    for item in due:
        try:
            run = commitments.generate_payments(
                UnitOfWork(container.engine),
                item.company_id,
                month=item.target,
                clock=container.clock,
                actor=JOB_ACTOR,
            )
        except RecaudoError as exc:
            logger.warning(
                "payment generation for company %s failed: %s", item.company_id, exc.message
            )
            continue
        except Exception:  # one company's failure must not stop the others
            logger.exception("payment generation for company %s failed", item.company_id)
            continue
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


def run_active_flags(container: Container) -> int:
    """Bring every commitment's `active` flag in line with its end date; how many changed."""
    return commitments.refresh_active_flags(
        UnitOfWork(container.engine), clock=container.clock, actor=JOB_ACTOR
    )


GENERATION_JOB = PeriodicJob("commitment_generation", 300.0, run_generation)
ACTIVE_FLAGS_JOB = PeriodicJob("commitment_active_flags", 3600.0, run_active_flags)
