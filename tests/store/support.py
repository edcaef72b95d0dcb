"""Helpers of the store's tests: a fixed instant, a finished run in one call, and SQL run on
either store's own connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronctl.store import HistoryStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_run(
    store, task="a", status="succeeded", at=T0, duration=100, trigger="manual", scheduled=None
):
    run_id = store.start_run(task, trigger, started_at=at, scheduled_at=scheduled)
    store.finish_run(
        run_id,
        status=status,
        finished_at=at + timedelta(milliseconds=duration),
        duration_ms=duration,
    )
    return run_id


def schema_version(path: str | Path) -> int:
    """The schema version a history file records (SQLite's user_version), read directly."""
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def execute(store, sql: str, params=()) -> list[tuple]:
    """Run `sql` (with `?` placeholders) on either store's own connection; return its rows."""
    if isinstance(store, HistoryStore):
        return store._db.execute(sql, params).fetchall()
    cursor = store._db.execute(sql.replace("?", "%s"), params)
    return cursor.fetchall() if cursor.description else []


def in_transaction(store) -> bool:
    """Whether the store's connection has a transaction open."""
    if isinstance(store, HistoryStore):
        return store._db.in_transaction
    return store._db.info.transaction_status != 0  # psycopg.pq.TransactionStatus.IDLE
