"""Deleting old history: `Retention` of `cronctl.history` in SQLite.

`prune` (the command, and serve's hourly retention) and `delete_task_runs` (`remove --purge`)
delete in short write transactions of PRUNE_CHUNK runs, WRITER_GAP apart, so that serve's
writes get the lock in between, then give the freed pages back to the file system
(`auto_vacuum = INCREMENTAL`, chosen when the file is created).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.locations import MEMORY
from cronctl.spool import remove_leftovers
from cronctl.store.database import to_ms
from cronctl.store.runs import RunStore

PRUNE_CHUNK = 500
"""Runs deleted per write transaction by `prune` (sorted by id: a few ms each). A writer that
waits meanwhile (`run-now`, a second serve) polls with SQLite's busy handler, whose sleeps grow
to 100 ms, and finds the lock free only between two transactions: measured with 160,000 of
200,000 runs removed, eight runs each, its p99 wait was 65 ms (4 of 8 over 100 ms) with 1,000
runs a transaction, 35 ms (none over 100 ms) with 500, and 105 ms with 250 (more back-to-back
transactions); prune took 1.7 s and 2.1 s."""
VACUUM_CHUNK = 500
"""Free pages given back per write transaction by `prune`'s incremental vacuum."""
WRITER_GAP = 0.001
"""Seconds prune waits after each of its write transactions before the next. Back to back,
its transactions left a waiting writer little chance: SQLite's busy handler sleeps between
its tries, and the lock was taken again before it woke. Measured with 160,000 of 200,000 runs
removed, four runs each, under a writer committing every 5 ms: p99 wait 47 ms without the gap
(max 119 ms), 9 ms with 1 ms after each delete and vacuum transaction (max 15 ms); prune took
2.5 s instead of 1.9 s."""
_DAY_MS = 86_400_000


class RetentionStore(RunStore):
    """Deleting runs by age and count, and giving their pages back."""

    clock: Clock = SYSTEM_CLOCK  # the gaps between write transactions (WRITER_GAP)

    def prune(
        self,
        *,
        now: datetime,
        keep_days: int,
        keep_runs: dict[str, int] | None = None,
        default_keep_runs: int,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Delete runs older than `keep_days` or beyond each task's newest `keep_runs`.

        Returns the number of runs removed (or that would be) per task. Running runs stay.
        """
        keep_runs = keep_runs or {}
        cutoff = to_ms(now) - keep_days * _DAY_MS
        removed: dict[str, int] = {}
        doomed: list[int] = []
        for task in self.task_names():
            ids = self._expired(task, cutoff, keep_runs.get(task, default_keep_runs))
            if ids:
                removed[task] = len(ids)
                doomed.extend(ids)
        if not dry_run:
            self._remove_leftover_spools()
        if dry_run or not doomed:
            return removed
        # Deleted in id order, across tasks: runs of many tasks interleave in the table, so
        # this touches each page once instead of once per task (measured with 100 tasks and
        # 900,000 runs to remove: 7 s instead of 31 s, at most ~20 ms per transaction
        # instead of ~100 ms). Each chunk is its own short write transaction, so serve's
        # writes get the lock in between.
        doomed.sort()
        for start in range(0, len(doomed), PRUNE_CHUNK):
            self._delete_runs(doomed[start : start + PRUNE_CHUNK])
        del doomed
        self._vacuum()
        return removed

    def _remove_leftover_spools(self) -> None:
        """The output spools of runs whose writer died (a serve or `run-now` killed) go with
        the old runs: no spool outlives its writer past the next prune (cronctl/spool.py)."""
        if self.path != MEMORY:
            with contextlib.suppress(OSError):
                remove_leftovers(Path(self.path).parent)

    def _expired(self, task: str, cutoff_ms: int, keep: int) -> list[int]:
        """The ids of `task`'s finished runs started before `cutoff_ms` or beyond its newest
        `keep`."""
        with self._guard():
            return [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM runs WHERE task = ? AND status != 'running'"
                    " AND (started_at < ? OR id IN (SELECT id FROM runs WHERE task = ?"
                    " ORDER BY started_at DESC, id DESC LIMIT -1 OFFSET ?))",
                    (task, cutoff_ms, task, keep),
                )
            ]

    def _delete_runs(self, chunk: Sequence[int]) -> None:
        marks = ", ".join("?" * len(chunk))
        with self._write() as db:
            db.execute(f"DELETE FROM run_output WHERE run_id IN ({marks})", chunk)
            db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        self.clock.sleep(WRITER_GAP)

    def _vacuum(self) -> None:
        """Give free pages back to the file system, VACUUM_CHUNK pages per write transaction.

        `PRAGMA incremental_vacuum(N)` frees one page per step of the statement, and
        sqlite3's execute() steps a statement without result columns once: a plain execute
        freed a single page. executescript() steps each statement to its end."""
        previous = None
        while True:
            with self._guard():
                free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
            if not free or free == previous:  # done, or not an auto_vacuum=INCREMENTAL file
                return
            previous = free
            with self._guard():
                try:
                    self._db.executescript(
                        f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({VACUUM_CHUNK}); COMMIT;"
                    )
                except BaseException:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    raise
            self.clock.sleep(WRITER_GAP)

    def delete_task_runs(self, task: str) -> int:
        """Delete every run of `task` (`remove --purge`), PRUNE_CHUNK runs per transaction, and
        its acknowledgement (`ack`): nothing of the task is left under its name."""
        with self._write() as db:
            db.execute("DELETE FROM acks WHERE task = ?", (task,))
        count = 0
        while True:
            with self._guard():
                ids = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM runs WHERE task = ? ORDER BY id LIMIT ?",
                        (task, PRUNE_CHUNK),
                    )
                ]
            if not ids:
                break
            self._delete_runs(ids)
            count += len(ids)
        if count:
            self._vacuum()
        return count

    def checkpoint(self) -> None:
        """Give the write-ahead log back to the database file."""
        with self._guard():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
