"""The scheduler with its real parts: job threads, the runner's Executor, the shared store,
the recorder thread, on the real clock (short schedules, so each test takes a second or two)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from functools import partial

import pytest

from cronctl.clock import SYSTEM_CLOCK
from cronctl.errors import StoreError
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.serve.loop import Scheduler
from cronctl.serve.storage import Recorder, SerialStore
from cronctl.serve.workers import ThreadLauncher
from cronctl.store import HistoryStore
from tests.serve.fakes import task
from tests.support import wait_for as _wait_for

wait_for = partial(_wait_for, timeout=15.0)


@pytest.fixture
def live(tmp_path):
    made = []

    def make(tasks, **options):
        db = str(tmp_path / "history.db")
        store = HistoryStore(db)
        serial = SerialStore(store, SYSTEM_CLOCK)
        recorder = Recorder(HistoryStore(db), SYSTEM_CLOCK)
        recorder.start()
        executor = Executor(serial, clock=SYSTEM_CLOCK, kill_grace=1.0)
        scheduler = Scheduler(
            {t.name: t for t in tasks},
            clock=SYSTEM_CLOCK,
            launcher=ThreadLauncher(executor),
            store=store,  # serve's scheduler reads its slots at start, before any job
            recorder=recorder,
            **options,
        )
        thread = threading.Thread(target=scheduler.run, daemon=True)
        reader = HistoryStore(db)  # the tests read as `cronctl history` would
        made.append((scheduler, thread, recorder, store, reader))
        thread.start()
        return scheduler, reader

    yield make
    for scheduler, thread, recorder, store, reader in made:
        scheduler.request_stop()
        scheduler.request_stop()
        thread.join(10)
        recorder.close()
        store.close()
        reader.close()


def test_jobs_run_in_threads_and_are_recorded(live, tmp_path):
    _, store = live([task("echo", command="echo out; echo err >&2")])
    run = wait_for(lambda: next(iter(store.runs("echo", statuses=[Status.SUCCEEDED])), None))
    full = store.get_run(run.id)
    assert full.stdout.data == b"out\n" and full.stderr.data == b"err\n"
    assert full.trigger == Trigger.SCHEDULE and full.scheduled_at.microsecond == 0
    lateness = (full.started_at - full.scheduled_at).total_seconds()
    assert 0 <= lateness < 1.0


def test_when_condition_false_records_skipped(live):
    _, store = live([task("w", when="exit 3")])
    run = wait_for(
        lambda: (
            next(iter(store.runs("w")), None)
            if store.runs("w") and store.runs("w")[0].status != "running"
            else None
        )
    )
    assert run.status == Status.SKIPPED
    assert run.reason == "the when condition `exit 3` exited 3"  # #14, item 8: its wording


def test_long_jobs_do_not_hold_the_loop(live):
    _, store = live([task("slow", command="sleep 5", overlap="allow"), task("fast")])
    wait_for(lambda: len(store.runs("fast", statuses=[Status.SUCCEEDED])) >= 2)
    assert len(store.runs("slow", statuses=[Status.RUNNING])) >= 1


def test_a_job_that_cannot_start_is_recorded_and_the_loop_goes_on(live, tmp_path):
    _, store = live([task("bad", working_dir=str(tmp_path / "missing")), task("good")])
    wait_for(lambda: store.runs("bad", statuses=[Status.ERROR]))
    wait_for(lambda: len(store.runs("good", statuses=[Status.SUCCEEDED])) >= 2)


class Flaky:
    """A store whose writes fail `failures` times with the given error, then work."""

    def __init__(self, store, failures, message="database is locked"):
        self.store = store
        self.failures = failures
        self.message = message
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def finish_run(self, *args, **kwargs):
        return self._maybe_fail(self.store.finish_run, *args, **kwargs)

    def heartbeat(self, *args, **kwargs):
        return self._maybe_fail(self.store.heartbeat, *args, **kwargs)

    def _maybe_fail(self, write, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError(self.message)
        return write(*args, **kwargs)


class FastClock:
    """The real clock, with back-off waits shortened a hundred times."""

    def now(self):
        return SYSTEM_CLOCK.now()

    def monotonic(self):
        return SYSTEM_CLOCK.monotonic()

    def sleep(self, seconds, wake=None):
        return SYSTEM_CLOCK.sleep(seconds / 100, wake)


def test_serial_store_keeps_a_result_until_the_database_takes_it(tmp_path, caplog):
    inner = HistoryStore(str(tmp_path / "h.db"))
    flaky = Flaky(inner, failures=3)
    serial = SerialStore(flaky, FastClock())
    run_id = inner.start_run("t", "manual", started_at=datetime.now(UTC))
    serial.finish_run(run_id, status=Status.SUCCEEDED, finished_at=datetime.now(UTC))
    assert inner.get_run(run_id).status == Status.SUCCEEDED
    assert flaky.calls == 4
    assert caplog.text.count("cannot record the end of run") == 1  # said once, not per attempt
    serial.give_up.set()
    flaky.failures, flaky.calls = 10, 0
    with pytest.raises(StoreError):
        serial.finish_run(run_id, status=Status.FAILED, finished_at=datetime.now(UTC))
    inner.close()


def test_recorder_retries_in_order(tmp_path, monkeypatch):
    from cronctl.serve import storage

    monkeypatch.setattr(storage, "BACKOFF", (0.01,))
    inner = HistoryStore(str(tmp_path / "h.db"))
    inner.serve_started(pid=1, hostname="h", version="v", now=datetime.now(UTC))
    flaky = Flaky(inner, failures=2, message="database or disk is full")
    recorder = Recorder(flaky, SYSTEM_CLOCK)
    recorder.start()
    done = []
    recorder.submit("heartbeat", lambda s: s.heartbeat(datetime.now(UTC)))
    recorder.submit("second", lambda s: done.append(flaky.calls))
    wait_for(lambda: done, what="the second write")
    assert done == [3]  # the second write waited for the first to succeed
    recorder.close()
