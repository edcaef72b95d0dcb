"""The pids of a batch the claimer spawned are written by the claimer, in one transaction,
before the runs' threads start (docs/performance.md, "Serve's hot path after issue 18",
round 3); on a real SQLite file, with real processes."""

from __future__ import annotations

import logging
import threading

import pytest

from cronctl.errors import StoreError
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.serve.storage import SerialStore
from cronctl.serve.workers import Handle, ThreadLauncher
from tests.serve.fakes import FakeClock, task, utc
from tests.serve.test_storage_batches import Collected, Counting
from tests.support import wait_for

T0 = utc(2026, 1, 5, 12, 0, 0)


class PidWrites(Counting):
    """The real store, noting which thread wrote each pid; refuses the pids of `refuse_pid`."""

    def __init__(self, path):
        super().__init__(path)
        self.pid_writers: list[tuple[str, int]] = []
        self.refuse_pid: set[int] = set()
        self.batches_at_pid: list[int] = []

    def set_pid(self, run_id, pid):
        self.pid_writers.append((threading.current_thread().name, run_id))
        self.batches_at_pid.append(len(self.batches))
        if run_id in self.refuse_pid:
            raise StoreError("database is locked")
        super().set_pid(run_id, pid)


@pytest.fixture
def store(tmp_path):
    with PidWrites(str(tmp_path / "h.db")) as store:
        yield store


def launch(store, count: int) -> tuple[list[Handle], Collected]:
    executor = Executor(SerialStore(store, FakeClock(T0)), kill_grace=1.0)
    batch = [
        Handle(RunRequest(task(f"t{i}", command="echo $$"), Trigger.SCHEDULE, scheduled_at=T0))
        for i in range(count)
    ]
    done = Collected()
    ThreadLauncher(executor).launch(batch, done)
    assert wait_for(lambda: len(done.completions) == count, timeout=20)
    return batch, done


def test_the_claimer_writes_the_pids_of_its_batch_in_one_transaction(store):
    batch, done = launch(store, 6)
    run_ids = [handle.run_id for handle in batch]
    # Every pid written once, by the claimer, in slot order, inside one batch transaction.
    assert store.pid_writers == [("cronctl-claimer", run_id) for run_id in run_ids]
    assert len(set(store.batches_at_pid)) == 1
    for completion in done.completions:
        run = store.get_run(completion.handle.run_id)
        assert run.status == Status.SUCCEEDED
        assert run.stdout is not None
        assert run.pid == int(run.stdout.data)  # the job's own pid ($$ of `sh -c`)


def test_pids_refused_together_are_written_one_by_one(store, caplog):
    store.refuse_pid = {2}  # the second claim's pid is refused: the batch rolls back whole
    with caplog.at_level(logging.WARNING, logger="cronctl.serve"):
        batch, done = launch(store, 4)
    run_ids = [handle.run_id for handle in batch]
    assert run_ids == [1, 2, 3, 4]
    writers = {name for name, _ in store.pid_writers}
    assert writers == {"cronctl-claimer"}  # the threads do not write them again
    assert [run_id for _, run_id in store.pid_writers] == [1, 2, 1, 2, 3, 4]  # batch, then each
    for run_id in run_ids:
        run = store.get_run(run_id)
        assert run.status == Status.SUCCEEDED  # a pid refused does not stop its run
        assert (run.pid is None) == (run_id == 2)
    assert "cannot record the pid of run 2: database is locked" in caplog.text
