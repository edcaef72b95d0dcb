"""`cronctl serve` as a real process: the lock, signals, systemd notifications, reload, crash
recovery. Each test polls for what it waits for, with generous limits for a loaded machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pytest

from cronctl.records import Status, Trigger
from cronctl.store import HistoryStore
from tests import support

LIMIT = 20.0  # seconds any one condition may take on a slow, loaded machine

TASK = '[tasks.{name}]\nschedule = "{schedule}"\ncommand = "{command}"\ntimezone = "UTC"\n{extra}\n'


def task_text(name, schedule="@every 1s", command="true", extra=""):
    return TASK.format(name=name, schedule=schedule, command=command, extra=extra)


wait_for = partial(support.wait_for, timeout=LIMIT)


class Serve:
    def __init__(self, exe, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.log_path = home / f"serve-{time.monotonic_ns()}.log"
        self.log_file = open(self.log_path, "wb")
        environment = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [*exe, "serve", *args], stdout=subprocess.DEVNULL, stderr=self.log_file, env=environment
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runs(self, task=None, **filters):
        if not (self.home / "history.db").exists():
            return []
        with HistoryStore(str(self.home / "history.db")) as store:
            return store.runs(task, limit=None, **filters)

    def wait_runs(self, task, count, statuses=None):
        return wait_for(
            lambda: (
                len(self.runs(task, statuses=statuses)) >= count
                and self.runs(task, statuses=statuses)
            ),
            what=f"{count} runs of {task} {statuses or ''}",
        )

    def wait_log(self, text):
        return wait_for(lambda: text in self.log, what=f"log line {text!r}")

    def stop(self, sig=signal.SIGTERM, timeout=LIMIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(LIMIT)
        self.log_file.close()


def serve_starter(exe, home: Path):
    """For a serve fixture: yields start(*args, env=...) -> Serve and kills every serve it
    started at the end."""
    started: list[Serve] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Serve:
        process = Serve(exe, home, *args, env=env)
        started.append(process)
        return process

    home.mkdir(parents=True, exist_ok=True)
    yield start
    for process in started:
        process.kill()


@pytest.fixture
def serve(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def first_attempt_slots(runs):
    return Counter(
        (r.task, r.scheduled_at)
        for r in runs
        if r.attempt == 1 and r.trigger in (Trigger.SCHEDULE, Trigger.CATCH_UP) and r.scheduled_at
    )


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    received: list[str] = []

    def messages():
        while True:
            try:
                received.append(sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return received

    yield path, messages
    sock.close()


def test_runs_lock_notify_and_graceful_stop(serve, tasks_path, notify_socket):
    path, messages = notify_socket
    tasks_path.write_text(
        task_text("tick")
        + task_text("long", "@every 1s", "sleep 60")
        + task_text("fds", "@every 1s", "ls -l /proc/$$/fd")
    )
    first = serve("--grace", "0.5", "--kill-grace", "2", env={"NOTIFY_SOCKET": str(path)})
    wait_for(lambda: any("READY=1" in m for m in messages()), what="READY=1")
    first.wait_runs("tick", 3, statuses=[Status.SUCCEEDED])
    first.wait_runs("long", 1, statuses=[Status.RUNNING])
    fds = first.wait_runs("fds", 1, statuses=[Status.SUCCEEDED])
    with HistoryStore(str(first.home / "history.db")) as store:
        listing = store.get_run(fds[0].id).stdout.data.decode()
    assert "serve.lock" not in listing and "history.db" not in listing  # nothing of serve's leaks

    second = serve()
    assert second.proc.wait(LIMIT) == 75
    second.log_file.close()
    assert f"cronctl serve is already running (pid {first.proc.pid})" in second.log

    began = time.monotonic()
    assert first.stop(signal.SIGTERM) == 0
    assert time.monotonic() - began < 10
    long_runs = first.runs("long")
    statuses = Counter(r.status for r in long_runs)
    assert statuses[Status.INTERRUPTED] == 1 and statuses[Status.RUNNING] == 0
    interrupted = next(r for r in long_runs if r.status == Status.INTERRUPTED)
    assert interrupted.reason and "serve was stopped" in interrupted.reason
    assert any("STOPPING=1" in m for m in messages())
    assert not [n for n in first_attempt_slots(first.runs()).values() if n > 1]
    with HistoryStore(str(first.home / "history.db")) as store:
        state = store.serve_state()
    assert state.pid == first.proc.pid and state.stopped_at is not None
    lines = first.log.splitlines()
    assert any("run" in line and "of tick started" in line for line in lines)
    assert any("of tick succeeded in" in line for line in lines)


def test_hot_reload_and_invalid_edit(serve, tasks_path):
    tasks_path.write_text(task_text("old"))
    process = serve("--grace", "0")
    process.wait_runs("old", 1)
    time.sleep(1.1)  # a new mtime (and the first poll) before the edit
    tasks_path.write_text(task_text("old") + task_text("added"))
    edited = time.monotonic()
    process.wait_log("added added")
    assert time.monotonic() - edited < 3.0  # README.md#what-serve-guarantees: within 2 s
    process.wait_runs("added", 1)

    tasks_path.write_text(task_text("old") + task_text("added") + "[tasks.broken\n")
    process.wait_log("task file not reloaded")
    count = len(process.runs("old"))
    process.wait_runs("old", count + 2)  # the last good tasks keep running
    time.sleep(1.5)
    assert process.log.count("task file not reloaded") == 1  # reported once, not at each poll
    assert process.proc.poll() is None
    process.proc.send_signal(signal.SIGHUP)  # a forced reload says it again
    wait_for(lambda: process.log.count("task file not reloaded") == 2, what="error after SIGHUP")
    assert "SIGHUP: reloading the task file" in process.log
    assert process.stop() == 0


def test_sigusr1_logs_what_serve_is_doing(serve, tasks_path):
    tasks_path.write_text(task_text("tick") + task_text("nightly", schedule="0 3 * * *"))
    process = serve("--grace", "0")
    process.wait_runs("tick", 1)
    process.proc.send_signal(signal.SIGUSR1)
    process.wait_log("state: task tick:")
    lines = [line for line in process.log.splitlines() if "state: " in line]
    assert "state: 2 tasks," in lines[0]
    assert "state: task nightly: next " in lines[1] and "T03:00:00+00:00" in lines[1]
    assert "state: task tick: next " in lines[2]
    assert process.proc.poll() is None  # a report, not a stop
    assert process.stop() == 0


def test_sigkill_then_restart_marks_abandoned_without_a_duplicate_slot(serve, tasks_path):
    tasks_path.write_text(task_text("job", command="sleep 60") + task_text("tick"))
    first = serve()
    running = first.wait_runs("job", 1, statuses=[Status.RUNNING])
    wait_for(lambda: first.runs("job", statuses=[Status.RUNNING])[0].pid, what="pid recorded")
    pid = first.runs("job", statuses=[Status.RUNNING])[0].pid
    first.kill()  # SIGKILL: no chance to record anything
    try:
        os.killpg(pid, signal.SIGKILL)  # the orphaned job's group (its pid is its pgid)
    except ProcessLookupError:
        pass
    killed_slot = running[0].scheduled_at

    second = serve("--grace", "0", "--kill-grace", "1")
    abandoned = wait_for(
        lambda: second.runs("job", statuses=[Status.ABANDONED]), what="abandoned run"
    )
    assert [r.scheduled_at for r in abandoned] == [killed_slot]
    second.wait_runs("tick", len(first_attempt_slots(second.runs("tick"))) + 2)
    assert second.stop() == 0
    counts = first_attempt_slots(second.runs())
    assert counts and max(counts.values()) == 1
    assert second.log.count("abandoned") >= 1


def test_invalid_task_file_at_start_exits_78(serve, tasks_path):
    tasks_path.write_text('[tasks.x]\nschedule = "61 * * * *"\ncommand = "true"\n')
    process = serve()
    assert process.proc.wait(LIMIT) == 78
    process.log_file.close()
    lines = process.log.strip().splitlines()
    assert lines[0].startswith("error: ") and "tasks.toml" in lines[0]
    assert "Traceback" not in process.log


def test_serve_sends_notifications_after_the_last_retry(serve, tasks_path, tmp_path):
    """serve attaches the notifier: a failing task's `command` channel hears of it once its
    retries are spent (attempt 2 here, never attempt 1), with the run JSON on stdin and
    CRONCTL_STATUS in its environment."""
    inbox = tmp_path / "inbox"
    channel = f"cat > {inbox}.$CRONCTL_RUN_ID.json; echo $CRONCTL_STATUS >> {inbox}.status"
    extra = (
        'retries = 1\nretry_delay = "1s"\n'
        f"[tasks.flaky.notify]\non = [\"failure\"]\ncommand = '{channel}'"
    )
    tasks_path.write_text(task_text("flaky", schedule="@every 2s", command="exit 4", extra=extra))
    process = serve("--grace", "1")
    try:
        wait_for(lambda: list(tmp_path.glob("inbox.*.json")), what="a failure notification")
        process.stop()
    finally:
        process.kill()
    payloads = [json.loads(p.read_text()) for p in tmp_path.glob("inbox.*.json") if p.read_text()]
    assert payloads and all(p["attempt"] == 2 and p["status"] == "failed" for p in payloads)
    assert all(p["exit_code"] == 4 and p["task"] == "flaky" for p in payloads)
    assert (tmp_path / "inbox.status").read_text().split()[0] == "failed"


def test_a_task_file_that_becomes_a_fifo_never_blocks_serve(serve, tasks_path):
    """A FIFO in place of the task file would block a read forever: serve refuses it (one
    error line), keeps the last good tasks, and still stops on SIGTERM."""
    tasks_path.write_text(task_text("tick"))
    process = serve("--grace", "1")
    process.wait_runs("tick", 1)
    tasks_path.unlink()
    os.mkfifo(tasks_path)
    process.wait_log("is not a regular file")
    before = len(process.runs("tick"))
    process.wait_runs("tick", before + 2)
    assert process.stop() == 0


def test_serve_refuses_a_fifo_at_start(serve, tasks_path):
    os.mkfifo(tasks_path)
    process = serve()
    assert process.proc.wait(LIMIT) == 78
    assert "is not a regular file" in process.log
