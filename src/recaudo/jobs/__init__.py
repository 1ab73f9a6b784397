"""Background work that runs beside the API: the in-process runner by default."""

from recaudo.jobs.runner import Runner

__all__ = ["Runner"]
