"""Helpers of the store's tests: a fixed instant, and a finished run in one call."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
