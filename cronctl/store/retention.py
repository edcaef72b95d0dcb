"""Deleting old history: `Retention` of `cronctl.history` in SQLite.

`prune` (the command, and serve's hourly retention) finds, per task, the bound of what goes
through the index runs_task_recent, counts it there, and deletes by windows of PRUNE_CHUNK ids
across tasks: its memory does not grow with the history (issue 18: at 5 million runs,
`--dry-run` took 10 s and 225 MB with a list of every id, 1 s and 30 MB with bounds).
`delete_task_runs` (`remove --purge`) deletes PRUNE_CHUNK runs a transaction. Write
transactions are WRITER_GAP apart, with a BREATHER now and then, so that serve's writes get
the lock in between; then the freed pages go back to the file system (`auto_vacuum =
INCREMENTAL`, chosen when the file is created). docs/performance.md, "Prune and status at 5
million runs (issue 18)", has the figures.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.locations import MEMORY
from cronctl.spool import remove_leftovers
from cronctl.store.database import to_ms
from cronctl.store.runs import RunStore

PRUNE_CHUNK = 1000
"""Ids per write transaction of `prune` (a window of ids: at most this many runs deleted) and
runs per transaction of `remove --purge`. A writer that waits meanwhile (serve's claims,
`run-now`) finds the lock free only between two transactions, so its wait grows with their
length, while each transaction also rewrites the same index pages of every task (runs of 100
tasks interleave): fewer, longer transactions delete faster. Measured (issue 18,
tests/benchmarks/bench_prune.py --matrix) pruning 900,000 of 1,000,000 runs of 100 tasks
beside a writer committing every 5 ms, medians of 3: 500 ids and a 1 ms gap 15.3 s (p99 wait
7.7 ms), 1,000 and 1 ms 10.0 s (13.3 ms), 2,000 and 2 ms 9.2 s (35.0 ms, longest 182 ms),
5,000 and 2 ms 6.3 s (66.5 ms, longest 183 ms), 5,000 and 1 ms 6.4 s (90.8 ms); at 5 million
runs, 2 ms gaps: 500 ids 102 s (p99 10.9 ms), 1,000 ids 77 s (19.0 ms), 2,000 ids 64 s (35.6
ms). 1,000 with a 2 ms gap: serve's claims wait a p99 under 20 ms (at 200,000 runs, beside the
CLI: 9-24 ms, against 6-11 ms with the 500-run chunks of before, 13-88 ms with 2,000 under
load), while a big prune goes about 1.3 times as fast as with 500 ids; the last 20-30 %
that bigger windows give is not worth a claim's wait, as a big prune is rare and serve's
hourly one removes an hour's runs."""
VACUUM_CHUNK = 500
"""Free pages given back per write transaction by `prune`'s incremental vacuum."""
WRITER_GAP = 0.002
"""Seconds prune waits after each of its write transactions before the next. Back to back,
its transactions left a waiting writer little chance: SQLite's busy handler sleeps between
its tries, and the lock was taken again before it woke. Measured with 160,000 of 200,000 runs
removed, four runs each, under a writer committing every 5 ms: p99 wait 47 ms without the gap
(max 119 ms), 9 ms with 1 ms after each delete and vacuum transaction (max 15 ms); prune took
2.5 s instead of 1.9 s. With 2,000-id windows (PRUNE_CHUNK) 2 ms gave the writer a p99 wait of
35 ms against 81 ms with 1 ms, at the same speed."""
BREATHER_AFTER = 0.5
"""Seconds of prune's write transactions (and WRITER_GAPs) after which it pauses BREATHER."""
BREATHER = 0.11
"""A pause longer than the longest sleep of SQLite's busy handler (100 ms), so that a writer
polling for the lock finds it free at least once. WRITER_GAP alone did not ensure it: a
writer whose handler had backed off to 100 ms sleeps woke at random points of prune's
cycle and found the lock free with the odds gap / (transaction + gap). Measured at 5 million
runs (4.9 million removed) beside a writer committing every 5 ms, without breathers: its p99
wait 11-36 ms but its longest 1.9 s (500 ids a window), 4.5 s (1,000) and 2.6 s (2,000),
while no single transaction held the lock over 0.41 s (window) or 0.31 s (500 pages of
incremental vacuum)."""
_DAY_MS = 86_400_000
_MAX_ID = 2**63 - 1
# A task's runs that go: finished, and at or before its bound (started_at, id) in the order of
# runs_task_recent. Parameters: the bound's started_at twice, then its id.
_DOOMED_SQL = "status != 'running' AND started_at <= ? AND (started_at < ? OR id <= ?)"
# The same, for runs of every task in a window of ids: each task's bound from prune_bounds
# (a task without a row there keeps its runs).
_WINDOW_SQL = (
    "status != 'running' AND (started_at, id) <="
    " (SELECT b.started_at, b.id FROM temp.prune_bounds AS b WHERE b.task = runs.task)"
)


