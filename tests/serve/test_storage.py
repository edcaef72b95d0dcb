"""serve's two doors to the history, on a real SQLite file: the SerialStore (shared by the job
threads) and the Recorder's typed writes (the rows of runs that never ran, the heartbeat,
retention, serve's stop), with the run listeners told of each row written."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from cronctl.clock import SYSTEM_CLOCK
from cronctl.errors import StoreError
from cronctl.locations import host_name
from cronctl.records import Run, Status, Trigger
from cronctl.runner.requests import RunRequest
from cronctl.serve.storage import Recorder, SerialStore
from cronctl.store import HistoryStore
from tests.serve.fakes import task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


class Listener:
    def __init__(self, fail: bool = False) -> None:
        self.finished: list[tuple[str, Run, bool]] = []
        self.fail = fail

    def run_started(self, task, run):
        raise AssertionError("rows that never ran have no start")

    def run_finished(self, task, run, *, final):
        self.finished.append((task.name, run, final))
        if self.fail:
            raise RuntimeError("a broken listener")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "history.db")


@pytest.fixture
def reader(db):
    with HistoryStore(db) as opened:
        yield opened


@pytest.fixture
def make_recorder(db):
    made: list[Recorder] = []

    def make(events=None, *, start=True) -> Recorder:
        recorder = Recorder(HistoryStore(db), SYSTEM_CLOCK, events)
        if start:
            recorder.start()
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


def test_a_skipped_run_is_recorded_and_told_as_written(make_recorder, reader, caplog):
    listener = Listener()
    recorder = make_recorder(listener)
    request = RunRequest(task("job"), Trigger.SCHEDULE, scheduled_at=T0)
    with caplog.at_level(logging.DEBUG, logger="cronctl.serve"):
        recorder.record_skipped(request, "previous run still running", T0)
        recorder.close()  # finishes the queued writes
    [run] = reader.runs("job")
    assert (run.status, run.trigger, run.scheduled_at) == (Status.SKIPPED, Trigger.SCHEDULE, T0)
    assert run.started_at == run.finished_at == T0
    assert run.reason == "previous run still running"
    [(name, told, final)] = listener.finished
    assert name == "job" and final is True
    assert told == reader.get_run(run.id)
    assert "task job: schedule run skipped: previous run still running" in caplog.text


def test_missed_slots_are_recorded_once_each_and_told(make_recorder, reader):
    listener = Listener()
    recorder = make_recorder(listener)
    slots = (T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    reader.start_run("job", Trigger.SCHEDULE, started_at=slots[1], scheduled_at=slots[1])
    recorder.record_missed(task("job"), slots, "the slot passed while serve was not running")
    recorder.close()  # finishes the queued writes
    missed = reader.runs("job", statuses=[Status.MISSED])
    assert sorted(r.scheduled_at for r in missed) == [slots[0], slots[2]]  # the taken one left
    assert all(r.trigger == Trigger.CATCH_UP and r.started_at == r.scheduled_at for r in missed)
    assert [run.scheduled_at for _, run, _ in listener.finished] == [slots[0], slots[2]]
    assert all(final for _, _, final in listener.finished)


def test_a_failing_listener_does_not_stop_the_next_writes(make_recorder, reader, caplog):
    recorder = make_recorder(Listener(fail=True))
    recorder.record_missed(task("a"), (T0,), "missed")
    recorder.record_missed(task("b"), (T0,), "missed")
    recorder.close()  # finishes the queued writes
    assert {r.task for r in reader.runs()} == {"a", "b"}
    assert caplog.text.count("a run listener failed on run") == 2


def test_a_queued_heartbeat_is_replaced_by_the_newer_one(make_recorder, reader):
    reader.serve_started(pid=1, hostname=host_name(), version="v", now=T0)
    recorder = make_recorder(start=False)
    recorder.heartbeat(T0 + timedelta(seconds=15))
    recorder.heartbeat(T0 + timedelta(seconds=30))
    assert [label for label, _ in recorder._queue] == ["heartbeat"]
    recorder.start()
    recorder.close()  # finishes the queued writes
    assert reader.serve_state().heartbeat_at == T0 + timedelta(seconds=30)


def test_retention_prunes_logs_and_replaces_a_queued_one(make_recorder, reader, caplog):
    for day in range(5):
        at = T0 - timedelta(days=day)
        run_id = reader.start_run("job", Trigger.SCHEDULE, started_at=at, scheduled_at=at)
        reader.finish_run(run_id, status=Status.SUCCEEDED, finished_at=at)
    recorder = make_recorder(start=False)
    recorder.retention(T0, keep_days=90, keep_runs={"job": 1})
    recorder.retention(T0, keep_days=90, keep_runs={"job": 2})
    assert [label for label, _ in recorder._queue] == ["retention"]
    with caplog.at_level(logging.INFO, logger="cronctl.serve"):
        recorder.start()
        recorder.close()  # finishes the queued writes
    assert len(reader.runs("job")) == 2  # the newer retention's keep_runs
    assert "retention: removed 3 old runs" in caplog.text


def test_serve_stopped_is_recorded(make_recorder, reader):
    reader.serve_started(pid=1, hostname=host_name(), version="v", now=T0)
    recorder = make_recorder()
    recorder.serve_stopped(T0 + timedelta(minutes=1))
    recorder.close()  # finishes the queued writes
    state = reader.serve_state()
    assert state.stopped_at == state.heartbeat_at == T0 + timedelta(minutes=1)


# ------------------------------------------------------------------------------ SerialStore


def test_the_serial_store_records_a_run_and_returns_it_finished(db, reader):
    serial = SerialStore(HistoryStore(db), SYSTEM_CLOCK)
    run_id = serial.start_run("job", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
    serial.set_pid(run_id, 4242)
    assert serial.latest_slot("job") == T0
    finished = serial.finish_run(run_id, status=Status.SUCCEEDED, finished_at=T0, exit_code=0)
    assert finished == serial.get_run(run_id) == reader.get_run(run_id)
    assert (finished.status, finished.pid) == (Status.SUCCEEDED, 4242)
    assert serial.last_success_at("job") == T0


def test_the_serial_store_says_once_when_a_detail_cannot_be_written(db, caplog):
    class Refusing(HistoryStore):
        def set_pid(self, run_id, pid):
            raise StoreError("attempt to write a readonly database")

    serial = SerialStore(Refusing(db), SYSTEM_CLOCK)
    run_id = serial.start_run("job", Trigger.MANUAL, started_at=T0)
    serial.set_pid(run_id, 1)
    serial.set_pid(run_id, 2)  # the job goes on; said once
    assert caplog.text.count("cannot record the pid of run") == 1
