"""What the Executor does once per job instead of once per run, and what it does after the spawn
(issue 18: serve's hot path), with real processes."""

from __future__ import annotations

import json
import os
import sys

import pytest

from cronctl.model import Task
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.store import HistoryStore

PY = sys.executable


@pytest.fixture
def store():
    with HistoryStore(":memory:") as opened:
        yield opened


def task(command, **settings):
    return Task(name="job", schedule="@daily", command=command, working_dir="/tmp", **settings)


class Starts:
    """Listens for starts; records whether the job's process existed when it was told."""

    def __init__(self, store):
        self.store = store
        self.seen = []

    def run_started(self, task, run):
        alive = run.pid is not None and os.path.exists(f"/proc/{run.pid}")
        self.seen.append(("started", run.id, run.status, run.pid, alive))

    def run_finished(self, task, run, *, final):
        self.seen.append(("finished", run.id, run.status))


def test_the_listeners_hear_of_the_start_once_the_process_exists(store, tmp_path):
    events = Starts(store)
    release = tmp_path / "go"
    command = f"while [ ! -e {release} ]; do sleep 0.01; done"
    executor = Executor(store, events=events)
    original = events.run_started

    def started(task, run):
        original(task, run)
        release.touch()  # the job waits for this: it is still running when we are told

    events.run_started = started
    run = executor.execute(RunRequest(task(command), Trigger.MANUAL))
    assert run.status == Status.SUCCEEDED
    (started_event, finished_event) = events.seen
    assert started_event[:3] == ("started", run.id, Status.RUNNING)
    assert started_event[3] == run.pid and started_event[4]  # its pid, alive
    assert finished_event == ("finished", run.id, Status.SUCCEEDED)


def test_a_job_that_cannot_start_is_still_said_to_start_then_end(store):
    events = Starts(store)
    executor = Executor(store, events=events)
    run = executor.execute(RunRequest(task("true", shell="/no/such/shell"), Trigger.MANUAL))
    assert run.status == Status.ERROR
    assert events.seen == [
        ("started", run.id, Status.RUNNING, None, False),
        ("finished", run.id, Status.ERROR),
    ]


def test_the_inherited_environment_is_filtered_once_and_again_when_secrets_change(
    store, tmp_path, monkeypatch
):
    import cronctl.runner.execute as execute

    calls = []
    real = execute.inherited_environment

    def counting(base, hidden=frozenset()):
        calls.append(hidden)
        return real(base, hidden)

    monkeypatch.setattr(execute, "inherited_environment", counting)
    dump = tmp_path / "env.json"
    script = f'{PY} -c \'import json, os; json.dump(dict(os.environ), open("{dump}", "w"))\''
    base = {"PATH": "/usr/bin:/bin", "SECRET": "s", "NOTIFY_SOCKET": "/run/x", "KEEP": "1"}
    executor = Executor(store, environ=base, hidden_variables=frozenset({"SECRET"}))
    for _ in range(3):
        executor.execute(RunRequest(task(script, env={"EXTRA": "x"}), Trigger.MANUAL))
    env = json.loads(dump.read_text())
    assert "SECRET" not in env and "NOTIFY_SOCKET" not in env
    assert env["KEEP"] == "1" and env["EXTRA"] == "x"
    assert calls == [frozenset({"SECRET"})]  # three runs, filtered once
    executor.hidden_variables = frozenset({"KEEP"})  # a reload changed the secrets
    executor.execute(RunRequest(task(script), Trigger.MANUAL))
    env = json.loads(dump.read_text())
    assert env["SECRET"] == "s" and "KEEP" not in env and "EXTRA" not in env
    assert len(calls) == 2
