"""Attempts recorded truthfully: statuses, environment, `when`, retries — with real processes."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from cronctl.model import Task
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor, job_environment
from cronctl.runner.requests import RunRequest, StopSignal
from cronctl.store import HistoryStore

PY = sys.executable


class ListeningEvents:
    def __init__(self):
        self.seen = []

    def run_started(self, task, run):
        self.seen.append(("started", run.id, run.status))

    def run_finished(self, task, run, *, final):
        self.seen.append(("finished", run.id, run.status, final))


class FastClock:
    """The real clock, except that waits between retries are recorded, not slept."""

    def __init__(self):
        from cronctl.clock import SYSTEM_CLOCK

        self.real = SYSTEM_CLOCK
        self.slept = []

    def now(self):
        return self.real.now()

    def monotonic(self):
        return self.real.monotonic()

    def sleep(self, seconds, wake=None):
        if seconds >= 1:
            self.slept.append(seconds)
            return bool(wake and wake.is_set())
        return self.real.sleep(seconds, wake)


@pytest.fixture
def store():
    with HistoryStore(":memory:") as opened:
        yield opened


def task(command, **settings):
    return Task(name="job", schedule="@daily", command=command, working_dir="/tmp", **settings)


@pytest.mark.parametrize(
    ("command", "status", "exit_code", "signal"),
    [
        ("true", "succeeded", 0, None),
        ("exit 3", "failed", 3, None),
        ("no-such-command-xyz", "failed", 127, None),
        ("kill -9 $$", "killed", None, 9),
    ],
)
def test_statuses(store, command, status, exit_code, signal):
    run = Executor(store).execute(RunRequest(task(command), Trigger.MANUAL))
    assert (run.status, run.exit_code, run.signal) == (status, exit_code, signal)
    assert run.finished_at >= run.started_at and run.duration_ms is not None and run.pid


def test_command_not_found_reason(store):
    run = Executor(store).execute(RunRequest(task("no-such-command-xyz"), Trigger.MANUAL))
    assert "could not find the command" in run.reason
    assert b"not found" in run.stderr.data


def test_missing_working_dir_is_an_error_not_a_traceback(store):
    run = Executor(store).execute(
        RunRequest(
            Task(name="j", schedule="@daily", command="true", working_dir="/nonexistent/x"),
            Trigger.MANUAL,
        )
    )
    assert run.status == "error" and "/nonexistent/x" in run.reason


def test_unusable_shell_is_an_error(store):
    run = Executor(store).execute(RunRequest(task("true", shell="/no/shell"), Trigger.MANUAL))
    assert run.status == "error" and "/no/shell" in run.reason


def test_timeout(store):
    run = Executor(store, kill_grace=0.5).execute(
        RunRequest(task("sleep 30", timeout=1), Trigger.MANUAL)
    )
    assert run.status == "timed_out" and run.reason == "timed out after 1s"
    assert run.duration_ms < 10_000


def test_output_is_captured_separately(store):
    run = Executor(store).execute(RunRequest(task("echo out; echo err >&2"), Trigger.MANUAL))
    assert run.stdout.data == b"out\n" and run.stderr.data == b"err\n"


def test_environment_given_to_the_job(store, tmp_path):
    dump = tmp_path / "env.json"
    script = f'{PY} -c \'import json, os; json.dump(dict(os.environ), open("{dump}", "w"))\''
    slot = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    base = {
        "PATH": "/usr/bin:/bin",
        "NOTIFY_SOCKET": "/run/x",
        "WATCHDOG_USEC": "1",
        "LISTEN_FDS": "3",
        "KEEP": "1",
    }
    executor = Executor(store, environ=base)
    first = executor.execute(RunRequest(task("true"), Trigger.MANUAL))
    run = executor.execute(
        RunRequest(
            task(script, env={"KEEP": "task", "EXTRA": "x"}, timezone="America/New_York"),
            Trigger.SCHEDULE,
            scheduled_at=slot,
        )
    )
    env = json.loads(dump.read_text())
    assert run.status == "succeeded"
    assert env["CRONCTL_TASK"] == "job" and env["CRONCTL_RUN_ID"] == str(run.id)
    assert env["CRONCTL_TRIGGER"] == "schedule" and env["CRONCTL_ATTEMPT"] == "1"
    assert env["CRONCTL_SCHEDULED_AT"] == "2026-03-08T03:30:00-04:00"
    assert (
        env["CRONCTL_LAST_SUCCESS_AT"]
        == first.started_at.astimezone(ZoneInfo("America/New_York")).isoformat()
    )
    assert env["KEEP"] == "task" and env["EXTRA"] == "x"
    for gone in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"):
        assert gone not in env


def test_manual_runs_have_empty_slot_and_no_last_success():
    env = job_environment(
        task("true"),
        run_id=1,
        trigger=Trigger.MANUAL,
        attempt=1,
        scheduled_at=None,
        last_success_at=None,
        base={},
    )
    assert env["CRONCTL_SCHEDULED_AT"] == "" and env["CRONCTL_LAST_SUCCESS_AT"] == ""


def test_when_condition_skips_with_reason(store):
    events = ListeningEvents()
    run = Executor(store, events=events).execute(
        RunRequest(task("echo ran", when="exit 1"), Trigger.SCHEDULE)
    )
    assert run.status == "skipped" and run.reason == "the when condition `exit 1` exited 1"
    assert events.seen == [("finished", run.id, "skipped", True)]
    forced = Executor(store).execute(
        RunRequest(task("echo ran", when="exit 1"), Trigger.MANUAL, check_when=False)
    )
    assert forced.status == "succeeded"


def test_retries_make_one_row_per_attempt_with_doubling_delays(store, tmp_path):
    counter = tmp_path / "count"
    # Fails twice, then succeeds.
    command = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    )
    clock = FastClock()
    events = ListeningEvents()
    runs = Executor(store, clock=clock, events=events).run_with_retries(
        RunRequest(task(command, retries=4, retry_delay=60), Trigger.MANUAL)
    )
    assert [(r.attempt, r.trigger, r.status) for r in runs] == [
        (1, "manual", "failed"),
        (2, "retry", "failed"),
        (3, "retry", "succeeded"),
    ]
    assert clock.slept == [60, 120]
    assert [e[3] for e in events.seen if e[0] == "finished"] == [False, False, True]
    assert len(store.runs("job")) == 3


def test_retries_stop_when_exhausted_and_no_retries(store):
    clock = FastClock()
    runs = Executor(store, clock=clock).run_with_retries(
        RunRequest(task("exit 1", retries=2, retry_delay=3000), Trigger.MANUAL)
    )
    assert [r.attempt for r in runs] == [1, 2, 3] and clock.slept == [3000, 3600]
    once = Executor(store, clock=clock).run_with_retries(
        RunRequest(task("exit 1", retries=2), Trigger.MANUAL, retries=0)
    )
    assert len(once) == 1


def test_stop_event_records_interrupted(store):
    stop = StopSignal()
    threading.Timer(0.5, stop.stop, args=("interrupted by Ctrl-C",)).start()
    run = Executor(store, kill_grace=0.5).execute(
        RunRequest(task("sleep 30"), Trigger.MANUAL, stop=stop)
    )
    assert run.status == "interrupted" and run.reason == "interrupted by Ctrl-C"


def test_running_row_exists_while_the_job_runs(store):
    seen = []

    class Peek(ListeningEvents):
        def run_started(self, task, run):
            seen.append(store.get_run(run.id).status)

    Executor(store, events=Peek()).execute(RunRequest(task("true"), Trigger.MANUAL))
    assert seen == [Status.RUNNING]


def test_a_failing_output_stream_never_leaves_a_run_running(store):
    def broken_stream(name, chunk):
        raise BrokenPipeError("the reader went away")

    with pytest.raises(BrokenPipeError):
        Executor(store, on_output=broken_stream, kill_grace=0.5).execute(
            RunRequest(task("echo hi; sleep 5"), Trigger.MANUAL)
        )
    [run] = store.runs("job")
    assert run.status == "interrupted" and "BrokenPipeError" in run.reason


@pytest.mark.parametrize(
    ("command", "code", "words"),
    [
        ("no-such-command-xyz", 127, "could not find the command"),
        ("/etc/passwd", 126, "could not execute"),
    ],
)
def test_126_and_127_say_why(store, command, code, words):
    run = Executor(store).execute(RunRequest(task(command), Trigger.MANUAL))
    assert run.exit_code == code and words in run.reason
