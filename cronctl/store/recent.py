"""The history for a viewer that only reads: `cronctl top` and `cronctl upcoming`
(README.md#watching-live).

`ReadOnlyHistory` opens the file with SQLite's `mode=ro` (the read-only fallbacks of
`Database`) and never creates it: a database that does not exist yet is an empty history until
it does (`appeared`). Besides every reader of `HistoryStore`, it answers what `top` asks each
second: the runs in progress, each task's latest outcomes and durations, and whether anything
was written since it last asked (`data_version`), so that the figures are read again only then.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cronctl.errors import ReadOnlyDatabaseError
from cronctl.records import Run, Status
from cronctl.store import HistoryStore
from cronctl.store.runs import RUN_COLUMNS, STATUSES, run_from_row


class ReadOnlyHistory(HistoryStore):
    """Every reader of the history, on a connection that cannot write (`PRAGMA query_only`)."""

    def _open(self) -> None:
        cause = ReadOnlyDatabaseError(
            "`top` and `upcoming` only read it",
            hint="run `cronctl status` (or serve) once: it upgrades the history",
        )
        self.absent = not os.path.exists(self.path)
        if self.absent:
            self._empty_read_only(cause)
        else:
            self._open_read_only(cause)

    def appeared(self) -> bool:
        """Whether a history that did not exist when this was opened exists now (serve, or
        `run-now`, created it): open a new `ReadOnlyHistory` to read it."""
        return self.absent and os.path.exists(self.path)

    def data_version(self) -> int:
        """A number that changes when another connection has written to the database since
        the last call (SQLite's `PRAGMA data_version`); an unchanged number means nothing
        read from it before has changed."""
        with self._guard():
            row = self._db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def running_runs(self) -> list[Run]:
        """The runs in progress, oldest start first (the partial index runs_running)."""
        with self._guard():
            rows = self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY started_at, id"
            ).fetchall()
        return [run_from_row(row) for row in rows]

    def recent_outcomes(
        self, tasks: Iterable[str], count: int
    ) -> dict[str, list[tuple[Status, int | None]]]:
        """Each task's latest `count` (status, duration in ms), newest first: one range of the
        covering index runs_task_recent a task, no table reads."""
        found: dict[str, list[tuple[Status, int | None]]] = {}
        with self._guard():
            for task in tasks:
                rows = self._db.execute(
                    "SELECT status, duration_ms FROM runs WHERE task = ?"
                    " ORDER BY started_at DESC, id DESC LIMIT ?",
                    (task, count),
                ).fetchall()
                found[task] = [
                    (STATUSES[status], duration) for status, duration in rows if status in STATUSES
                ]
        return found


def open_read_only(path: str | os.PathLike[str]) -> ReadOnlyHistory:
    """The history at `path` for reading only; an empty one while the file does not exist."""
    return ReadOnlyHistory(path)
