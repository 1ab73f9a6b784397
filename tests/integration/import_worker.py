"""One debts import in its own process, for the test that kills it half-way.

    python import_worker.py URL COMPANY_ID FILE half|commit

Prints `progress DONE TOTAL` lines, then `PAUSED` and sleeps at the chosen point
(`half`: once half the file is read; `commit`: after every statement, just before the
commit) so that the test can SIGKILL it there deterministically, with no timing guess.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from recaudo.adapters.db.engine import make_engine
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services.context import Actor, Role, system_clock
from recaudo.services.imports import ImportMode, import_debts

PAUSE_SECONDS = 300  # far longer than the test needs to kill us


def pause() -> None:
    print("PAUSED", flush=True)
    time.sleep(PAUSE_SECONDS)


def main() -> None:
    url, company_id, path, where = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]

    def progress(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)
        if where == "half" and total <= 2 * done < 2 * total:
            pause()

    if where == "commit":
        commit = UnitOfWork.commit

        def commit_after_pause(self: UnitOfWork) -> None:
            pause()
            commit(self)

        UnitOfWork.commit = commit_after_pause  # type: ignore[method-assign]
    import_debts(
        UnitOfWork(make_engine(url)),
        company_id,
        path,
        mode=ImportMode.REPLACE,
        actor=Actor("test:worker", Role.ADMIN),
        clock=system_clock,
        progress=progress,
    )
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
