"""What the scheduling loop knows about each task, and the snapshot of the loop that its
report and status line are made from (`cronctl.serve.log`)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from cronctl.model import Task
from cronctl.runner.requests import RunRequest
from cronctl.schedule import Schedule
from cronctl.serve.log import LoopView, TaskView

if TYPE_CHECKING:
    from cronctl.serve.starts import Starts

Timer = tuple[float, int, str, str, RunRequest, frozenset[str]]
"""An entry of the timer heap: (due on the monotonic clock, order, retry or start, task name,
the run to start, the `after` chain that led to it)."""


class TaskState:
    """What the loop knows about one task of the task file."""

    __slots__ = ("_backlog", "gen", "last_slot", "next_slot", "queued", "schedule", "task")

    def __init__(self, task: Task, schedule: Schedule, gen: int) -> None:
        self.task = task
        self.schedule = schedule
        self.gen = gen  # heap entries of older generations are stale
        self.next_slot: datetime | None = None
        self.last_slot: datetime | None = None  # newest slot run, missed or claimed
        self.queued: tuple[RunRequest, frozenset[str]] | None = None  # overlap queue/replace
        self._backlog: deque[RunRequest] | None = None

    @property
    def backlog(self) -> deque[RunRequest]:
        """Catch-up `all`: the runs to start one after the other. Made on first use: an empty
        deque is 760 bytes, 76 MB at 100,000 tasks (docs/performance.md, "100,000 tasks")."""
        if self._backlog is None:
            self._backlog = deque()
        return self._backlog

    @backlog.setter
    def backlog(self, runs: deque[RunRequest]) -> None:
        self._backlog = runs

    @property
    def backlog_size(self) -> int:
        return len(self._backlog) if self._backlog is not None else 0

    def drop_backlog(self) -> None:
        """Forget the catch-up runs to go (without making a deque for a task that has none)."""
        self._backlog = None


def snapshot(
    states: Mapping[str, TaskState], starts: Starts, timers: Iterable[Timer], mono: float
) -> LoopView:
    """Return the loop's state as `serve.log` shows it (`mono`: the monotonic time now)."""
    pending: dict[str, list[tuple[str, float]]] = {}
    count = 0
    for due, _, kind, name, _request, _chain in sorted(timers):
        pending.setdefault(name, []).append((kind, due - mono))
        count += 1
    waiting = Counter(handle.task_name for handle in starts.waiting)
    tasks = tuple(
        TaskView(
            state.task,
            state.next_slot,
            state.schedule.is_reboot,
            runs=tuple(handle.run_id for handle in starts.of(name)),
            waiting=waiting[name],
            queued=state.queued is not None,
            backlog=state.backlog_size,
            timers=tuple(pending.get(name, ())),
        )
        for name, state in states.items()
    )
    return LoopView(
        tasks,
        going=starts.active,
        waiting=len(starts.waiting),
        max_parallel=starts.max_parallel,
        timers=count,
        started=starts.started,
    )
