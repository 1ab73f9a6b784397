"""The unit of work: one database transaction, and what to do once it has committed."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session


class UnitOfWork:
    """`with uow:` opens a transaction; `uow.commit()` makes it durable.

    Leaving the block without committing rolls everything back, so a crash or an error
    in the middle of a use case leaves the previous state. Callbacks registered with
    `after_commit` (webhooks, files, e-mails) run only once the commit succeeded.
    """

    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self.engine = engine
        self.write = write
        self._after_commit: list[Callable[[], None]] = []
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `with uow:`")
        return self._session

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __enter__(self) -> UnitOfWork:
        self._after_commit = []
        self._session = Session(self.engine, expire_on_commit=False, autoflush=True)
        # Bind the connection now so SQLite's begin hook sees whether this is a write.
        self._session.connection(execution_options={"recaudo_write": self.write})
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self.session.rollback()
        self._after_commit = []
        self.session.connection(execution_options={"recaudo_write": self.write})

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)
