"""Serve's runs are watched by one supervising thread and recorded by one finisher thread
(serve/workers.py, runner/supervisor.py; issue 18, round 4), not by a thread each."""

from __future__ import annotations

import os
import time

from cronctl.clock import SYSTEM_CLOCK
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest, StopSignal
from cronctl.serve.storage import SerialStore
from cronctl.serve.workers import Handle, ThreadLauncher
from cronctl.store import HistoryStore
from tests.serve.fakes import task, utc
from tests.serve.test_storage_batches import Collected
from tests.support import wait_for

T0 = utc(2026, 1, 5, 12, 0, 0)


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_twenty_running_jobs_take_no_thread_each(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path) as store, HistoryStore(path) as reader:
        launcher = ThreadLauncher(Executor(SerialStore(store, SYSTEM_CLOCK), kill_grace=1.0))
        done = Collected()
        before = threads()
        batch = [
            Handle(RunRequest(task(f"t{i}", command=f"sleep 1; echo {i}"), Trigger.SCHEDULE))
            for i in range(20)
        ]
        launcher.launch(batch, done)
        assert wait_for(lambda: len(reader.runs(limit=None)) == 20, timeout=20)
        running = threads()
        assert wait_for(lambda: len(done.completions) == 20, timeout=30)
        # The claimer, the supervisor and the finisher (and a spare): not one per job.
        assert running - before <= 4
        for handle in batch:
            stored = reader.get_run(handle.run_id)
            assert stored.status == Status.SUCCEEDED and stored.pid is not None
            assert stored.stdout.data == f"{handle.task_name[1:]}\n".encode()


def test_a_locked_database_stalls_the_ends_but_not_the_timeouts(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path, timeout=0.05) as store, HistoryStore(path) as other:
        launcher = ThreadLauncher(Executor(SerialStore(store, SYSTEM_CLOCK), kill_grace=0.5))
        done = Collected()
        slow = Handle(RunRequest(task("slow", command="sleep 30", timeout=1), Trigger.SCHEDULE))
        quick = Handle(RunRequest(task("quick", command="echo hi"), Trigger.SCHEDULE))
        launcher.launch([slow, quick], done)
        assert wait_for(lambda: len(done.completions) == 1, timeout=20)  # quick, recorded
        row = other.runs("slow", limit=None)[0]
        assert row.pid is not None
        other._db.execute("BEGIN IMMEDIATE")  # another writer holds the database
        try:
            # The timeout still fires on time and the job is killed and reaped, while its end
            # waits for the database.
            assert wait_for(lambda: gone(row.pid), timeout=10)
            time.sleep(0.3)
            assert len(done.completions) == 1
        finally:
            other._db.execute("ROLLBACK")
        assert wait_for(lambda: len(done.completions) == 2, timeout=20)
        stored = other.get_run(slow.run_id)
        assert stored.status == Status.TIMED_OUT and stored.duration_ms < 5000


def test_stopping_every_running_job_records_each_interrupted(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path) as store, HistoryStore(path) as reader:
        launcher = ThreadLauncher(Executor(SerialStore(store, SYSTEM_CLOCK), kill_grace=1.0))
        done = Collected()
        batch = [
            Handle(
                RunRequest(task(f"t{i}", command="sleep 30"), Trigger.SCHEDULE, stop=StopSignal())
            )
            for i in range(10)
        ]
        launcher.launch(batch, done)
        assert wait_for(lambda: len([r for r in reader.runs(limit=None) if r.pid]) == 10, 20)
        started = time.monotonic()
        for handle in batch:
            handle.stop("serve was stopped")
        assert wait_for(lambda: len(done.completions) == 10, timeout=20)
        assert time.monotonic() - started < 5
        for handle in batch:
            stored = reader.get_run(handle.run_id)
            assert stored.status == Status.INTERRUPTED and stored.reason == "serve was stopped"
            assert gone(stored.pid)
