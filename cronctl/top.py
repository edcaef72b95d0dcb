"""What `cronctl top` shows, as data: one frame of the whole system (README.md#watching-live).

A frame is serve's state, the jobs running now (with the last line each has written, from a
provider passed in), the next runs (cronctl/upcoming.py), the failures of the last day by task
(cronctl/failures.py) and each task's recent outcomes and durations. The terminal form is
drawn by cronctl/cli/top_render.py; the loop that refreshes it each second is the command's.

`top` runs for hours beside serve, so a frame costs little (under 2% of a core at one frame a
second: docs/performance.md#latest-figures): the task file is read again only when it changed
on disk (`TaskFileSource`); serve's row and the runs in progress are read each frame (a row
and a partial index); the failures and the outcomes are read again only when the database was
written since (`data_version`), or a minute passed (the last hour and day move on); the next
runs are computed again only when the first of them has passed or the tasks changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cronctl import taskfile
from cronctl.errors import TaskFileError
from cronctl.failures import FailureCounter, FailureGroup, failure_groups
from cronctl.health import InvalidTaskFile, ServeHealth, ServeProbe, probed_serve_health
from cronctl.history import ServeStateRecorder
from cronctl.records import FAILURE_STATUSES, FINISHED_STATUSES, Ack, Run, Status
from cronctl.taskfile import Stamp, TaskFile, stamp_of
from cronctl.upcoming import Fire, upcoming

NEXT_RUNS = 30  # more than a tall terminal shows; the renderer keeps what fits
OUTCOMES = 40  # per task, for the charts; the renderer keeps what fits the width
REREAD_AFTER_SECONDS = 60  # failures of the last hour and day move on even with no writes

LastLine = Callable[[int], "str | None"]
Outcomes = dict[str, list[tuple[Status, int | None]]]


class TopReader(ServeStateRecorder, FailureCounter, Protocol):
    """What a frame reads of the history (cronctl.history.ReadOnlyReader)."""

    def data_version(self) -> int: ...

    def running_runs(self) -> list[Run]: ...

    def recent_outcomes(
        self, tasks: list[str], count: int
    ) -> dict[str, list[tuple[Status, int | None]]]: ...

    def acks(self) -> dict[str, Ack]: ...


@dataclass(frozen=True)
class RunningJob:
    run: Run
    elapsed_seconds: float
    last_line: str | None


@dataclass(frozen=True)
class TaskChart:
    """A task's latest outcomes and durations, oldest first (the newest at the right)."""

    task: str
    statuses: tuple[Status, ...]
    durations_ms: tuple[int, ...]

    @property
    def failing(self) -> bool:
        finished = [s for s in self.statuses if s in FINISHED_STATUSES]
        return bool(finished) and finished[-1] in FAILURE_STATUSES


@dataclass(frozen=True)
class TopFrame:
    now: datetime
    serve: ServeHealth
    running: list[RunningJob]
    next_runs: list[Fire]
    failures: list[FailureGroup]
    charts: list[TaskChart]
    task_count: int
    task_file_error: str | None
    zones: dict[str, str]  # each task's zone, for the times of its runs


class TaskFileSource:
    """The task file, read again only when its (inode, size, mtime) changed; while it is
    invalid, the error and no tasks (the history is still shown)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: Stamp | None | str = "never read"
        self._current: TaskFile | InvalidTaskFile = TaskFile(path, "")
        self.reads = 0

    def current(self) -> TaskFile | InvalidTaskFile:
        stamp = stamp_of(self.path)
        if stamp != self._stamp:
            self._stamp = stamp
            self.reads += 1
            try:
                self._current = taskfile.load(self.path)
            except TaskFileError as exc:
                self._current = InvalidTaskFile(self.path, exc.message)
        return self._current


class FrameBuilder:
    """Builds frames, keeping what has not changed since the last one (see the module)."""

    def __init__(self, last_line: LastLine, probe: ServeProbe | None = None) -> None:
        self.last_line = last_line
        self.probe = probe
        self._figures_key: tuple[object, ...] | None = None
        self._failures: list[FailureGroup] = []
        self._charts: list[TaskChart] = []
        self._next_key: object = None
        self._next: list[Fire] = []

    def frame(
        self, history: TopReader, tasks: TaskFile | InvalidTaskFile, now: datetime
    ) -> TopFrame:
        valid = tasks if isinstance(tasks, TaskFile) else None
        failures, task_charts = self._read_figures(history, tasks, now)
        running = [
            RunningJob(run, _seconds_since(run.started_at, now), self.last_line(run.id))
            for run in history.running_runs()
        ]
        return TopFrame(
            now=now,
            serve=probed_serve_health(history, now, self.probe),
            running=running,
            next_runs=self._next_runs(valid, now),
            failures=failures,
            charts=task_charts,
            task_count=0 if valid is None else len(valid.tasks),
            task_file_error=tasks.error if isinstance(tasks, InvalidTaskFile) else None,
            zones={} if valid is None else {n: t.timezone for n, t in valid.tasks.items()},
        )

    def _next_runs(self, tasks: TaskFile | None, now: datetime) -> list[Fire]:
        if tasks is None:
            return []
        stale = self._next and self._next[0].at <= now
        if self._next_key is not tasks or stale:
            self._next_key = tasks
            self._next = upcoming(tasks.tasks.values(), now, count=NEXT_RUNS).fires
        return [fire for fire in self._next if fire.at > now]

    def _read_figures(
        self, history: TopReader, tasks: TaskFile | InvalidTaskFile, now: datetime
    ) -> tuple[list[FailureGroup], list[TaskChart]]:
        minute = int(now.timestamp()) // REREAD_AFTER_SECONDS
        key = (id(history), history.data_version(), id(tasks), minute)
        if key != self._figures_key:
            self._figures_key = key
            # As `status` counts them: a failure acknowledged with `cronctl ack` is not shown.
            self._failures = failure_groups(tasks, history, now, acks=history.acks())
            names = sorted(tasks.tasks) if isinstance(tasks, TaskFile) else []
            self._charts = charts(history.recent_outcomes(names, OUTCOMES))
        return self._failures, self._charts


def build_frame(
    history: TopReader,
    tasks: TaskFile | InvalidTaskFile,
    now: datetime,
    last_line: LastLine,
    probe: ServeProbe | None = None,
) -> TopFrame:
    """One frame, read whole (`--once`; the live view keeps a `FrameBuilder`)."""
    return FrameBuilder(last_line, probe).frame(history, tasks, now)


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    return 0.0 if moment is None else max(0.0, (now - moment).total_seconds())


def charts(outcomes: Outcomes) -> list[TaskChart]:
    """One chart a task with runs, oldest outcome first: the tasks whose last finished run
    failed first, then by name."""
    found = [
        TaskChart(
            task,
            tuple(status for status, _ in reversed(latest)),
            tuple(
                duration
                for status, duration in reversed(latest)
                if duration is not None and status in FINISHED_STATUSES
            ),
        )
        for task, latest in outcomes.items()
        if latest
    ]
    return sorted(found, key=lambda chart: (not chart.failing, chart.task))