@dataclass(frozen=True)
class Doomed:
    """The runs of one task that `prune` deletes: those at or before (started_at, id), how
    many, and the first and last of their ids."""

    task: str
    started_at: int
    id: int
    count: int
    first: int
    last: int


class RetentionStore(RunStore):
    """Deleting runs by age and count, and giving their pages back."""

    clock: Clock = SYSTEM_CLOCK  # the gaps between write transactions (WRITER_GAP)
    _held_since = 0.0  # monotonic: the end of the last BREATHER

    def _after_write(self) -> None:
        """The pause after each write transaction: WRITER_GAP, or BREATHER once the write
        transactions since the last one took BREATHER_AFTER."""
        if self.clock.monotonic() - self._held_since < BREATHER_AFTER:
            self.clock.sleep(WRITER_GAP)
            return
        self.clock.sleep(BREATHER)
        self._held_since = self.clock.monotonic()

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

        Returns the number of runs removed (or that would be) per task, as counted before
        deleting: a run still going then and finished before its window is deleted goes too
        (it is no newer than the runs counted). Running runs stay (they count towards
        `keep_runs`). Memory does not grow with the history: what goes is
        a bound per task (`Doomed`), counted and deleted by ranges, never a list of ids.
        """
        keep_runs = keep_runs or {}
        cutoff = to_ms(now) - keep_days * _DAY_MS
        doomed: list[Doomed] = []
        for task in self._tasks_with_runs():
            found = self._doomed(task, cutoff, keep_runs.get(task, default_keep_runs))
            if found is not None:
                doomed.append(found)
        if not dry_run:
            self._remove_leftover_spools()
        if not dry_run and doomed:
            self._held_since = self.clock.monotonic()
            self._delete_doomed(doomed)
            self._vacuum()
        return {d.task: d.count for d in doomed}

    def _tasks_with_runs(self) -> Iterator[str]:
        """The task names of the history, one index seek each (a skip-scan of
        runs_task_recent): `SELECT DISTINCT task` reads every entry of the index, 1.3 s at
        5 million runs, where 100 seeks take under a millisecond."""
        previous = None
        while True:
            with self._guard():
                if previous is None:
                    row = self._db.execute("SELECT MIN(task) FROM runs").fetchone()
                else:
                    row = self._db.execute(
                        "SELECT MIN(task) FROM runs WHERE task > ?", (previous,)
                    ).fetchone()
            if row[0] is None:
                return
            previous = row[0]
            yield previous

    def _doomed(self, task: str, cutoff_ms: int, keep: int) -> Doomed | None:
        """What of `task` goes: its finished runs started before `cutoff_ms` or beyond its
        newest `keep` (by started_at, then id), as one bound in the order of
        runs_task_recent; None when nothing goes."""
        with self._guard():
            beyond = self._db.execute(
                "SELECT started_at, id FROM runs WHERE task = ?"
                " ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?",
                (task, keep),
            ).fetchone()
            # started_at < cutoff, said as a bound on (started_at, id).
            bound = (cutoff_ms - 1, _MAX_ID)
            if beyond is not None and beyond[0] is not None:
                bound = max(bound, (int(beyond[0]), int(beyond[1])))
            # One range of the covering index: no table reads.
            count, first, last = self._db.execute(
                f"SELECT COUNT(*), MIN(id), MAX(id) FROM runs WHERE task = ? AND {_DOOMED_SQL}",
                (task, bound[0], bound[0], bound[1]),
            ).fetchone()
        if not count:
            return None
        return Doomed(task, bound[0], bound[1], int(count), int(first), int(last))

    def _delete_doomed(self, doomed: Sequence[Doomed]) -> None:
        """Delete what `doomed` says, in id order across tasks, PRUNE_CHUNK ids a write
        transaction, WRITER_GAP apart.

        Runs of many tasks interleave in the table: id order touches each page once instead
        of once per task (measured with 100 tasks and 900,000 runs to remove: 7 s instead
        of 31 s). Each window of ids is one statement per table; the bounds per task are
        looked up in a temporary table (one row a task)."""
        with self._guard():
            self._db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS prune_bounds"
                " (task TEXT PRIMARY KEY, started_at INTEGER NOT NULL, id INTEGER NOT NULL)"
                " WITHOUT ROWID"
            )
            self._db.execute("DELETE FROM temp.prune_bounds")
            self._db.executemany(
                "INSERT INTO temp.prune_bounds VALUES (?, ?, ?)",
                [(d.task, d.started_at, d.id) for d in doomed],
            )
        try:
            low = min(d.first for d in doomed)
            high = max(d.last for d in doomed)
            while low <= high:
                self._delete_window(low, min(high, low + PRUNE_CHUNK - 1))
                low = self._next_id(low + PRUNE_CHUNK, high)
        finally:
            with self._guard():
                self._db.execute("DELETE FROM temp.prune_bounds")

    def _delete_window(self, low: int, high: int) -> None:
        # Their output rows go by the schema's ON DELETE CASCADE (foreign_keys is on for
        # every connection): deleting them first by the same condition cost a second
        # evaluation of it, 30 % of the deletion's time (900,000 runs: 9.6 s against 6.8 s).
        with self._write() as db:
            db.execute(f"DELETE FROM runs WHERE id BETWEEN ? AND ? AND {_WINDOW_SQL}", (low, high))
        self._after_write()

    def _next_id(self, low: int, high: int) -> int:
        """The first id at or after `low` (past `high` when none): gaps left by earlier
        prunes cost no empty transactions."""
        with self._guard():
            row = self._db.execute(
                "SELECT MIN(id) FROM runs WHERE id BETWEEN ? AND ?", (low, high)
            ).fetchone()
        return high + 1 if row[0] is None else int(row[0])

    def _remove_leftover_spools(self) -> None:
        """The output spools of runs whose writer died (a serve or `run-now` killed) go with
        the old runs: no spool outlives its writer past the next prune (cronctl/spool.py)."""
        if self.path != MEMORY:
            with contextlib.suppress(OSError):
                remove_leftovers(Path(self.path).parent)

    def _delete_runs(self, chunk: Sequence[int]) -> None:
        marks = ", ".join("?" * len(chunk))
        with self._write() as db:
            db.execute(f"DELETE FROM run_output WHERE run_id IN ({marks})", chunk)
            db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        self._after_write()

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
            self._after_write()

    def delete_task_runs(self, task: str) -> int:
        """Delete every run of `task` (`remove --purge`), PRUNE_CHUNK runs per transaction, and
        its acknowledgement (`ack`): nothing of the task is left under its name."""
        with self._write() as db:
            db.execute("DELETE FROM acks WHERE task = ?", (task,))
        self._held_since = self.clock.monotonic()
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
