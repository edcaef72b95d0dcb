"""Deleting old history in PostgreSQL: `Retention`, by the rule of the SQLite store's
`RetentionStore.prune` (the same bound per task, counted before deleting, runs in progress
kept) and in the same bounded memory.

What differs: PostgreSQL has no single write lock for serve's claims to wait on, so there is
no WRITER_GAP or BREATHER between the delete transactions (each still deletes at most
PRUNE_CHUNK runs, so that no transaction holds many row locks or a long snapshot); the space
of deleted rows is reused by PostgreSQL's autovacuum, so there is no incremental vacuum; and
`checkpoint` is a no-op (the write-ahead log is the server's to manage). The output spools
of dead writers are not removed here: the spools live beside a SQLite history, and a
PostgreSQL history has no folder of its own.
"""

from __future__ import annotations

from datetime import datetime

from cronctl.store.database import to_ms
from cronctl.store.postgres.runs import PgRunStore
from cronctl.store.retention import PRUNE_CHUNK, Doomed

_DAY_MS = 86_400_000
_MAX_ID = 2**63 - 1
_DOOMED_SQL = "status != 'running' AND (started_at, id) <= (%s, %s)"


class PgRetentionStore(PgRunStore):
    """Deleting runs by age and count."""

    def prune(
        self,
        *,
        now: datetime,
        keep_days: int,
        keep_runs: dict[str, int] | None = None,
        default_keep_runs: int,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Delete runs older than `keep_days` or beyond each task's newest `keep_runs`; return
        how many went (or would go) per task (RetentionStore.prune)."""
        keep_runs = keep_runs or {}
        cutoff = to_ms(now) - keep_days * _DAY_MS
        doomed: list[Doomed] = []
        for task in self._tasks_with_runs():
            found = self._doomed(task, cutoff, keep_runs.get(task, default_keep_runs))
            if found is not None:
                doomed.append(found)
        if not dry_run:
            for each in doomed:
                self._delete_doomed(each)
        return {d.task: d.count for d in doomed}

    def _tasks_with_runs(self) -> list[str]:
        """The task names, one index seek each (a loose scan of runs_task_recent)."""
        rows = self._read(
            "WITH RECURSIVE names(task) AS ("
            " (SELECT task FROM runs ORDER BY task LIMIT 1) UNION ALL"
            " SELECT (SELECT r.task FROM runs r WHERE r.task > names.task ORDER BY r.task LIMIT 1)"
            " FROM names WHERE names.task IS NOT NULL)"
            " SELECT task FROM names WHERE task IS NOT NULL"
        )
        return [row[0] for row in rows]

    def _doomed(self, task: str, cutoff_ms: int, keep: int) -> Doomed | None:
        beyond = self._read_one(
            "SELECT started_at, id FROM runs WHERE task = %s"
            " ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET %s",
            (task, keep),
        )
        bound = (cutoff_ms - 1, _MAX_ID)
        if beyond is not None and beyond[0] is not None:
            bound = max(bound, (int(beyond[0]), int(beyond[1])))
        row = self._read_one(
            f"SELECT COUNT(*), MIN(id), MAX(id) FROM runs WHERE task = %s AND {_DOOMED_SQL}",
            (task, *bound),
        )
        if row is None or not row[0]:
            return None
        return Doomed(task, bound[0], bound[1], int(row[0]), int(row[1]), int(row[2]))

    def _delete_doomed(self, doomed: Doomed) -> None:
        """PRUNE_CHUNK runs a transaction, oldest ids first; their output goes by the
        schema's ON DELETE CASCADE."""
        while True:
            gone = self._write_one(
                "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE task = %s"
                f" AND {_DOOMED_SQL} ORDER BY id LIMIT %s)",
                (doomed.task, doomed.started_at, doomed.id, PRUNE_CHUNK),
            ).rowcount
            if gone < PRUNE_CHUNK:
                return

    def delete_task_runs(self, task: str) -> int:
        """Delete every run of `task` (`remove --purge`), PRUNE_CHUNK a transaction, and its
        acknowledgement."""
        self._write_one("DELETE FROM acks WHERE task = %s", (task,))
        count = 0
        while True:
            gone = self._write_one(
                "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE task = %s"
                " ORDER BY id LIMIT %s)",
                (task, PRUNE_CHUNK),
            ).rowcount
            count += gone
            if gone < PRUNE_CHUNK:
                return count

    def checkpoint(self) -> None:
        """Nothing to do: the server manages its write-ahead log."""
