"""serve's wiring, in-process: start-up recovery, listeners, reload callbacks, signals."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from functools import partial

import pytest

from cronctl.locations import Locations
from cronctl.records import Status
from cronctl.serve import daemon
from cronctl.store import HistoryStore
from tests.support import wait_for as _wait_for

wait_for = partial(_wait_for, timeout=15.0)
TASK = '[tasks.{name}]\nschedule = "@every 1s"\ncommand = "true"\ntimezone = "UTC"\n'


class Listener:
    def __init__(self, explode=False):
        self.started, self.finished = [], []
        self.explode = explode

    def run_started(self, task, run):
        self.started.append(run.id)
        if self.explode:
            raise RuntimeError("listener bug")

    def run_finished(self, task, run, *, final):
        self.finished.append((run.task, run.status))
        if self.explode:
            raise RuntimeError("listener bug")


@pytest.fixture
def running_serve(tmp_path):
    threads = []

    def start(tasks_text, **options):
        locations = Locations(tmp_path / "tasks.toml", str(tmp_path / "history.db"))
        locations.tasks_file.write_text(tasks_text)
        ready = threading.Event()
        holder = {}

        def on_ready(scheduler):
            holder["scheduler"] = scheduler
            ready.set()

        def body():
            holder["code"] = daemon.serve(
                locations,
                grace=0,
                kill_grace=1,
                install_signals=False,
                on_ready=on_ready,
                **options,
            )

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        assert ready.wait(15)
        threads.append((thread, holder))
        return locations, holder

    yield start
    for thread, holder in threads:
        if "scheduler" in holder:
            holder["scheduler"].request_stop()
        thread.join(15)


def test_startup_recovery_listeners_and_reload(running_serve, tmp_path):
    db = str(tmp_path / "history.db")
    with HistoryStore(db) as store:  # a run left `running` by a serve that died
        left = store.start_run(
            "a",
            "schedule",
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
            scheduled_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    listener = Listener(explode=True)
    reloads = []
    locations, holder = running_serve(
        TASK.format(name="a"), events=listener, on_reload=reloads.append
    )
    with HistoryStore(db) as store:
        assert store.get_run(left).status == Status.ABANDONED
    assert ("a", Status.ABANDONED) in listener.finished
    # A listener that raises does not fail the runs.
    wait_for(lambda: listener.finished.count(("a", Status.SUCCEEDED)) >= 2)
    time.sleep(1.1)
    locations.tasks_file.write_text(TASK.format(name="a") + TASK.format(name="b"))
    wait_for(lambda: reloads)
    assert set(reloads[0].tasks) == {"a", "b"}
    wait_for(lambda: ("b", Status.SUCCEEDED) in listener.finished)
    holder["scheduler"].request_stop()
    wait_for(lambda: "code" in holder)
    assert holder["code"] == 0
    with HistoryStore(db) as store:
        state = store.serve_state()
        assert state.stopped_at is not None
        assert not store.runs(statuses=[Status.RUNNING])


def test_invalid_task_file_is_a_config_error(tmp_path):
    locations = Locations(tmp_path / "tasks.toml", str(tmp_path / "history.db"))
    locations.tasks_file.write_text("[tasks.x\n")
    with pytest.raises(daemon.TaskFileInvalid) as caught:
        daemon.serve(locations, install_signals=False)
    assert caught.value.exit_code == 78
    assert str(locations.tasks_file) in caught.value.message
    # The lock was released: a second attempt gets the same error, not "already running".
    with pytest.raises(daemon.TaskFileInvalid):
        daemon.serve(locations, install_signals=False)


class FakeScheduler:
    def __init__(self):
        self.stops = 0
        self.reloads = 0

    @property
    def stop_requested(self):
        return self.stops > 0

    def request_stop(self):
        self.stops += 1

    def request_reload(self):
        self.reloads += 1


def test_signals_before_the_scheduler_exists_are_kept():
    signals = daemon.Signals()
    signals.received(signal.SIGTERM)
    signals.received(signal.SIGHUP)
    scheduler = FakeScheduler()
    signals.attach(scheduler)
    assert (scheduler.stops, scheduler.reloads) == (1, 1)
    signals.received(signal.SIGINT)
    assert scheduler.stops == 2


def test_parallel_limit_follows_the_open_file_limit(monkeypatch):
    monkeypatch.setattr(daemon.resource, "getrlimit", lambda which: (1024, 4096))
    assert daemon.parallel_limit() == (1024 - daemon.FDS_RESERVED) // daemon.FDS_PER_JOB


def test_serve_records_its_host_s_task_definitions_after_ready_and_at_each_reload(
    running_serve, tmp_path, monkeypatch
):
    """README.md#task-files-that-differ: serve writes its host's digests once READY (not
    before: the load's CPU goes to READY first), and a reload replaces them: a task gone from
    the file is deleted, a changed one written anew, an unchanged one kept as it was."""
    monkeypatch.setenv("CRONCTL_HOST", "host-x")
    slow = '[tasks.{name}]\nschedule = "@daily"\ncommand = "{command}"\ntimezone = "UTC"\n'
    text = slow.format(name="a", command="true") + slow.format(name="b", command="true")
    locations, holder = running_serve(text)
    db = str(tmp_path / "history.db")

    def rows():
        with HistoryStore(db) as store:
            return {d.task: d for d in store.task_definitions(["host-x"])}

    wait_for(lambda: set(rows()) == {"a", "b"})
    first = rows()
    assert first["a"].digest == first["b"].digest  # one definition under two names
    time.sleep(1.1)  # the file's mtime moves on
    locations.tasks_file.write_text(
        slow.format(name="a", command="true") + slow.format(name="c", command="echo c")
    )
    wait_for(lambda: set(rows()) == {"a", "c"})
    second = rows()
    assert second["a"] == first["a"]  # unchanged: its row, and its seen_at, kept
    assert second["c"].digest != first["a"].digest and set(second["c"].keys) == {
        "command",
        "schedule",
    }
    holder["scheduler"].request_stop()
    wait_for(lambda: "code" in holder)
    assert set(rows()) == {"a", "c"}  # a clean stop keeps them: what it last ran
