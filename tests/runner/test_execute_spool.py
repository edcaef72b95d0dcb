"""The Executor spools a running job's output (cronctl/spool.py) and removes the spool once the
output is recorded — with real processes and a real SQLite history."""

from __future__ import annotations

import stat
import threading
from functools import partial

import pytest

from cronctl.model import Task
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest, StopSignal
from cronctl.spool import SEGMENT_BYTES, last_line, read_so_far, spool_path
from cronctl.store import HistoryStore
from tests import support

wait_for = partial(support.wait_for, timeout=20.0)


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def store(tmp_path):
    with HistoryStore(str(tmp_path / "history.db")) as opened:
        yield opened


def task(command, **settings):
    return Task(name="job", schedule="@daily", command=command, working_dir="/tmp", **settings)


def start(executor, command, **settings):
    """Run `command` on a thread; return (thread, results, stop)."""
    stop = StopSignal()
    results = []
    thread = threading.Thread(
        target=lambda: results.append(
            executor.execute(RunRequest(task(command, **settings), Trigger.MANUAL, stop=stop))
        )
    )
    thread.start()
    return thread, results, stop


def spool_bytes(state) -> int:
    return sum(f.stat().st_size for f in (state / "running").rglob("*") if f.is_file())


def test_a_job_that_prints_nothing_touches_no_disk(store, state):
    run = Executor(store, spool_dir=state).execute(RunRequest(task("sleep 0.2"), Trigger.MANUAL))
    assert run.status == Status.SUCCEEDED
    assert not state.exists()


def test_output_is_readable_while_the_job_runs_and_gone_once_recorded(store, state):
    executor = Executor(store, spool_dir=state)
    thread, results, stop = start(
        executor, "echo first; sleep 0.2; echo warn >&2; sleep 30", timeout=3
    )
    try:
        run_id = wait_for(lambda: store.runs(limit=1) and store.runs(limit=1)[0].id)
        wait_for(lambda: last_line(state, run_id) == "warn", what="the job's output in its spool")
        folder = spool_path(state, run_id)
        assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "0").stat().st_mode) == 0o600
        chunks = read_so_far(state, run_id)
        assert [(c.stream, c.data) for c in chunks] == [
            ("stdout", b"first\n"),
            ("stderr", b"warn\n"),
        ]
    finally:
        thread.join(20)
        stop.stop("test over")
    (run,) = results
    assert run.status == Status.TIMED_OUT and run.stdout.data == b"first\n"
    assert not folder.exists()


def test_a_job_printing_megabytes_keeps_the_spool_bounded(store, state):
    executor = Executor(store, spool_dir=state)
    # 4 MB on both streams, then a pause in which the spool is measured.
    command = (
        "head -c 1000000 /dev/zero >&2; head -c 3000000 /dev/zero;"
        " sleep 0.5; echo; echo done; sleep 30"
    )
    thread, results, stop = start(executor, command)
    try:
        run_id = wait_for(lambda: store.runs(limit=1) and store.runs(limit=1)[0].id)
        wait_for(lambda: last_line(state, run_id) == "done", what="the end of the output")
        assert spool_bytes(state) <= 3 * SEGMENT_BYTES
    finally:
        stop.stop("test over")
        thread.join(20)
    (run,) = results
    assert run.stdout.total_bytes == 3_000_006 and run.stderr.total_bytes == 1_000_000
    assert not spool_path(state, run_id).exists()


def test_every_attempt_of_a_retried_run_has_its_own_spool_and_none_stays(store, state):
    executor = Executor(store, spool_dir=state)
    runs = executor.run_with_retries(
        RunRequest(task("echo try; exit 1", retries=2, retry_delay=0), Trigger.MANUAL)
    )
    assert [r.status for r in runs] == [Status.FAILED] * 3
    assert all(r.stdout.data == b"try\n" for r in runs)
    assert list((state / "running").iterdir()) == []


def test_without_a_spool_folder_nothing_is_spooled(store, tmp_path):
    run = Executor(store).execute(RunRequest(task("echo hi"), Trigger.MANUAL))
    assert run.stdout.data == b"hi\n"
    assert not (tmp_path / "running").exists()
