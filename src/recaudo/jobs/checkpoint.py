"""SQLite: copy the write-ahead log into the database file in the background.

By default SQLite does this inside whichever commit finds the log past 1,000 pages: a
request that happens to commit then pays for everybody's pages and a file sync (about
three quarters of a bank notification's time in the benchmark). Connections here check
the log only past `SQLITE_AUTOCHECKPOINT_PAGES` (a safety net), and this job does the
work every second in the job runner's thread (the server's parent process when it runs
several workers), in PASSIVE mode: it never waits for, nor blocks, readers and writers.
"""

from __future__ import annotations

from recaudo.bootstrap import Container
from recaudo.jobs.runner import PeriodicJob


def checkpoint(container: Container) -> int:
    """Pages copied into the database file (0 on PostgreSQL)."""
    engine = container.engine
    if engine.dialect.name != "sqlite":
        return 0
    with engine.connect() as conn:
        row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").first()
    return int(row[2]) if row is not None and row[2] > 0 else 0


CHECKPOINT_JOB = PeriodicJob("sqlite-checkpoint", 1.0, checkpoint)
