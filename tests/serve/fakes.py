"""Test doubles for the scheduler: a fake clock that advances on sleep, a launcher that records
runs in a real (in-memory) history store without starting processes, and a background writer
that writes the same rows at once, on the caller's thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cronctl.listeners import NoEvents, RunEvents
from cronctl.model import DEFAULT_KEEP_RUNS, Task
from cronctl.records import Run, Status
from cronctl.runner.requests import RunRequest
from cronctl.serve.loop import Scheduler
from cronctl.serve.storage import write_missed, write_skipped
from cronctl.serve.workers import Completion, Done, Handle
from cronctl.store import HistoryStore, SlotTakenError

UTC = UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class FakeClock:
    """Wall clock and monotonic clock under the test's control; sleep advances both."""

    def __init__(self, start: datetime) -> None:
        self.wall = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            return True
        self.sleeps.append(seconds)
        self.advance(seconds)
        return False

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def step_wall(self, seconds: float) -> None:
        """The wall clock alone moves (NTP step, `date -s`, or suspend and resume)."""
        self.wall += timedelta(seconds=seconds)


class SyncRecorder:
    """A BackgroundWrites (serve.writes) that writes the rows serve's Recorder writes, at once
    on the caller's thread, tells `events` about the rows of runs that never ran, and keeps
    each call in `calls` (method name, arguments)."""

    def __init__(self, store: HistoryStore, events: RunEvents | None = None) -> None:
        self.store = store
        self.events = events or NoEvents()
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def called(self, method: str) -> list[tuple[object, ...]]:
        return [args for name, args in self.calls if name == method]

    def record_skipped(self, request: RunRequest, reason: str, now: datetime) -> None:
        self.calls.append(("record_skipped", (request, reason, now)))
        with contextlib.suppress(SlotTakenError):  # as the Recorder's queue does
            write_skipped(self.store, self.events, request, reason, now)

    def record_missed(self, task: Task, slots: tuple[datetime, ...], reason: str) -> None:
        self.calls.append(("record_missed", (task, slots, reason)))
        write_missed(self.store, self.events, task, slots, reason)

    def heartbeat(self, now: datetime) -> None:
        self.calls.append(("heartbeat", (now,)))
        self.store.heartbeat(now)

    def tasks_loaded(self, now: datetime) -> None:
        self.calls.append(("tasks_loaded", (now,)))
        self.store.tasks_loaded(now)

    def retention(self, now: datetime, *, keep_days: int, keep_runs: dict[str, int]) -> None:
        self.calls.append(("retention", (now, keep_days, keep_runs)))
        self.store.prune(
            now=now, keep_days=keep_days, keep_runs=keep_runs, default_keep_runs=DEFAULT_KEEP_RUNS
        )


@dataclass
class Launched:
    handle: Handle
    done: Done
    at: datetime
    finished: bool = False


