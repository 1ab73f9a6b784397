"""The one place where the engine, units of work and the clock are wired together."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.adapters.passthrough import PassthroughClient
from recaudo.config import Settings, get_settings
from recaudo.services.collections_online import OnlineChannel
from recaudo.services.context import Clock, system_clock


@dataclass
class Container:
    settings: Settings
    engine: Engine
    clock: Clock = field(default=system_clock)
    # One per process: its circuit breaker remembers each company URL's failures.
    passthrough: PassthroughClient = field(default_factory=PassthroughClient)

    def uow(self, *, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    @cached_property
    def online(self) -> OnlineChannel:
        """The bank channels' per-process state (agreement cache, fast reads, group commit)."""
        return OnlineChannel(self.engine, self.clock, self.passthrough)


def build(settings: Settings | None = None, *, clock: Clock = system_clock) -> Container:
    settings = settings or get_settings()
    return Container(settings=settings, engine=make_engine(settings.database_url), clock=clock)
