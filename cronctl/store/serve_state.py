"""serve's own row: `ServeStateRecorder` of `cronctl.history` in SQLite.

One row (id 1) says which serve runs (pid, host, version), since when, its latest heartbeat,
when it last put a valid task file in force and, once it stopped, when: `cronctl status` judges
serve by it.
"""

from __future__ import annotations

from datetime import datetime

from cronctl.records import ServeState
from cronctl.store.database import Database, from_ms, to_ms


class ServeStateStore(Database):
    """serve's start, heartbeat and stop."""

    def serve_started(self, *, pid: int, hostname: str, version: str, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO serve_state (id, pid, hostname, version, started_at,"
                " heartbeat_at, stopped_at, tasks_loaded_at) VALUES (1, ?, ?, ?, ?, ?, NULL, ?)",
                (pid, hostname, version, to_ms(now), to_ms(now), to_ms(now)),
            )

    def tasks_loaded(self, now: datetime) -> None:
        with self._write() as db:
            db.execute("UPDATE serve_state SET tasks_loaded_at = ? WHERE id = 1", (to_ms(now),))

    def heartbeat(self, now: datetime) -> None:
        with self._write() as db:
            db.execute("UPDATE serve_state SET heartbeat_at = ? WHERE id = 1", (to_ms(now),))

    def serve_stopped(self, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE serve_state SET stopped_at = ?, heartbeat_at = ? WHERE id = 1",
                (to_ms(now), to_ms(now)),
            )

    def serve_state(self) -> ServeState | None:
        with self._guard():
            row = self._db.execute(
                "SELECT pid, hostname, version, started_at, heartbeat_at, stopped_at,"
                " tasks_loaded_at FROM serve_state WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        return ServeState(
            row[0],
            row[1],
            row[2],
            from_ms(row[3]),
            from_ms(row[4]),
            from_ms(row[5]),
            from_ms(row[6]),
        )
