"""The failures of the last day, grouped by task: what `status` shows one row a task (README.md,
"Health"), and the JSON of a failure.

A task's failures count (make `status` unhealthy) when it is an enabled task of the task file;
those of a disabled task, or of a task no longer in the file, are listed apart and count for
nothing. While the file is invalid nobody knows which tasks are enabled: every failure counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cronctl.records import Run, safe_text, to_millisecond
from cronctl.shapes import run_json
from cronctl.taskfile import TaskFile

if TYPE_CHECKING:
    from cronctl.health import InvalidTaskFile

STDERR_HEAD_BYTES = 512


class FailureCounter(Protocol):
    """What the failures per task read (cronctl/store/stats.py)."""

    def failure_counts(
        self, since: datetime, recent_since: datetime
    ) -> list[tuple[Run, int, int]]: ...

    def stderr_heads(self, run_ids: Iterable[int], size: int = 512) -> dict[int, bytes]: ...


@dataclass(frozen=True)
class Failure:
    run: Run
    stderr_first_line: str


@dataclass(frozen=True)
class FailureGroup:
    """The failures of one task in the last day: how many, and the newest one. `counted` is
    False for a task that is disabled or no longer in the task file (`ignored_because` says
    which): its failures are shown, and make nothing unhealthy."""

    task: str
    last_hour: int
    last_day: int
    last: Failure
    counted: bool = True
    ignored_because: str | None = None


def first_line(data: bytes) -> str:
    for line in safe_text(data).splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def failure_groups(
    taskfile: TaskFile | InvalidTaskFile, store: FailureCounter, now: datetime
) -> list[FailureGroup]:
    """The failures of the last day per task, the counted ones first, each part by task name."""
    hour_ago = to_millisecond(now - timedelta(hours=1))
    counts = store.failure_counts(now - timedelta(days=1), hour_ago)
    ids = [run.id for run, _, _ in counts]
    heads = store.stderr_heads(ids, STDERR_HEAD_BYTES) if ids else {}
    groups = []
    for run, day, hour in counts:
        ignored = _ignored_because(taskfile, run.task)
        failure = Failure(run, first_line(heads.get(run.id, b"")))
        groups.append(FailureGroup(run.task, hour, day, failure, ignored is None, ignored))
    return sorted(groups, key=lambda g: (not g.counted, g.task))


def _ignored_because(taskfile: TaskFile | InvalidTaskFile, name: str) -> str | None:
    """Why a task's failures make nothing unhealthy, or None when they count. An invalid file
    tells neither whether a task is in it nor whether it is enabled: every task counts."""
    if not isinstance(taskfile, TaskFile):
        return None
    task = taskfile.tasks.get(name)
    if task is None:
        return "not in the task file"
    return None if task.enabled else "disabled"


def failure_json(failure: Failure) -> dict[str, Any]:
    return run_json(failure.run) | {"stderr_first_line": failure.stderr_first_line}


def group_json(group: FailureGroup) -> dict[str, Any]:
    return {
        "task": group.task,
        "counted": group.counted,
        "ignored_because": group.ignored_because,
        "last_hour": group.last_hour,
        "last_day": group.last_day,
        "last_failure": failure_json(group.last),
    }
