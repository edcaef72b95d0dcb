"""Figures for `list`, `show`, `status` and `metrics` in PostgreSQL: `HealthReader`, with the
figures computed by the SQLite store's own functions (`task_figures`) from the same rows.

Each query is a range of an index (runs_task_recent carries status and duration: index-only
scans; the partial indexes runs_running, runs_missed and runs_failed_recent carry what
`status` counts). Many tasks are one statement over an array of names (`unnest`), a LATERAL
range of runs_task_recent a name.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from cronctl.records import Run, TaskStats
from cronctl.store.database import from_ms, to_ms
from cronctl.store.postgres.runs import PgRunStore
from cronctl.store.runs import RUN_COLUMNS, run_from_row
from cronctl.store.schema import FAILURES_SQL
from cronctl.store.stats import task_figures

_RECENT = (
    "SELECT status, duration_ms FROM runs WHERE task = %s ORDER BY started_at DESC, id DESC"
    " LIMIT %s"
)


class PgHealthStore(PgRunStore):
    """Per-task health, runs in progress, stderr heads, missed and failed counts."""

    def task_stats(self, task: str, window: int = 50) -> TaskStats:
        rows = [(str(s), d) for s, d in self._read(_RECENT, (task, window))]
        return task_figures(task, self.last_run(task) if rows else None, rows)

    def tasks_stats(self, tasks: Collection[str], window: int = 50) -> dict[str, TaskStats]:
        """`task_stats` of each of `tasks` that has runs: one statement for the figures and
        one for the newest rows."""
        if not tasks:
            return {}
        rows = self._read(
            "SELECT n.task, r.id, r.status, r.duration_ms"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS n(task, k) CROSS JOIN LATERAL"
            " (SELECT id, status, duration_ms FROM runs WHERE task = n.task"
            "  ORDER BY started_at DESC, id DESC LIMIT %s) AS r"
            " ORDER BY n.k",
            (list(dict.fromkeys(tasks)), window),
        )
        recent: dict[str, list[tuple[str, int | None]]] = {}
        newest: dict[str, int] = {}
        for task, run_id, status, duration in rows:
            newest.setdefault(task, run_id)
            recent.setdefault(task, []).append((status, duration))
        if not newest:
            return {}
        last = {
            row[0]: run_from_row(row)
            for row in self._read(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ANY(%s::bigint[])",
                (list(newest.values()),),
            )
        }
        return {
            task: task_figures(task, last[newest[task]], found) for task, found in recent.items()
        }

    def newest_starts(self, tasks: Collection[str]) -> dict[str, datetime]:
        if not tasks:
            return {}
        rows = self._read(
            "SELECT n.task, (SELECT MAX(started_at) FROM runs WHERE task = n.task)"
            " FROM unnest(%s::text[]) AS n(task)",
            (list(tasks),),
        )
        return {task: from_ms(started) for task, started in rows if started is not None}

    def last_successes(self, tasks: Collection[str]) -> dict[str, datetime]:
        if not tasks:
            return {}
        rows = self._read(
            "SELECT n.task, (SELECT started_at FROM runs WHERE task = n.task"
            " AND status = 'succeeded' ORDER BY started_at DESC, id DESC LIMIT 1)"
            " FROM unnest(%s::text[]) AS n(task)",
            (list(tasks),),
        )
        return {task: from_ms(started) for task, started in rows if started is not None}

    def running_tasks(self) -> set[str]:
        return {row[0] for row in self._read("SELECT task FROM runs WHERE status = 'running'")}

    def stderr_heads(self, run_ids: Iterable[int], size: int = 512) -> dict[int, bytes]:
        ids = list(run_ids)
        if not ids:
            return {}
        rows = self._read(
            "SELECT run_id, substr(stderr, 1, %s) FROM run_output WHERE run_id = ANY(%s::bigint[])",
            (size, ids),
        )
        return {run_id: bytes(head or b"") for run_id, head in rows}

    def missed_counts(self, since: datetime) -> list[tuple[str, int, datetime | None]]:
        rows = self._read(
            "SELECT task, COUNT(*), MAX(scheduled_at) FROM runs"
            " WHERE started_at >= %s AND status = 'missed' GROUP BY task ORDER BY task",
            (to_ms(since),),
        )
        return [(task, int(count), from_ms(latest)) for task, count, latest in rows]

    def failure_counts(self, since: datetime, recent_since: datetime) -> list[tuple[Run, int, int]]:
        """Per task with a failed run since `since`: its newest failure, its failures since
        `since` and since `recent_since`, by task name (HealthStore.failure_counts)."""
        groups = self._read(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE started_at >= %s),"
            " (array_agg(id ORDER BY started_at DESC, id DESC))[1]"
            f" FROM runs WHERE status IN ({FAILURES_SQL}) AND started_at >= %s"
            " GROUP BY task ORDER BY task",
            (to_ms(recent_since), to_ms(since)),
        )
        if not groups:
            return []
        newest = {
            row[0]: run_from_row(row)
            for row in self._read(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ANY(%s::bigint[])",
                ([group[2] for group in groups],),
            )
        }
        return [(newest[group[2]], int(group[0]), int(group[1])) for group in groups]

    def run_counts(self) -> dict[str, tuple[int, int]]:
        rows = self._read(
            "SELECT task, COUNT(*), COUNT(*) FILTER (WHERE status IN"
            f" ({FAILURES_SQL})) FROM runs GROUP BY task"
        )
        return {task: (int(count), int(failed)) for task, count, failed in rows}
