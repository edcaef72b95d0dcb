"""The JSON shapes of tasks and runs: the stable contract of `--json`, webhooks and notify commands.

Keys are snake_case; times are ISO 8601 with their offset. Documented in the README.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cronctl import timefmt
from cronctl.model import Task, json_fields
from cronctl.records import Run, TaskStats, safe_text


def task_json(
    task: Task, next_run: datetime | None, stats: TaskStats | None = None
) -> dict[str, Any]:
    keys = list(json_fields(task).items())
    # next_run follows timezone, the zone its time is written in.
    zone_at = [name for name, _ in keys].index("timezone") + 1
    data: dict[str, Any] = {
        "name": task.name,
        **dict(keys[:zone_at]),
        "next_run": timefmt.iso(timefmt.local(next_run, task.timezone)) if next_run else None,
        **dict(keys[zone_at:]),
    }
    if stats is not None:
        last = stats.last
        data["last_run"] = (
            {"id": last.id, "status": last.status, "started_at": timefmt.iso(last.started_at)}
            if last
            else None
        )
        data["success_rate"] = stats.success_rate
        data["duration_p50_ms"] = stats.p50_ms
        data["duration_p95_ms"] = stats.p95_ms
    return data


def run_json(run: Run, *, output: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": run.id,
        "task": run.task,
        "trigger": run.trigger,
        "attempt": run.attempt,
        "scheduled_at": timefmt.iso(run.scheduled_at),
        "started_at": timefmt.iso(run.started_at),
        "finished_at": timefmt.iso(run.finished_at),
        "duration_ms": run.duration_ms,
        "status": run.status,
        "exit_code": run.exit_code,
        "signal": run.signal,
        "pid": run.pid,
        "reason": run.reason,
        "notify_error": run.notify_error,
        "host": run.host,
    }
    if output:
        for name, stream in (("stdout", run.stdout), ("stderr", run.stderr)):
            data[name] = safe_text(stream.data) if stream else ""
            data[f"{name}_bytes"] = stream.total_bytes if stream else 0
            data[f"{name}_dropped_bytes"] = stream.dropped_bytes if stream else 0
    return data
