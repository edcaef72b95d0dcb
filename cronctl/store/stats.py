"""Figures for `list`, `show`, `status` and `metrics`: `HealthReader` of `cronctl.history`.

Each query here is answered from an index (checked with EXPLAIN QUERY PLAN in
tests/store/test_stats.py and tests/test_health.py): they stay fast with a million runs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from cronctl.records import FINISHED_STATUSES, Run, Status, TaskStats
from cronctl.store.database import from_ms, to_ms
from cronctl.store.runs import RUN_COLUMNS, STATUSES, RunStore, run_from_row, unknown_value
from cronctl.store.schema import FAILURES_SQL
from cronctl.store.skips import names_json

STDERR_CHUNK = 500
"""Run ids per query of `stderr_heads` (its bound parameters stay under SQLite's limit)."""


def status_and_duration(text: str) -> tuple[str, int | None]:
    status, _, duration = text.partition(" ")
    return status, int(duration) if duration else None


def task_figures(task: str, last: Run | None, rows: list[tuple[str, int | None]]) -> TaskStats:
    """The figures of `task` from its newest runs' (status, duration), newest first."""
    try:
        statuses = tuple(STATUSES[status] for status, _ in rows)
    except KeyError:
        raise unknown_value(task, next(s for s, _ in rows if s not in STATUSES)) from None
    finished = [(status, duration) for status, duration in rows if status in FINISHED_STATUSES]
    durations = sorted(duration for _, duration in finished if duration is not None)
    rate = None
    if finished:
        rate = sum(status == Status.SUCCEEDED for status, _ in finished) / len(finished)
    return TaskStats(
        task=task,
        last=last,
        recent=statuses,
        success_rate=rate,
        p50_ms=_percentile(durations, 0.5),
        p95_ms=_percentile(durations, 0.95),
    )


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class HealthStore(RunStore):
    """Per-task health, runs in progress, stderr heads, missed and failed counts."""

    def task_stats(self, task: str, window: int = 50) -> TaskStats:
        """Return health figures of `task` from its last `window` runs (two indexed queries)."""
        with self._guard():
            # From the covering index runs_task_recent: no table reads (building 50 Runs for
            # each of 100 tasks, or reading their rows, was most of `cronctl list`'s time).
            rows = self._db.execute(
                "SELECT status, duration_ms FROM runs WHERE task = ?"
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (task, window),
            ).fetchall()
        # The newest run is read whole, from the table: a damaged table is reported by `list`
        # (reliability s24), not hidden behind the index's copy of it.
        return task_figures(task, self.last_run(task) if rows else None, rows)

    def tasks_stats(self, tasks: Collection[str], window: int = 50) -> dict[str, TaskStats]:
        """`task_stats` of each of `tasks` that has runs, in one statement for the figures (the
        last `window` runs of every task, from the covering index runs_task_recent) and one
        read of the newest rows by id per STDERR_CHUNK tasks."""
        if not tasks:
            return {}
        # group_concat keeps the order of its ordered subquery (SQLite 3.40 has no ORDER BY
        # in an aggregate; tests/store/test_bulk_reads.py holds the order).
        with self._guard():
            rows = self._db.execute(
                "SELECT names.value, (SELECT group_concat(status || ' ' || ifnull(duration_ms, ''),"
                " ',') FROM (SELECT status, duration_ms FROM runs WHERE task = names.value"
                " ORDER BY started_at DESC, id DESC LIMIT ?)), (SELECT id FROM runs"
                " WHERE task = names.value ORDER BY started_at DESC, id DESC LIMIT 1)"
                " FROM json_each(?) AS names",
                (window, names_json(tasks)),
            ).fetchall()
        found = [(task, recent, newest) for task, recent, newest in rows if newest is not None]
        ids = [newest for _, _, newest in found]
        last: dict[int, Run] = {}
        for start in range(0, len(ids), STDERR_CHUNK):
            chunk = ids[start : start + STDERR_CHUNK]
            with self._guard():
                for row in self._db.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ):
                    last[row[0]] = run_from_row(row)
        return {
            task: task_figures(
                task, last[newest], [status_and_duration(r) for r in recent.split(",")]
            )
            for task, recent, newest in found
        }

    def newest_starts(self, tasks: Collection[str]) -> dict[str, datetime]:
        """Return when the newest run of each of `tasks` started, for the tasks that have one
        (`last_run(task).started_at` for many tasks): one statement, a search of the covering
        index runs_task_recent per name. `status` asks it first, and read
        nothing more of a task without runs: 100,000 tasks cost one query, not 100,000
        (docs/performance.md, "100,000 tasks", round 2)."""
        if not tasks:
            return {}
        with self._guard():
            rows = self._db.execute(
                "SELECT names.value, (SELECT MAX(started_at) FROM runs WHERE task = names.value)"
                " FROM json_each(?) AS names",
                (names_json(tasks),),
            ).fetchall()
        return {task: from_ms(started) for task, started in rows if started is not None}

    def last_successes(self, tasks: Collection[str]) -> dict[str, datetime]:
        """`last_success_at` of each of `tasks` that has a success, in one statement: serve
        reads those of a chunk of claims together (serve/grouping.py `LastSuccesses`), not a
        query a task (a burst of 500 new tasks: 500 queries, 7.5 ms; docs/performance.md,
        "Round 6")."""
        if not tasks:
            return {}
        with self._guard():
            rows = self._db.execute(
                "SELECT names.value, (SELECT started_at FROM runs WHERE task = names.value"
                " AND status = 'succeeded' ORDER BY started_at DESC, id DESC LIMIT 1)"
                " FROM json_each(?) AS names",
                (names_json(tasks),),
            ).fetchall()
        return {task: from_ms(started) for task, started in rows if started is not None}

    def running_tasks(self) -> set[str]:
        """Return the tasks that have a run in progress (index runs_running)."""
        with self._guard():
            return {
                r[0]
                for r in self._db.execute("SELECT DISTINCT task FROM runs WHERE status = 'running'")
            }

    def stderr_heads(self, run_ids: Iterable[int], size: int = 512) -> dict[int, bytes]:
        """Return the first `size` bytes of the stderr of each run (by primary key)."""
        ids = list(run_ids)
        heads: dict[int, bytes] = {}
        for start in range(0, len(ids), STDERR_CHUNK):
            chunk = ids[start : start + STDERR_CHUNK]
            marks = ", ".join("?" * len(chunk))
            with self._guard():
                for run_id, head in self._db.execute(
                    "SELECT run_id, substr(stderr, 1, ?) FROM run_output"
                    f" WHERE run_id IN ({marks})",
                    (size, *chunk),
                ):
                    heads[run_id] = bytes(head or b"")
        return heads

    def missed_counts(self, since: datetime) -> list[tuple[str, int, datetime | None]]:
        """Return (task, runs recorded `missed` since `since`, latest missed slot) per task
        (a range of the covering partial index runs_missed: no table reads)."""
        with self._guard():
            rows = self._db.execute(
                "SELECT task, COUNT(*), MAX(scheduled_at) FROM runs INDEXED BY runs_missed"
                " WHERE started_at >= ? AND status = 'missed'"
                " GROUP BY task ORDER BY task",
                (to_ms(since),),
            ).fetchall()
        return [(task, count, from_ms(latest)) for task, count, latest in rows]

    def failure_counts(self, since: datetime, recent_since: datetime) -> list[tuple[Run, int, int]]:
        """Return, per task with a failed run since `since`: its newest failed run, its
        failures since `since` and those since `recent_since` (later), by task name (`status`:
        the day and the hour). Counted on the covering index runs_failed_recent, whose next
        seek finds the id of each task's newest failure (newest as everywhere: the latest
        start, then the highest id; a bare id beside MAX() was the lowest id of a tie), then
        one read of each: the table's rows of every other failure are never read."""
        with self._guard():
            groups = self._db.execute(
                "SELECT COUNT(*), SUM(started_at >= ?), MAX(started_at),"
                " (SELECT MAX(newest.id) FROM runs AS newest INDEXED BY runs_failed_recent"
                "   WHERE newest.started_at = MAX(runs.started_at) AND newest.task = runs.task"
                f"   AND newest.status IN ({FAILURES_SQL}))"
                " FROM runs INDEXED BY runs_failed_recent"
                f" WHERE status IN ({FAILURES_SQL}) AND started_at >= ?"
                " GROUP BY task ORDER BY task",
                (to_ms(recent_since), to_ms(since)),
            ).fetchall()
            if not groups:
                return []
            ids = [group[3] for group in groups]
            newest = {
                row[0]: run_from_row(row)
                for row in self._db.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE id IN ({', '.join('?' * len(ids))})",
                    ids,
                )
            }
        return [(newest[group[3]], group[0], group[1] or 0) for group in groups]

    def run_counts(self) -> dict[str, tuple[int, int]]:
        """Return (runs, failed runs) kept in the history per task.

        Runs are counted on the covering index runs_task_recent (no table reads), failures
        on the partial index runs_failures (one table read per failed run kept).
        """
        with self._guard():
            totals = self._db.execute("SELECT task, COUNT(*) FROM runs GROUP BY task").fetchall()
            failures = dict(
                self._db.execute(
                    "SELECT task, COUNT(*) FROM runs INDEXED BY runs_failures"
                    f" WHERE status IN ({FAILURES_SQL}) GROUP BY task"
                ).fetchall()
            )
        return {task: (count, failures.get(task, 0)) for task, count in totals}
