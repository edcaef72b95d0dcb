"""The failures of the last day, grouped by task: what `status` shows one row a task (README.md,
"Health"), and the JSON of a failure.

A task's failures count (make `status` unhealthy) when it is an enabled task of the task file;
those of a disabled task, or of a task no longer in the file, are listed apart and count for
nothing. While the file is invalid nobody knows which tasks are enabled: every failure counts.
Failures that ended before the task's acknowledgement (`cronctl ack`) are seen: listed apart
too, until a failure ends after it (README.md, "Acknowledging failures").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cronctl import timefmt
from cronctl.records import Ack, Run, safe_text, to_millisecond
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
    acknowledged: Ack | None = None  # the task's acknowledgement, when it covers `last`


def first_line(data: bytes) -> str:
    for line in safe_text(data).splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def covers(ack: Ack | None, run: Run) -> bool:
    """Whether `ack` acknowledged the failed `run`: the run ended (else started) before it."""
    if ack is None:
        return False
    ended = run.finished_at or run.started_at
    return ended is not None and ended <= ack.at


def acknowledged_because(ack: Ack, when: str | None = None) -> str:
    """How `status` says a task's failures were acknowledged (`when`: the time as shown;
    ISO 8601 to the second by default, as in JSON)."""
    who = f" ({ack.by})" if ack.by else ""
    return f"acknowledged by ack at {when or timefmt.iso_seconds(ack.at)}{who}"


def failure_groups(
    taskfile: TaskFile | InvalidTaskFile,
    store: FailureCounter,
    now: datetime,
    acks: Mapping[str, Ack] | None = None,
) -> list[FailureGroup]:
    """The failures of the last day per task, the counted ones first, each part by task name;
    a task whose acknowledgement covers its newest failure is not counted."""
    hour_ago = to_millisecond(now - timedelta(hours=1))
    counts = store.failure_counts(now - timedelta(days=1), hour_ago)
    ids = [run.id for run, _, _ in counts]
    heads = store.stderr_heads(ids, STDERR_HEAD_BYTES) if ids else {}
    groups = []
    for run, day, hour in counts:
        ignored = _ignored_because(taskfile, run.task)
        ack = (acks or {}).get(run.task)
        seen = ack if covers(ack, run) else None
        if ignored is None and seen is not None:
            ignored = acknowledged_because(seen)
        failure = Failure(run, first_line(heads.get(run.id, b"")))
        groups.append(FailureGroup(run.task, hour, day, failure, ignored is None, ignored, seen))
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
    } | ack_json(group.acknowledged)


def ack_json(ack: Ack | None) -> dict[str, Any]:
    """The acknowledgement's keys of a task's JSON entry in `status --json`."""
    return {
        "acknowledged_at": timefmt.iso(ack.at) if ack else None,
        "acknowledged_by": ack.by if ack else None,
        "acknowledged_note": ack.note if ack else None,
    }
