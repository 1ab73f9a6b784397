"""Background work that runs beside the API: the in-process runner by default."""

from recaudo.jobs.runner import PeriodicJob, Runner

__all__ = ["PeriodicJob", "Runner"]
