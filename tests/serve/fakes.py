"""Test doubles for the scheduler: a fake clock that advances on sleep, a launcher that records
runs in a real (in-memory) history store without starting processes, and a recorder that
writes at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cronctl.model import Task
from cronctl.records import Run, Status
from cronctl.serve.loop import Scheduler
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
    """The Recorder's interface, writing at once on the caller's thread."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.labels: list[str] = []

    def submit(
        self, label: str, write: Callable[[HistoryStore], None], *, replace: bool = False
    ) -> None:
        self.labels.append(label)
        try:
            write(self.store)
        except SlotTakenError:
            pass


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
            i for i in self.launched if not i.finished and (task is None or i.handle.task == task)
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
        self.recorder = SyncRecorder(self.store)
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
            woke = self.clock.sleep(min(timeout, remaining), wake=self.scheduler._wake)
            self.scheduler._wake.clear()
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
