"""Serve's claimer spawns each claimed run's job itself, in slot order, right after the
commit that holds the claims, and hands the process to the run's own thread (issue 18: a burst
of jobs no longer interleaves its spawns with 500 threads' start-up work)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from cronctl.records import Status, Trigger
from cronctl.runner.early import Spawned
from cronctl.runner.execute import Executor
from cronctl.runner.process import StartedJob
from cronctl.runner.requests import RunRequest, StopSignal
from cronctl.serve import workers
from cronctl.serve.storage import SerialStore
from cronctl.serve.workers import Handle, ThreadLauncher
from cronctl.store import HistoryStore
from tests.serve.fakes import FakeClock, task, utc
from tests.serve.test_storage_batches import Collected
from tests.support import wait_for

T0 = utc(2026, 1, 5, 12, 0, 0)


class Watching(Executor):
    """Notes, at each early spawn, the thread it runs on and the rows another connection sees."""

    def __init__(self, store, reader: HistoryStore) -> None:
        super().__init__(store, kill_grace=1.0)
        self.reader = reader
        self.spawns: list[tuple[str, int, set[int]]] = []
        self.early: list[Spawned | None] = []

    def prepare_early(self, request, run_id):
        prepared = super().prepare_early(request, run_id)
        if prepared is None:
            self.early.append(None)
        return prepared

    def start_prepared(self, request, prepared):
        run_id = int(prepared[0]["CRONCTL_RUN_ID"])
        visible = {run.id for run in self.reader.runs(limit=None)}
        self.spawns.append((threading.current_thread().name, run_id, visible))
        spawned = super().start_prepared(request, prepared)
        self.early.append(spawned)
        return spawned


@pytest.fixture
def stores(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path) as store, HistoryStore(path) as reader:
        yield SerialStore(store, FakeClock(T0)), reader


def handles(count: int, **values) -> list[Handle]:
    return [
        Handle(RunRequest(task(f"t{i}", **values), Trigger.SCHEDULE, scheduled_at=T0))
        for i in range(count)
    ]


def stoppable_sleeper(scheduled_at: datetime) -> Handle:
    """A run of `sleep 30` for the slot `scheduled_at`, which the test stops."""
    request = RunRequest(
        task("t", command="sleep 30"),
        Trigger.SCHEDULE,
        scheduled_at=scheduled_at,
        stop=StopSignal(),
    )
    return Handle(request)


def test_the_claimer_spawns_in_slot_order_once_the_claims_are_committed(stores, tmp_path):
    serial, reader = stores
    out = tmp_path / "out"
    executor = Watching(serial, reader)
    done = Collected()
    batch = handles(6, command=f"echo $CRONCTL_RUN_ID >> {out}; echo hi")
    ThreadLauncher(executor).launch(batch, done)
    assert wait_for(lambda: len(done.completions) == 6, timeout=20)

    run_ids = [handle.run_id for handle in batch]
    assert [run_id for _, run_id, _ in executor.spawns] == run_ids  # slot order
    assert {name for name, _, _ in executor.spawns} == {"cronctl-claimer"}
    for _, run_id, visible in executor.spawns:
        assert run_id in visible  # the claim was committed before its job was spawned
    assert all(isinstance(e, Spawned) and isinstance(e.job, StartedJob) for e in executor.early)
    runs = {c.run.id: c.run for c in done.completions if c.run is not None}
    assert sorted(runs) == sorted(run_ids)
    for run_id in run_ids:
        stored = reader.get_run(run_id)
        assert stored.status == Status.SUCCEEDED and stored.pid is not None
        assert stored.stdout is not None and stored.stdout.data == b"hi\n"
    assert sorted(int(x) for x in out.read_text().split()) == sorted(run_ids)


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({"command": "true", "when": "false"}, Status.SKIPPED),  # the condition runs first
        ({"command": "true", "env_file": ["/nonexistent/cronctl.env"]}, Status.ERROR),
    ],
    ids=["when-condition", "unreadable-env-file"],
)
def test_runs_that_end_before_their_job_start_on_their_own_thread(stores, values, status):
    serial, reader = stores
    executor = Watching(serial, reader)
    done = Collected()
    ThreadLauncher(executor).launch(handles(1, **values), done)
    assert wait_for(lambda: len(done.completions) == 1, timeout=20)
    assert executor.early == [None]
    assert done.completions[0].run.status == status


def test_a_job_spawned_early_is_stopped_like_any_other(stores):
    serial, reader = stores
    executor = Watching(serial, reader)
    done = Collected()
    handle = stoppable_sleeper(T0)
    ThreadLauncher(executor).launch([handle], done)
    assert wait_for(lambda: bool(executor.early), timeout=20)
    handle.stop("replaced by a newer run")
    assert wait_for(lambda: len(done.completions) == 1, timeout=20)
    run = done.completions[0].run
    assert run.status == Status.INTERRUPTED and run.reason == "replaced by a newer run"


def test_a_run_whose_thread_cannot_start_leaves_no_process(stores, monkeypatch):
    serial, reader = stores
    executor = Watching(serial, reader)
    done = Collected()

    def no_thread(*args):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(workers._thread, "start_new_thread", no_thread)
    [handle] = handles(1, command="sleep 30")
    ThreadLauncher(executor).launch([handle], done)
    assert wait_for(lambda: len(done.completions) == 1, timeout=20)
    assert done.completions[0].run is None
    [early] = executor.early
    assert early is not None and isinstance(early.job, StartedJob)
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(early.job.proc.pid, 0)
    stored = reader.get_run(handle.run_id)
    assert stored.status == Status.ERROR and "can't start new thread" in (stored.reason or "")


# ---------------------------------------------------------------- fired ahead of the instant


class Timed(Watching):
    """Watching, plus when each run was prepared (the real clock)."""

    def __init__(self, store, reader: HistoryStore) -> None:
        super().__init__(store, reader)
        self.prepared_at: list[float] = []

    def prepare_early(self, request, run_id):
        self.prepared_at.append(time.time())
        return super().prepare_early(request, run_id)


def ahead(seconds: float) -> datetime:
    """An instant `seconds` from now, to the millisecond (as the history keeps times)."""
    instant = datetime.now(UTC) + timedelta(seconds=seconds)
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def test_runs_fired_ahead_are_claimed_and_prepared_before_their_instant_spawned_at_it(
    stores, tmp_path
):
    serial, reader = stores
    executor = Timed(serial, reader)
    done = Collected()
    out = tmp_path / "starts"
    instant = ahead(1.0)
    count = 2 * workers.CLAIM_CHUNK + 6  # three chunks
    batch = [
        Handle(
            RunRequest(
                task(f"t{i}", command=f"date +%s.%N >> {out}"),
                Trigger.SCHEDULE,
                scheduled_at=instant,
            )
        )
        for i in range(count)
    ]
    ThreadLauncher(executor).launch(batch, done)
    assert wait_for(lambda: len(done.completions) == count, timeout=30)

    run_ids = [handle.run_id for handle in batch]
    assert max(executor.prepared_at) < instant.timestamp()
    assert set(run_ids) <= executor.spawns[0][2]  # every chunk claimed before the first spawn
    assert [run_id for _, run_id, _ in executor.spawns] == run_ids  # slot order
    starts = [float(line) for line in out.read_text().split()]
    assert len(starts) == count and min(starts) >= instant.timestamp()
    for run_id in run_ids:
        stored = reader.get_run(run_id)
        assert stored.status == Status.SUCCEEDED
        assert instant <= stored.started_at < instant + timedelta(seconds=10)  # the spawn's


def test_a_run_fired_ahead_shows_its_instant_as_its_start_until_its_job_starts(stores):
    serial, reader = stores
    executor = Timed(serial, reader)
    done = Collected()
    instant = ahead(3.0)
    ThreadLauncher(executor).launch(
        [Handle(RunRequest(task("t"), Trigger.SCHEDULE, scheduled_at=instant))], done
    )
    assert wait_for(lambda: bool(reader.runs(limit=None)), timeout=2.5)
    [row] = reader.runs(limit=None)
    assert datetime.now(UTC) < instant  # read before its instant
    assert (row.status, row.started_at, row.pid) == (Status.RUNNING, instant, None)
    assert wait_for(lambda: len(done.completions) == 1, timeout=20)
    assert done.completions[0].run.status == Status.SUCCEEDED


def test_a_run_stopped_while_it_waits_for_its_instant_never_starts(stores):
    serial, reader = stores
    executor = Timed(serial, reader)
    done = Collected()
    handle = stoppable_sleeper(ahead(20.0))
    began = time.monotonic()
    ThreadLauncher(executor).launch([handle], done)
    assert wait_for(lambda: bool(reader.runs(limit=None)), timeout=10)
    handle.stop(workers.SHUTDOWN_REASON)
    assert wait_for(lambda: len(done.completions) == 1, timeout=10)
    assert time.monotonic() - began < 15  # woken by the stop, not by the instant
    run = done.completions[0].run
    assert run.status == Status.INTERRUPTED and run.pid is None
