"""Helpers of the store's tests: a fixed instant, and a finished run in one call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
