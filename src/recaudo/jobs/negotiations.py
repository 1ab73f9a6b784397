"""The negotiation review: plans activate, are fulfilled or break, every 15 minutes.

`services.negotiation_review.review_negotiations` does the work: an accepted plan becomes
active with its first payment, fulfilled when every new debt is paid, broken when a
payment is more than the company's `break_after_days` late (condoned amounts reinstated
by policy). The dates are each company's local dates, so running it often only makes the
states current sooner.

Two servers running it at once are safe: PostgreSQL skips plans another run has locked,
SQLite serialises the writers, and a plan that moved is no longer in the states reviewed.
"""

from __future__ import annotations

import logging

from recaudo.adapters.db.uow import UnitOfWork
from recaudo.bootstrap import Container
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import negotiation_review
from recaudo.services.context import Actor, Clock, Role

logger = logging.getLogger("recaudo.jobs.negotiations")

JOB_ACTOR = Actor("job:negotiations", Role.OPERATOR)


def run_review(uow: UnitOfWork, clock: Clock) -> negotiation_review.ReviewReport:
    report = negotiation_review.review_negotiations(uow, clock=clock, actor=JOB_ACTOR)
    if report.total:
        logger.info(
            "negotiations reviewed: %d activated, %d fulfilled, %d broken (%d reinstated)",
            report.activated,
            report.fulfilled,
            report.broken,
            report.reinstated,
        )
    return report


def run(container: Container) -> int:
    return run_review(UnitOfWork(container.engine), container.clock).total


NEGOTIATION_REVIEW_JOB = PeriodicJob("negotiation-review", 15 * 60, run)
