"""The loop of `logs --follow` (cronctl/follow.py) over a real Executor, history and spool."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from cronctl.clock import SYSTEM_CLOCK
from cronctl.follow import follow_run, wait_for_next_run
from cronctl.model import Task
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.store import HistoryStore
from tests import support

wait_for = partial(support.wait_for, timeout=20.0)


@pytest.fixture
def store(tmp_path):
    with HistoryStore(str(tmp_path / "history.db")) as opened:
        yield opened


def in_background(executor, command):
    task = Task(name="job", schedule="@daily", command=command, working_dir="/tmp")
    thread = threading.Thread(target=executor.execute, args=(RunRequest(task, Trigger.MANUAL),))
    thread.start()
    return thread


@pytest.mark.parametrize(
    "command",
    [
        "for i in $(seq 1 10); do echo $i; echo e$i >&2; sleep 0.05; done",
        # More than the spool keeps, the end of it written faster than the follower looks.
        "echo start; sleep 0.3; head -c 2000000 /dev/zero; echo; echo end",
        "sleep 0.3",  # nothing at all
        "sleep 0.3; echo late; exit 4",
    ],
)
def test_what_is_followed_accounts_for_every_byte(store, tmp_path, command):
    executor = Executor(store, spool_dir=tmp_path)
    thread = in_background(executor, command)
    try:
        run_id = wait_for(lambda: store.runs(limit=1) and store.runs(limit=1)[0].id)
        chunks = []
        followed = follow_run(store, tmp_path, run_id, clock=SYSTEM_CLOCK, emit=chunks.append)
    finally:
        thread.join(20)
    run = followed.run
    assert run.status != Status.RUNNING and not followed.orphaned
    total = run.stdout.total_bytes + run.stderr.total_bytes
    assert sum(len(c.data) + c.dropped for c in chunks) == total
    if not any(c.stream is None for c in chunks):
        for name, stream in (("stdout", run.stdout), ("stderr", run.stderr)):
            assert b"".join(c.data for c in chunks if c.stream == name) == stream.data


def test_an_ended_run_is_its_stored_output(store, tmp_path):
    executor = Executor(store, spool_dir=tmp_path)
    in_background(executor, "echo out; echo err >&2; exit 2").join(20)
    (run,) = store.runs(limit=1)
    chunks = []
    followed = follow_run(store, tmp_path, run.id, clock=SYSTEM_CLOCK, emit=chunks.append)
    assert followed.run.status == Status.FAILED
    assert [(c.stream, c.data) for c in chunks] == [("stdout", b"out\n"), ("stderr", b"err\n")]


def test_wait_for_next_run_returns_a_newer_run(store, tmp_path):
    executor = Executor(store, spool_dir=tmp_path)
    in_background(executor, "true").join(20)
    (first,) = store.runs(limit=1)
    found = []
    waiter = threading.Thread(
        target=lambda: found.append(wait_for_next_run(store, "job", first.id, clock=SYSTEM_CLOCK))
    )
    waiter.start()
    in_background(executor, "true").join(20)
    waiter.join(20)
    assert found == [first.id + 1]
