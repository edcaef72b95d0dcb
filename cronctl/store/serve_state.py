"""The serves' rows: `ServeStateRecorder` of `cronctl.history` in SQLite.

One row per host (schema 8's `serves`) says which serve runs there (pid, version), since
when, its latest heartbeat, when it last put a valid task file in force and, once it stopped,
when: `cronctl status` judges serve by it. A SQLite history has one host (the file is local
and serve's lock keeps a second serve out), so nothing here declares another serve dead:
that is the PostgreSQL store's part (cronctl/store/postgres/records.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cronctl.records import DEFAULT_LEASE, Heartbeat, ServeState
from cronctl.store.database import Database, from_ms, to_ms

SERVE_COLUMNS = (
    "pid, host, version, started_at, heartbeat_at, stopped_at, tasks_loaded_at, lease_ms,"
    " declared_dead_at, declared_dead_by"
)


def serve_from_row(row: Sequence[Any]) -> ServeState:
    """The ServeState of a row of SERVE_COLUMNS (both stores)."""
    return ServeState(
        pid=row[0],
        hostname=row[1],
        version=row[2],
        started_at=from_ms(row[3]),
        heartbeat_at=from_ms(row[4]),
        stopped_at=from_ms(row[5]),
        tasks_loaded_at=from_ms(row[6]),
        lease_seconds=row[7] / 1000 if row[7] is not None else None,
        declared_dead_at=from_ms(row[8]),
        declared_dead_by=row[9],
    )


class ServeStateStore(Database):
    """serve's start, heartbeat and stop."""

    def serve_started(
        self,
        *,
        pid: int,
        hostname: str,
        version: str,
        now: datetime,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        """This host's serve row, anew; this store then speaks for `hostname`."""
        self.host = hostname
        at, lease_ms = to_ms(now), round(lease * 1000)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO serves (host, pid, version, started_at, heartbeat_at,"
                " stopped_at, tasks_loaded_at, lease_ms, lease_until)"
                " VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (hostname, pid, version, at, at, at, lease_ms, at + lease_ms),
            )

    def tasks_loaded(self, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE serves SET tasks_loaded_at = ? WHERE host = ?", (to_ms(now), self.host)
            )

    def heartbeat(self, now: datetime) -> Heartbeat:
        with self._write() as db:
            db.execute(
                "UPDATE serves SET heartbeat_at = ?, lease_until = ? + lease_ms WHERE host = ?",
                (to_ms(now), to_ms(now), self.host),
            )
        return Heartbeat()

    def serve_stopped(self, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE serves SET stopped_at = ?, heartbeat_at = ? WHERE host = ?",
                (to_ms(now), to_ms(now), self.host),
            )

    def serves(self) -> list[ServeState]:
        with self._guard():
            rows = self._db.execute(f"SELECT {SERVE_COLUMNS} FROM serves ORDER BY host").fetchall()
        return [serve_from_row(row) for row in rows]

    def serve_state(self) -> ServeState | None:
        return newest_serve(self.serves(), self.host)


def newest_serve(serves: list[ServeState], host: str) -> ServeState | None:
    """The serve `status` speaks of when it speaks of one: this host's, else the one that
    started last."""
    for state in serves:
        if state.hostname == host:
            return state
    return max(serves, key=lambda state: state.started_at, default=None)
