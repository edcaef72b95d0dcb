"""serve's writes grouped per moment (cronctl/serve/storage.py `SerialStore`, workers.py
`ThreadLauncher`): the claims of one instant in one transaction, the pids and ends that wait
together committed together, each task's last success kept in memory; on a real SQLite file."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from cronctl.errors import StoreError, UnknownRunError
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.serve.grouping import LAST_SUCCESS_REFRESH
from cronctl.serve.storage import SerialStore
from cronctl.serve.workers import Completion, Handle, ThreadLauncher
from cronctl.store import HistoryStore
from tests.serve.fakes import FakeClock, task, utc
from tests.support import wait_for

T0 = utc(2026, 1, 5, 12, 0, 0)


class Counting(HistoryStore):
    """The real store, counting its transactions of several writes and, when `hold` is set,
    keeping the connection busy in the first set_pid until `release` is set."""

    def __init__(self, path):
        super().__init__(path)
        self.batches: list[int] = []
        self.hold = False
        self.holding = threading.Event()
        self.release = threading.Event()
        self.reads = 0
        self.reads_together: list[list[str]] = []
        self.refuse: set[int] = set()

    def batch(self):
        self.batches.append(len(self.batches))
        return super().batch()

    def set_pid(self, run_id, pid):
        if self.hold:
            self.hold = False
            self.holding.set()
            self.release.wait(10)
        super().set_pid(run_id, pid)

    def finish_run(self, run_id, **values):
        if run_id in self.refuse:
            raise StoreError("database is locked")
        return super().finish_run(run_id, **values)

    def last_success_at(self, name):
        self.reads += 1
        return super().last_success_at(name)

    def last_successes(self, tasks):
        self.reads_together.append(sorted(tasks))
        return super().last_successes(tasks)


@pytest.fixture
def counting(tmp_path):
    with Counting(str(tmp_path / "h.db")) as store:
        yield store


def hold_connection(serial, store, run_id):
    """Start a thread whose set_pid keeps the shared connection until store.release."""
    store.hold = True
    holder = threading.Thread(target=serial.set_pid, args=(run_id, 1))
    holder.start()
    assert store.holding.wait(10)
    return holder


def test_ends_that_wait_together_are_committed_in_one_transaction(counting):
    serial = SerialStore(counting, FakeClock(T0))
    ids = [counting.start_run(f"t{i}", Trigger.MANUAL, started_at=T0) for i in range(6)]
    holder = hold_connection(serial, counting, ids[0])
    results: dict[int, object] = {}

    def finish(run_id):
        results[run_id] = serial.finish_run(
            run_id, status=Status.SUCCEEDED, finished_at=T0, exit_code=0
        )

    threads = [threading.Thread(target=finish, args=(run_id,)) for run_id in ids[1:]]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: len(serial._grouped.waiting) == 5, timeout=10)
    assert results == {}  # nobody is told before the write is committed
    counting.release.set()
    holder.join(10)
    for thread in threads:
        thread.join(10)
    assert counting.batches == [0]  # the five ends: one transaction
    assert {run_id: run.id for run_id, run in results.items()} == {i: i for i in ids[1:]}
    assert all(counting.get_run(i).status == Status.SUCCEEDED for i in ids[1:])
    assert counting.get_run(ids[0]).pid == 1


def test_a_write_that_fails_in_a_group_fails_alone(counting):
    serial = SerialStore(counting, FakeClock(T0))
    serial.give_up.set()  # no retries: the error reaches the caller
    ids = [counting.start_run(f"t{i}", Trigger.MANUAL, started_at=T0) for i in range(5)]
    counting.refuse = {ids[2]}
    holder = hold_connection(serial, counting, ids[0])
    outcomes: dict[int, object] = {}

    def finish(run_id):
        try:
            outcomes[run_id] = serial.finish_run(
                run_id, status=Status.FAILED, finished_at=T0, exit_code=1
            ).status
        except (StoreError, UnknownRunError) as exc:
            outcomes[run_id] = type(exc).__name__

    threads = [threading.Thread(target=finish, args=(i,)) for i in [*ids[1:], ids[4] + 50]]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: len(serial._grouped.waiting) == 5, timeout=10)
    counting.release.set()
    holder.join(10)
    for thread in threads:
        thread.join(10)
    assert outcomes == {
        ids[1]: Status.FAILED,
        ids[2]: "StoreError",
        ids[3]: Status.FAILED,
        ids[4]: Status.FAILED,
        ids[4] + 50: "UnknownRunError",
    }
    assert counting.get_run(ids[2]).status == Status.RUNNING
    assert counting.get_run(ids[3]).status == Status.FAILED


def test_the_last_success_comes_from_memory_once_read(counting):
    clock = FakeClock(T0)
    serial = SerialStore(counting, clock)
    old = counting.start_run("job", Trigger.MANUAL, started_at=T0)
    counting.finish_run(old, status=Status.SUCCEEDED, finished_at=T0, exit_code=0)
    assert serial.last_success_at("job") == T0
    assert serial.last_success_at("job") == T0
    assert serial.last_success_at("other") is None
    assert counting.reads == 2  # once a task
    later = T0 + timedelta(minutes=1)
    run_id = serial.start_run("job", Trigger.SCHEDULE, started_at=later, scheduled_at=later)
    serial.finish_run(run_id, status=Status.FAILED, finished_at=later, exit_code=1)
    assert serial.last_success_at("job") == T0  # a failure is no success
    run_id = serial.start_run("job", Trigger.RETRY, started_at=later, attempt=2)
    serial.finish_run(run_id, status=Status.SUCCEEDED, finished_at=later, exit_code=0)
    assert serial.last_success_at("job") == later
    assert counting.reads == 2  # serve saw the success: no read


def test_a_success_recorded_elsewhere_counts_after_the_refresh(counting):
    """A `run-now` in another process writes its own row: serve reads it within a minute."""
    clock = FakeClock(T0)
    serial = SerialStore(counting, clock)
    assert serial.last_success_at("job") is None
    elsewhere = counting.start_run("job", Trigger.MANUAL, started_at=T0)
    counting.finish_run(elsewhere, status=Status.SUCCEEDED, finished_at=T0, exit_code=0)
    clock.advance(LAST_SUCCESS_REFRESH - 1)
    assert serial.last_success_at("job") is None
    clock.advance(1)
    assert serial.last_success_at("job") == T0
    assert counting.reads == 2


def test_the_claims_of_a_chunk_read_their_tasks_last_successes_together(counting):
    """Each claimed task's newest success is read in one query with the others (not one a
    job), only for the tasks not read within LAST_SUCCESS_REFRESH."""
    clock = FakeClock(T0)
    serial = SerialStore(counting, clock)
    old = counting.start_run("a", Trigger.MANUAL, started_at=T0)
    counting.finish_run(old, status=Status.SUCCEEDED, finished_at=T0, exit_code=0)
    failed = counting.start_run("b", Trigger.MANUAL, started_at=T0)
    counting.finish_run(failed, status=Status.FAILED, finished_at=T0, exit_code=1)
    assert serial.last_success_at("c") is None  # read on its own, a moment ago
    slot = T0 + timedelta(minutes=1)
    claims = [(name, Trigger.SCHEDULE, 1, slot) for name in ("a", "b", "c", "a")]
    serial.start_runs(claims, started_at=slot)
    assert counting.reads_together == [["a", "b"]]
    assert [serial.last_success_at(name) for name in ("a", "b", "c")] == [T0, None, None]
    assert counting.reads == 1  # only the read of "c" before the claims
    clock.advance(LAST_SUCCESS_REFRESH)
    later = slot + timedelta(minutes=1)
    serial.start_runs([(name, Trigger.SCHEDULE, 1, later) for name in "abc"], started_at=later)
    assert counting.reads_together == [["a", "b"], ["a", "b", "c"]]


def test_the_claims_go_on_when_the_last_successes_cannot_be_read(counting, monkeypatch):
    def refuse(tasks):
        raise StoreError("database is locked")

    monkeypatch.setattr(counting, "last_successes", refuse)
    serial = SerialStore(counting, FakeClock(T0))
    ids = serial.start_runs([("a", Trigger.SCHEDULE, 1, T0)], started_at=T0)
    assert counting.get_run(ids[0]).status == Status.RUNNING
    assert serial.last_success_at("a") is None and counting.reads == 1  # read on its own


# ------------------------------------------------------------------------------ the claimer


class Collected:
    def __init__(self):
        self.completions: list[Completion] = []
        self.lock = threading.Lock()

    def __call__(self, completion: Completion) -> None:
        with self.lock:
            self.completions.append(completion)


def test_the_claims_of_one_batch_are_one_transaction_and_a_taken_slot_is_not_run(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path) as store, HistoryStore(path) as reader:
        serial = SerialStore(store, FakeClock(T0))
        reader.start_run("t1", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)  # taken
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        launcher = ThreadLauncher(Executor(serial, kill_grace=1.0))
        done = Collected()
        handles = [
            Handle(RunRequest(task(f"t{i}", command="true"), Trigger.SCHEDULE, scheduled_at=T0))
            for i in range(5)
        ]
        launcher.launch(handles, done)
        assert wait_for(lambda: len(done.completions) == 5, timeout=20)
        store._db.set_trace_callback(None)
        claims = [s for s in statements if s.startswith("INSERT INTO runs")]
        begins = statements[: statements.index(claims[-1])].count("BEGIN IMMEDIATE")
        assert len(claims) == 5 and begins == 1  # five claims, one transaction
        ran = {c.handle.task_name: c.run for c in done.completions}
        assert ran["t1"] is None
        assert all(ran[f"t{i}"].status == Status.SUCCEEDED for i in (0, 2, 3, 4))
        assert len(reader.runs("t1", limit=None)) == 1


def test_a_claim_batch_the_database_refuses_starts_none_of_its_runs(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path, timeout=0.05) as store, HistoryStore(path) as other:
        serial = SerialStore(store, FakeClock(T0))
        other._db.execute("BEGIN IMMEDIATE")  # another writer holds the database
        launcher = ThreadLauncher(Executor(serial, kill_grace=1.0))
        done = Collected()
        marker = tmp_path / "ran"
        handles = [
            Handle(RunRequest(task(f"t{i}", command=f"touch {marker}"), Trigger.SCHEDULE))
            for i in range(3)
        ]
        launcher.launch(handles, done)
        assert wait_for(lambda: len(done.completions) == 3, timeout=20)
        other._db.execute("ROLLBACK")
        assert all(c.run is None for c in done.completions)
        assert other.runs(limit=None) == [] and not marker.exists()
