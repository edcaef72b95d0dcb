"""The overdue and failing checks of `cronctl status` (what they mean: cronctl/health.py's
docstring), as pure functions of the tasks, the history and `now`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cronctl.history import HealthReader, RunReader
from cronctl.model import Task
from cronctl.notify.rules import VERDICT_STATUSES, failure_streak
from cronctl.records import FAILURE_STATUSES, Ack, Run
from cronctl.schedule import Schedule, SharedAnswers

OVERDUE_AFTER = timedelta(minutes=1)
FAILING_STREAK = 2
FAILING_CAP = 50  # streaks are counted up to this many runs
STREAK_ROWS = 500  # ... among at most this many of the task's latest rows


class RecentRuns(RunReader, HealthReader, Protocol):
    """What the overdue and failure checks read: runs and the health figures."""


@dataclass(frozen=True)
class Overdue:
    task: str
    slot: datetime
    late_seconds: float
    timezone: str


@dataclass(frozen=True)
class Failing:
    task: str
    consecutive: int
    last_run: Run
    acknowledged: Ack | None = None  # the task's acknowledgement, when it covers `last_run`


def overdue_tasks(
    tasks: Iterable[Task],
    store: RecentRuns,
    now: datetime,
    *,
    serve_started_at: datetime | None,
    file_changed_at: datetime | None,
) -> list[Overdue]:
    """Return the enabled tasks whose slot passed without a run (see the module docstring).

    The tasks' latest slots and newest runs are read in one statement each, and tasks of one
    parsed schedule with the same reference share their slot search: 100,000 tasks took 2 s
    with two reads and a search each (docs/performance.md, "100,000 tasks", round 2)."""
    running = store.running_tasks()
    candidates = [
        task
        for task in tasks
        if task.enabled and task.name not in running and not task.parsed_schedule().is_reboot
    ]
    names = [task.name for task in candidates]
    latest = store.latest_slots(names)
    newest = store.newest_starts([name for name in names if name not in latest])
    slot_searches: dict[datetime, SharedAnswers[datetime | None]] = {}
    found = []
    for task in candidates:
        reference = latest.get(task.name) or newest.get(task.name)
        moments = [m for m in (reference, serve_started_at, file_changed_at) if m is not None]
        if not moments:
            continue
        since = max(moments)
        search = slot_searches.get(since)
        if search is None:
            search = slot_searches[since] = SharedAnswers(_slot_after(since))
        slot = search(task.parsed_schedule())
        if slot is None:
            continue
        late = now - slot
        if late > OVERDUE_AFTER + timedelta(seconds=task.jitter):
            found.append(Overdue(task.name, slot, late.total_seconds(), task.timezone))
    return found


def _slot_after(since: datetime) -> Callable[[Schedule], datetime | None]:
    return lambda schedule: schedule.next_after(since)


def failing_tasks(tasks: Iterable[Task], store: RecentRuns) -> list[Failing]:
    """Return the enabled tasks whose latest FAILING_STREAK or more runs failed (a task
    without runs is not read: one query finds the tasks with runs)."""
    enabled = [task for task in tasks if task.enabled]
    with_runs = store.newest_starts([task.name for task in enabled])
    found = []
    for task in enabled:
        if task.name in with_runs:
            streak, last = _streak(task, store)
            if streak >= FAILING_STREAK and last is not None:
                found.append(Failing(task.name, streak, last))
    return found


def _streak(task: Task, store: RunReader) -> tuple[int, Run | None]:
    """Return the task's current failure streak (capped at FAILING_CAP) and its latest verdict.

    Reads the task's latest runs whatever their status (an index range, no filter that could
    walk a long run of skipped rows) a few at a time, more only while no success has ended
    the streak, at most STREAK_ROWS rows.
    """
    limit = 4 * (task.retries + 1)
    while True:
        rows = store.runs(task.name, limit=limit)
        verdicts = [r for r in rows if r.status in VERDICT_STATUSES]
        streak = failure_streak(verdicts, cap=FAILING_CAP)
        ended = any(r.status not in FAILURE_STATUSES for r in verdicts)
        if ended or len(rows) < limit or limit >= STREAK_ROWS or streak >= FAILING_CAP:
            return streak, verdicts[0] if verdicts else None
        limit = min(limit * 4, STREAK_ROWS)
