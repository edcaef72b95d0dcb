from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cronctl import model
from cronctl.records import Output, Run

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_task(
    name: str = "backup", notify: dict[str, Any] | None = None, **keys: Any
) -> model.Task:
    """A validated task, as the task file would give it."""
    raw: dict[str, Any] = {"schedule": "*/5 * * * *", "command": "true", **keys}
    if notify is not None:
        raw["notify"] = notify
    return model.parse_task(name, raw, model.Defaults(), "UTC")


def record(
    store,
    task: str = "backup",
    status: str = "failed",
    *,
    exit_code: int | None = 1,
    attempt: int = 1,
    trigger: str = "schedule",
    at: datetime = T0,
    stderr: bytes = b"boom\n",
    scheduled: bool = True,
) -> Run:
    """Write a finished run into `store` and return it as the runner would (with output)."""
    run_id = store.start_run(
        task, trigger, started_at=at, attempt=attempt, scheduled_at=at if scheduled else None
    )
    store.finish_run(
        run_id,
        status=status,
        finished_at=at + timedelta(seconds=2),
        duration_ms=2000,
        exit_code=exit_code,
        stdout=Output(b"some output\n", 12),
        stderr=Output(stderr, len(stderr)),
    )
    return store.get_run(run_id)
