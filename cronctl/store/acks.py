"""Acknowledgements (`cronctl ack`): one row a task, the newest, in the `acks` table.

An acknowledgement changes what `status` calls healthy, never the history: the runs stay as
they were, and `metrics` counts them all (README.md, "Acknowledging failures").
"""

from __future__ import annotations

from datetime import datetime

from cronctl.records import Ack
from cronctl.store.database import Database, from_ms, to_ms


class AckStore(Database):
    """`Acknowledgements` of cronctl.history in SQLite."""

    def acknowledge(
        self, task: str, *, at: datetime, by: str | None = None, note: str | None = None
    ) -> Ack:
        """Record that `task`'s failures up to `at` are seen (replacing its earlier ack)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO acks (task, acked_at, acked_by, note) VALUES (?, ?, ?, ?)",
                (task, to_ms(at), by, note),
            )
        return Ack(task, from_ms(to_ms(at)), by, note)

    def acks(self) -> dict[str, Ack]:
        """Every task's acknowledgement, by task name."""
        with self._guard():
            rows = self._db.execute(
                "SELECT task, acked_at, acked_by, note FROM acks INDEXED BY acks_all"
            ).fetchall()
        return {task: Ack(task, from_ms(at), by, note) for task, at, by, note in rows}
