"""`cronctl ack`: say "I know about that failure" (README.md, "Acknowledging failures").

An acknowledgement is a moment per task (the newest `ack` of it), stored in the history: the
task's failures that ended at or before it are seen. `status` lists them apart and counts them
for nothing, until a failure ends after it; the task's failing streak likewise. The runs are
never changed: `metrics` and `history` count every failure, acknowledged or not.

What it covers: failed runs (the last day's failures by task) and a task failing repeatedly.
Not overdue tasks: an overdue task has no run to acknowledge, and it says that serve is not
running the task now, which stays true whatever anyone has seen; it clears when the task runs.
Missed runs make nothing unhealthy, so there is nothing of theirs to acknowledge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cronctl.errors import UsageError
from cronctl.failures import Failure, FailureGroup, ack_json, covers
from cronctl.records import Ack
from cronctl.taskfile import TaskFile, unknown_task

if TYPE_CHECKING:
    from cronctl.health import Health, InvalidTaskFile, StatusHistory

MAX_NOTE = 500


def unseen_last_hour(
    groups: Iterable[FailureGroup], last_hour: Sequence[Failure], acks: Mapping[str, Ack]
) -> int:
    """The failures of the last hour that count: those of counted tasks, less the ones an
    acknowledgement covers (a task failing again after its ack counts its new failures)."""
    total = 0
    for group in groups:
        if not group.counted:
            continue
        ack = acks.get(group.task)
        if ack is None:
            total += group.last_hour
        else:
            mine = (f for f in last_hour if f.run.task == group.task)
            total += sum(1 for f in mine if not covers(ack, f.run))
    return total


@dataclass(frozen=True)
class AckOutcome:
    """What `ack` did for one task: `ack` is the new acknowledgement, or None when the task
    had no current failure (`previous` is then its standing one, if any)."""

    task: str
    ack: Ack | None
    failures_last_day: int = 0
    failing_streak: int = 0
    previous: Ack | None = None


def current_failures(report: Health) -> dict[str, tuple[int, int]]:
    """Per task with a failure not yet acknowledged that counts: (failures in the last day,
    failing streak)."""
    found: dict[str, tuple[int, int]] = {}
    for group in report.failure_groups:
        if group.counted:
            found[group.task] = (group.last_day, 0)
    for failing in report.failing:
        if failing.acknowledged is None:
            day = found.get(failing.task, (0, 0))[0]
            found[failing.task] = (day, failing.consecutive)
    return found


def acknowledge(
    taskfile: TaskFile | InvalidTaskFile,
    store: StatusHistory,
    now: datetime,
    names: Sequence[str],
    *,
    every: bool = False,
    by: str | None = None,
    note: str | None = None,
) -> list[AckOutcome]:
    """Acknowledge the current failures of `names` (or, with `every`, of every task that has
    one); a task without one is told so and nothing is stored for it. Unknown names raise
    UnknownTaskError (exit 2) before anything is written."""
    from cronctl.health import health

    if not names and not every:
        raise UsageError("name the tasks to acknowledge, or give --all", hint="cronctl ack NAME...")
    if note is not None and len(note) > MAX_NOTE:
        raise UsageError(f"the note is {len(note)} characters long; at most {MAX_NOTE}")
    known = _known_names(taskfile, store)
    for name in names:
        if name not in known:
            raise unknown_task(name, dict.fromkeys(known))
    report = health(taskfile, store, now)
    current = current_failures(report)
    chosen = sorted(current) if every else list(dict.fromkeys(names))
    previous = store.acks()
    outcomes = []
    for name in chosen:
        if name not in current:
            outcomes.append(AckOutcome(name, None, previous=previous.get(name)))
            continue
        day, streak = current[name]
        ack = store.acknowledge(name, at=now, by=by, note=note)
        outcomes.append(AckOutcome(name, ack, day, streak))
    return outcomes


def _known_names(taskfile: TaskFile | InvalidTaskFile, store: StatusHistory) -> list[str]:
    """The tasks one may acknowledge: those of the task file; while it is invalid (every
    failure then counts), those of the history."""
    if isinstance(taskfile, TaskFile):
        return list(taskfile.tasks)
    return store.task_names()


def outcome_json(outcome: AckOutcome) -> dict[str, Any]:
    standing = outcome.ack or outcome.previous
    return {
        "task": outcome.task,
        "acknowledged": outcome.ack is not None,
        "failures_last_day": outcome.failures_last_day,
        "failing_streak": outcome.failing_streak,
    } | ack_json(standing)
