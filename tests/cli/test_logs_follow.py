"""`cronctl logs` on a running run and `logs --follow` (README.md#runs), with real processes:
jobs started by a real `cronctl run-now` or `cronctl serve` in another process, followed by a
real `cronctl logs` through pipes and a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import signal
import statistics
import subprocess
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from cronctl.records import Status
from cronctl.store import HistoryStore
from tests import support
from tests.serve.test_serve_process import serve_starter

LIMIT = 20.0  # seconds any one condition may take on a slow, loaded machine
wait_for = partial(support.wait_for, timeout=LIMIT)

# A line every 0.1 s, stdout and stderr in turn (2 s in all).
TICKER = (
    "for i in $(seq 1 20); do"
    " if [ $((i % 2)) = 0 ]; then echo err $i >&2; else echo out $i; fi; sleep 0.1; done"
)
STAMPS = "import time\\nfor i in range(25):\\n  print(time.time(), flush=True); time.sleep(0.13)"
TASKS = f"""
[tasks.ticker]
schedule = "@daily"
command = "{TICKER}"

[tasks.long]
schedule = "@daily"
command = "for i in $(seq 1 200); do echo out $i; sleep 0.1; done"

[tasks.failer]
schedule = "@daily"
command = "echo before; sleep 1.5; echo broke >&2; exit 3"

[tasks.failed]
schedule = "@daily"
command = "echo before; echo broke >&2; exit 3"

[tasks.stamps]
schedule = "@daily"
command = "python3 -c '{STAMPS}'"
"""


@pytest.fixture
def home(cronctl_home: Path, tasks_path: Path) -> Path:
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(TASKS)
    return cronctl_home


@pytest.fixture
def serve(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def runs(home: Path, task: str | None = None):
    if not (home / "history.db").exists():
        return []
    with HistoryStore(str(home / "history.db")) as store:
        return store.runs(task, limit=None)


def running_id(home: Path, task: str) -> int:
    """Wait for `task`'s run to be running with output in its spool; return its id."""

    def found():
        for run in runs(home, task):
            if run.status == Status.RUNNING and (home / "running" / str(run.id) / "0").exists():
                return run.id
        return None

    return wait_for(found, what=f"a running run of {task} with output")


