"""The periodic jobs `recaudo serve` runs beside the API (see `Runner`).

Each feature keeps its job in its own module here and adds it to `PERIODIC_JOBS`.
"""

from __future__ import annotations

from recaudo.jobs.checkout import CHECKOUT_CONFIRMATION_JOB, CHECKOUT_EXPIRY_JOB
from recaudo.jobs.checkpoint import CHECKPOINT_JOB
from recaudo.jobs.commitments import ACTIVE_FLAGS_JOB, GENERATION_JOB
from recaudo.jobs.delivery import DELIVERY_JOB, RETENTION_JOB
from recaudo.jobs.exchange import EXCHANGE_JOB
from recaudo.jobs.negotiations import NEGOTIATION_REVIEW_JOB
from recaudo.jobs.runner import PeriodicJob
from recaudo.jobs.settlement import SETTLEMENT_JOB

PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    CHECKPOINT_JOB,
    EXCHANGE_JOB,
    SETTLEMENT_JOB,
    DELIVERY_JOB,
    RETENTION_JOB,
    GENERATION_JOB,
    ACTIVE_FLAGS_JOB,
    NEGOTIATION_REVIEW_JOB,
    CHECKOUT_EXPIRY_JOB,
    CHECKOUT_CONFIRMATION_JOB,
)