@dataclass
class FakeLauncher:
    """Claims each run in the store as the real worker does; the test decides how it ends.

    `outcomes[task]`: a status, or a callable(handle) -> status, applied at launch; tasks
    without an outcome keep running until `finish` (or `settle` for stopped ones).
    """

    store: HistoryStore
    clock: FakeClock
    outcomes: dict[str, object] = field(default_factory=dict)
    launched: list[Launched] = field(default_factory=list)
    taken: list[Handle] = field(default_factory=list)

    def launch(self, handles: list[Handle], done: Done) -> None:
        for handle in handles:
            self.launch_one(handle, done)

    def launch_one(self, handle: Handle, done: Done) -> None:
        request = handle.request
        if request.scheduled_at is not None and request.scheduled_at > self.clock.now():
            # Fired ahead (FIRE_AHEAD): as the real claimer, start it at its instant.
            self.clock.advance((request.scheduled_at - self.clock.now()).total_seconds())
        try:
            handle.run_id = self.store.start_run(
                request.task.name,
                request.trigger,
                attempt=request.attempt,
                scheduled_at=request.scheduled_at,
                started_at=self.clock.now(),
            )
        except SlotTakenError:
            self.taken.append(handle)
            done(Completion(handle, None))
            return
        item = Launched(handle, done, self.clock.now())
        self.launched.append(item)
        outcome = self.outcomes.get(request.task.name)
        if callable(outcome):
            outcome = outcome(handle)
        if outcome is not None:
            self.finish(item, str(outcome))

    def running(self, task: str | None = None) -> list[Launched]:
        return [
            i
            for i in self.launched
            if not i.finished and (task is None or i.handle.task_name == task)
        ]

    def finish(
        self, item: Launched | str, status: str = Status.SUCCEEDED, reason: str | None = None
    ) -> Run:
        if isinstance(item, str):
            item = self.running(item)[0]
        item.finished = True
        exit_code = 0 if status == Status.SUCCEEDED else (1 if status == Status.FAILED else None)
        self.store.finish_run(
            item.handle.run_id,
            status=status,
            finished_at=self.clock.now(),
            duration_ms=0,
            exit_code=exit_code,
            reason=reason,
        )
        run = self.store.get_run(item.handle.run_id)
        item.done(Completion(item.handle, run))
        return run

    def settle(self) -> None:
        """Runs asked to stop end now, `interrupted` with the reason they were given."""
        for item in self.running():
            stop = item.handle.request.stop
            if stop is not None and stop.is_set():
                self.finish(item, Status.INTERRUPTED, item.handle.request.stop.reason)


class Harness:
    def __init__(
        self, tasks: Iterable[Task], start: datetime, store: HistoryStore | None = None, **options
    ) -> None:
        self.clock = FakeClock(start)
        self.store = store or HistoryStore(":memory:")
        self.launcher = FakeLauncher(self.store, self.clock, options.pop("outcomes", {}))
        self.recorder = SyncRecorder(self.store, options.pop("events", None))
        self.scheduler = Scheduler(
            {t.name: t for t in tasks},
            clock=self.clock,
            launcher=self.launcher,
            store=self.store,
            recorder=self.recorder,
            **options,
        )

    def start(self) -> Harness:
        self.scheduler.start()
        return self

    def run_for(self, seconds: float, *, settle: bool = True) -> None:
        self.run_until(self.clock.now() + timedelta(seconds=seconds), settle=settle)

    def run_until(self, until: datetime, *, settle: bool = True) -> None:
        """Drive the loop as `Scheduler.run` does, with the fake clock, until `until`."""
        if self.scheduler._last is None:
            self.start()
        busy = 0
        while True:
            if settle:
                self.launcher.settle()
            timeout = self.scheduler.step()
            remaining = (until - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            woke = self.clock.sleep(min(timeout, remaining), wake=self.scheduler.inbox.wake)
            self.scheduler.inbox.wake.clear()
            busy = busy + 1 if (woke or timeout == 0) else 0
            assert busy < 10_000, "the loop does not make progress"

    def runs(self, task: str | None = None, **filters) -> list[Run]:
        return list(reversed(self.store.runs(task, limit=None, **filters)))

    def statuses(self, task: str | None = None) -> list[str]:
        return [r.status for r in self.runs(task)]


def harness_maker(start: datetime) -> Iterator[Callable[..., Harness]]:
    """For a harness fixture: yields make(tasks, start=start, **options) -> Harness and closes
    the store of every harness it made at the end."""
    made: list[Harness] = []

    def make(tasks: Iterable[Task], start: datetime = start, **options) -> Harness:
        h = Harness(tasks, start, **options)
        made.append(h)
        return h

    yield make
    for h in made:
        h.store.close()


def task(name: str = "t", schedule: str = "@every 1s", **values) -> Task:
    values.setdefault("timezone", "UTC")
    return Task(name=name, schedule=schedule, command=values.pop("command", "true"), **values)