def run_now(exe, task: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*exe, "run-now", task],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def cronctl(exe, *args: str, timeout: float = LIMIT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def on_pty(exe, args: list[str], env: dict[str, str] | None = None):
    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environment.update({"TERM": "xterm-256color", **(env or {})})
    environment.pop("TTY_COMPATIBLE", None)
    proc = subprocess.Popen(
        [*exe, *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment,
        # Ctrl-C as a terminal's shell gives it: at its default, whatever this process
        # inherited (a suite started in the background, or under nohup, ignores SIGINT,
        # and Python then never turns it into KeyboardInterrupt).
        preexec_fn=_default_sigint,
    )
    os.close(follower)
    return leader, proc


def test_follow_a_run_now_in_another_process_line_by_line(home, cronctl_exe):
    job = run_now(cronctl_exe, "ticker")
    run_id = running_id(home, "ticker")
    follow = subprocess.Popen(
        [*cronctl_exe, "logs", str(run_id), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = follow.stdout.readline()
    assert first.startswith("out ")
    assert job.poll() is None, "a line reached the follower before the job ended"
    rest, err = follow.communicate(timeout=LIMIT)
    assert follow.returncode == 0
    # stdout gets the job's stdout only, all of it, in order; stderr its stderr, then the end.
    out_lines = [first.strip(), *rest.split()]
    assert "out 19" in rest and "err" not in rest
    assert [line for line in out_lines if line.isdigit()] == sorted(
        [line for line in out_lines if line.isdigit()], key=int
    )
    err_lines = err.splitlines()
    assert "err 20" in err_lines
    assert err_lines[-1].startswith(f"run {run_id} of ticker succeeded (exit code 0) after ")
    assert job.wait(LIMIT) == 0


def test_on_a_terminal_stderr_is_red_and_a_failure_exits_1(home, cronctl_exe):
    job = run_now(cronctl_exe, "failer")
    running_id(home, "failer")
    leader, proc = on_pty(cronctl_exe, ["logs", "failer", "--last", "-f"])
    text = support.read_pty(leader, proc, LIMIT).decode()
    assert proc.returncode == 1
    assert "before" in text and "\x1b[31mbroke\x1b[0m\r\n" in text
    assert "\x1b[31mbefore" not in text
    assert "failed (exit code 3)" in text.splitlines()[-1]
    job.wait(LIMIT)


def test_no_color_keeps_the_terminal_free_of_escapes(home, cronctl_exe):
    job = run_now(cronctl_exe, "failer")
    running_id(home, "failer")
    leader, proc = on_pty(cronctl_exe, ["logs", "failer", "--last", "-f"], {"NO_COLOR": "1"})
    text = support.read_pty(leader, proc, LIMIT).decode()
    assert "broke" in text and "\x1b" not in text
    job.wait(LIMIT)


def test_logs_on_a_running_run_shows_what_is_there_and_says_it_runs(home, cronctl_exe):
    job = run_now(cronctl_exe, "failer")
    run_id = running_id(home, "failer")
    done = cronctl(cronctl_exe, "logs", str(run_id))
    assert done.returncode == 0
    assert done.stdout == "before\n"
    assert "--- stdout (7 bytes) ---" in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"run {run_id} of failer is still running (since ")
    assert ", pid " in last and f"cronctl logs {run_id} --follow" in last
    job.wait(LIMIT)
    assert not (home / "running" / str(run_id)).exists()
    done = cronctl(cronctl_exe, "logs", str(run_id))
    assert "still running" not in done.stderr


def test_following_an_ended_run_prints_it_and_exits_at_once(home, cronctl_exe):
    # `failed` is `failer` without its 1.5 s pause: the run has ended before the follow.
    assert cronctl(cronctl_exe, "run-now", "failed").returncode == 3
    started = time.monotonic()
    done = cronctl(cronctl_exe, "logs", "failed", "--last", "--follow")
    took = time.monotonic() - started
    assert done.returncode == 1
    assert done.stdout == "before\n"
    assert done.stderr.splitlines()[0] == "broke"
    assert "failed (exit code 3)" in done.stderr.splitlines()[-1]
    assert took < 5.0  # no waiting: the time of a command start on a loaded machine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "failer", "--last", "--wait"], "--wait waits for a task's next run"),
        (["logs", "1", "--follow", "--wait"], "--wait waits for a task's next run"),
        (["logs", "1", "--follow", "--json"], "--follow prints the output as it comes"),
        (["logs", "nosuch", "--last", "-f", "--wait"], "no task named 'nosuch'"),
    ],
)
def test_usage_errors(home, cronctl_exe, args, message):
    done = cronctl(cronctl_exe, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {message}")
    assert "Traceback" not in done.stderr


def test_last_follow_wait_follows_the_next_run(home, cronctl_exe):
    follow = subprocess.Popen(
        [*cronctl_exe, "logs", "ticker", "--last", "-f", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # it waits: nothing of the task has run yet
    assert follow.poll() is None
    job = run_now(cronctl_exe, "ticker")
    out, err = follow.communicate(timeout=LIMIT)
    assert follow.returncode == 0
    assert out.split()[:2] == ["out", "1"] and "out 19" in out
    assert err.startswith("waiting for the next run of ticker")
    assert "ticker succeeded" in err.splitlines()[-1]
    job.wait(LIMIT)


def test_last_follow_without_wait_prints_the_last_run(home, cronctl_exe):
    assert cronctl(cronctl_exe, "run-now", "failed").returncode == 3
    done = cronctl(cronctl_exe, "logs", "failed", "--last", "-f")
    assert done.returncode == 1 and done.stdout == "before\n"


def test_follow_a_run_started_by_serve(home, tasks_path, cronctl_exe, serve):
    # Only the ticker (2 s) runs under serve: `long` (20 s) kept `@daily` (a `replace` of every
    # `"@daily"` + `command = "for` once made it run too, and the stop below waited for it).
    ticker = f'schedule = "@daily"\ncommand = "{TICKER}"'
    assert TASKS.count(ticker) == 1
    tasks_path.write_text(TASKS.replace(ticker, ticker.replace("@daily", "@every 3s")))
    server = serve()
    follow = subprocess.Popen(
        [*cronctl_exe, "logs", "ticker", "--last", "-f", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follow.stdout.readline() == "out 1\n"
    (run,) = [r for r in runs(home, "ticker") if r.status == Status.RUNNING]
    out, err = follow.communicate(timeout=LIMIT)
    assert follow.returncode == 0 and "out 19" in out
    assert f"run {run.id} of ticker succeeded" in err.splitlines()[-1]
    assert server.stop() == 0


def test_a_serve_killed_mid_run_ends_the_follow_and_its_restart_removes_the_spool(
    home, tasks_path, cronctl_exe, serve
):
    tasks_path.write_text(
        '[tasks.slow]\nschedule = "@every 2s"\n'
        'command = "for i in $(seq 1 100); do echo $i; sleep 0.1; done"\n'
    )
    server = serve()
    run_id = running_id(home, "slow")
    follow = subprocess.Popen(
        [*cronctl_exe, "logs", str(run_id), "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follow.stdout.readline().strip().isdigit()
    server.kill()  # SIGKILL
    out, err = follow.communicate(timeout=LIMIT)
    assert follow.returncode == 1
    assert "the serve that ran it is gone" in err.splitlines()[-1]
    assert (home / "running" / str(run_id) / "0").exists()  # nobody removed it yet
    again = serve()
    wait_for(lambda: not (home / "running" / str(run_id)).exists(), what="the spool removed")
    (run,) = [r for r in runs(home, "slow") if r.id == run_id]
    assert run.status == Status.ABANDONED
    again.stop()


def test_prune_removes_the_spool_of_a_killed_run_now(home, cronctl_exe):
    job = run_now(cronctl_exe, "ticker")
    run_id = running_id(home, "ticker")
    job.kill()
    job.wait(LIMIT)
    assert (home / "running" / str(run_id) / "0").exists()
    other = run_now(cronctl_exe, "failer")  # a live writer's spool stays
    other_id = running_id(home, "failer")
    assert cronctl(cronctl_exe, "prune").returncode == 0
    assert not (home / "running" / str(run_id)).exists()
    assert (home / "running" / str(other_id)).exists()
    other.wait(LIMIT)


def test_ctrl_c_ends_following_quietly_with_130(home, cronctl_exe):
    # A job of 20 s, stopped at the end: `ticker` (2 s) could end before the signal on a
    # loaded machine, and the follower then ends 0 with the run; were Ctrl-C to fail, the
    # follower would end with the job, and the test with it (never a hang).
    job = run_now(cronctl_exe, "long")
    run_id = running_id(home, "long")
    leader, proc = on_pty(cronctl_exe, ["logs", str(run_id), "-f"])
    first = os.read(leader, 1024)
    assert b"out" in first or b"err" in first
    proc.send_signal(signal.SIGINT)
    text = support.read_pty(leader, proc, LIMIT).decode()
    assert proc.returncode == 130
    assert "Traceback" not in text and "error" not in text
    job.terminate()  # run-now stops its job and records it
    job.wait(LIMIT)


def test_a_reader_that_goes_away_is_quiet(home, cronctl_exe):
    job = run_now(cronctl_exe, "ticker")
    run_id = running_id(home, "ticker")
    done = subprocess.run(
        ["sh", "-c", f"{' '.join(cronctl_exe)} logs {run_id} -f --stdout | head -1"],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.stdout.startswith("out ")
    assert done.stderr == ""
    job.terminate()  # done with it: run-now stops its job and records it
    job.wait(LIMIT)


def test_follow_latency(home, cronctl_exe):
    """From the job's write to the follower's read: median under 0.5 s (POLL is 0.1 s); the
    maximum is generous for a loaded machine. The figures are printed (pytest -s)."""
    job = run_now(cronctl_exe, "stamps")
    run_id = running_id(home, "stamps")
    follow = subprocess.Popen(
        [*cronctl_exe, "logs", str(run_id), "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    latencies = []
    for line in follow.stdout:
        received = time.time()
        latencies.append(received - float(line))
    follow.wait(LIMIT)
    job.wait(LIMIT)
    live = latencies[3:]  # the first lines were in the spool before the follower started
    median, worst = statistics.median(live), max(live)
    print(f"follow latency over {len(live)} lines: median {median:.3f}s, max {worst:.3f}s")
    assert len(live) >= 10
    assert median < 0.5
    assert worst < 3.0


def test_a_silent_run_of_a_killed_serve_ends_the_follow_once_its_job_is_gone(
    home, tasks_path, cronctl_exe, serve
):
    """No spool to tell (the job prints nothing): following ends when the job's process group
    has been gone for follow.ORPHAN_GRACE seconds with the row still `running`."""
    tasks_path.write_text('[tasks.quiet]\nschedule = "@every 2s"\ncommand = "sleep 2"\n')
    server = serve()

    def running():
        return next((r for r in runs(home, "quiet") if r.status == Status.RUNNING and r.pid), None)

    run = wait_for(running, what="a running run of quiet with its pid")
    follow = subprocess.Popen(
        [*cronctl_exe, "logs", str(run.id), "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    server.kill()
    started = time.monotonic()
    out, err = follow.communicate(timeout=LIMIT)
    took = time.monotonic() - started
    assert follow.returncode == 1 and out == ""
    assert "the serve that ran it is gone" in err.splitlines()[-1]
    assert took >= 4.0  # the job's 2 s (at most) and then the grace of 5 s, not at once


def test_logs_json_of_a_running_run_has_the_output_so_far(home, cronctl_exe):
    import json

    job = run_now(cronctl_exe, "failer")
    run_id = running_id(home, "failer")
    done = cronctl(cronctl_exe, "logs", str(run_id), "--json")
    shown = json.loads(done.stdout)
    assert shown["status"] == "running" and shown["stdout"] == "before\n"
    job.terminate()  # done with it: run-now stops its job and records it
    job.wait(LIMIT)


def test_last_follow_follows_the_running_run_past_newer_skipped_rows(home, cronctl_exe):
    """Seen using it: a task whose run takes longer than its interval (`overlap = skip`) has
    `skipped` rows newer than the run still going; `--last -f` follows the running one."""
    from cronctl.store import HistoryStore

    job = run_now(cronctl_exe, "ticker")
    run_id = running_id(home, "ticker")
    with HistoryStore(home / "history.db") as store:
        skipped = store.start_run("ticker", "schedule", started_at=datetime.now(UTC))
        store.finish_run(
            skipped,
            status="skipped",
            finished_at=datetime.now(UTC),
            reason=f"previous run {run_id} still running",
        )
    done = cronctl(cronctl_exe, "logs", "ticker", "--last", "-f")
    assert done.returncode == 0, done.stderr
    assert "out 19" in done.stdout
    assert done.stderr.splitlines()[-1].startswith(f"run {run_id} of ticker succeeded")
    assert job.wait(LIMIT) == 0
