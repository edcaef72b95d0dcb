"""run-now, history and logs: through the real console script where exit codes and signals
matter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from cronctl.store import HistoryStore
from tests.support import pid_alive, wait_for


def run(cronctl_exe, *args, timeout=60):
    return subprocess.run([*cronctl_exe, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("command", "extra", "code", "status"),
    [
        ("echo hello", [], 0, "succeeded"),
        ("exit 3", [], 3, "failed"),
        ("no-such-command-xyz", [], 127, "failed"),
        ("sleep 30", ["--timeout", "1"], 124, "timed_out"),
        ("kill -TERM $$", [], 128 + signal.SIGTERM, "killed"),
    ],
)
def test_run_now_exit_codes_through_the_console_script(
    cronctl_exe, cronctl_home, command, extra, code, status
):
    assert run(cronctl_exe, "add", "job", "@daily", command, *extra).returncode == 0
    result = run(cronctl_exe, "run-now", "job")
    assert result.returncode == code, result.stderr
    with HistoryStore(cronctl_home / "history.db") as store:
        [recorded] = store.runs("job")
    assert (recorded.status, recorded.trigger, recorded.attempt) == (status, "manual", 1)
    assert "Traceback" not in result.stderr


def test_run_now_streams_output_and_records_it(cli):
    cli("add", "job", "@daily", "echo out; echo err >&2")
    result = cli("run-now", "job")
    assert result.exit_code == 0
    history = json.loads(cli("history", "--json").stdout)
    assert history[0]["status"] == "succeeded" and history[0]["trigger"] == "manual"
    logs = json.loads(cli("logs", str(history[0]["id"]), "--json").stdout)
    assert logs["stdout"] == "out\n" and logs["stderr"] == "err\n"


def test_run_now_retries(cli, tmp_path):
    counter = tmp_path / "n"
    cli(
        "add",
        "job",
        "@daily",
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $n -ge 1 ]",
        "--retries",
        "2",
        "--retry-delay",
        "0",
    )
    result = cli("run-now", "job", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [(a["attempt"], a["trigger"], a["status"]) for a in data["attempts"]] == [
        (1, "manual", "failed"),
        (2, "retry", "succeeded"),
    ]
    counter.unlink()
    assert cli("run-now", "job", "--no-retries").exit_code == 1


def test_run_now_disabled_task_says_so(cli):
    cli("add", "job", "@daily", "true", "--disabled")
    result = cli("run-now", "job")
    assert result.exit_code == 0 and "disabled" in result.stderr


def test_run_now_when_and_force(cli):
    cli("add", "job", "@daily", "echo ran", "--when", "exit 1")
    result = cli("run-now", "job", "--json")
    data = json.loads(result.stdout)
    assert data["status"] == "skipped" and data["reason"] == "the when condition `exit 1` exited 1"
    assert result.exit_code == 125  # #14, item 8: skipped is not success (it was 0)
    forced = json.loads(cli("run-now", "job", "--force", "--json").stdout)
    assert forced["status"] == "succeeded" and forced["stdout"] == "ran\n"


def test_run_now_unknown_task_suggests(cli):
    cli("add", "backup", "@daily", "true")
    result = cli("run-now", "backpu")
    assert result.exit_code == 2
    assert "no task named 'backpu'" in result.stderr and "did you mean 'backup'?" in result.stderr


def test_ctrl_c_stops_the_group_and_records_interrupted(cronctl_exe, cronctl_home, tmp_path):
    marker = tmp_path / "child.pid"
    run(
        cronctl_exe,
        "add",
        "job",
        "@daily",
        f"sh -c 'trap \"\" INT; echo $$ > {marker}; sleep 60'; sleep 60",
    )
    proc = subprocess.Popen(
        [*cronctl_exe, "run-now", "job"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text().strip():
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    child = int(marker.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    with HistoryStore(cronctl_home / "history.db") as store:
        [recorded] = store.runs("job")
    assert recorded.status == "interrupted" and recorded.reason == "interrupted by Ctrl-C"
    wait_for(lambda: not pid_alive(child), timeout=5, what="the job's process gone after Ctrl-C")


def test_history_filters(cli):
    cli("add", "ok", "@daily", "true")
    cli("add", "bad", "@daily", "exit 2")
    for name in ("ok", "bad", "ok"):
        cli("run-now", name)
    everything = json.loads(cli("history", "--json").stdout)
    assert [r["task"] for r in everything] == ["ok", "bad", "ok"]
    for key in (
        "id",
        "task",
        "trigger",
        "attempt",
        "scheduled_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "status",
        "exit_code",
        "signal",
        "reason",
    ):
        assert key in everything[0]
    failed = json.loads(cli("history", "--failed", "--json").stdout)
    assert [(r["task"], r["exit_code"]) for r in failed] == [("bad", 2)]
    assert len(json.loads(cli("history", "ok", "--json").stdout)) == 2
    assert len(json.loads(cli("history", "--limit", "1", "--json").stdout)) == 1
    assert len(json.loads(cli("history", "--since", "1h", "--json").stdout)) == 3
    assert json.loads(cli("history", "--status", "succeeded", "--json").stdout)[0]["task"] == "ok"
    plain = cli("history").stdout.splitlines()
    assert plain[0].startswith("id\ttask\ttrigger") and len(plain) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "--since", "soon"], "--since 'soon' is not a time"),
        (["history", "--status", "great"], "unknown status 'great'"),
        (["history", "nope"], "no task named 'nope'"),
        (["logs", "999"], "no run with id 999"),
        (["logs", "abc"], "'abc' is not a run id"),
        (["logs", "nope", "--last"], "no task named 'nope'"),
    ],
)
def test_bad_input_is_one_clear_line(cli, args, message):
    cli("add", "job", "@daily", "true")
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_logs_escape_terminal_sequences(cli):
    cli("add", "job", "@daily", r"printf 'red \033[31mX\033[0m bad \377 end\n'")
    cli("run-now", "job")
    result = cli("logs", "job", "--last", "--stdout")
    assert "\x1b" not in result.stdout
    assert result.stdout == "red \\x1b[31mX\\x1b[0m bad \\xff end\n"
    data = json.loads(cli("logs", "job", "--last", "--json").stdout)
    assert data["stdout_bytes"] == len(b"red \x1b[31mX\x1b[0m bad \xff end\n")


def test_run_now_mails_a_failure_through_sendmail_without_an_smtp_section(
    cronctl_exe, cronctl_home, tmp_path
):
    """No [defaults.smtp] means the local sendmail (README, Notifications): for `run-now` and
    serve as for `notify-test` (they once fell back to SMTP on localhost:25 instead)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sendmail = bin_dir / "sendmail"
    sendmail.write_text(f"#!/bin/sh\ncat > {tmp_path}/message\n")
    sendmail.chmod(0o755)
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(
        '[tasks.job]\nschedule = "@daily"\ncommand = "exit 2"\n\n'
        '[tasks.job.notify]\nemail = "ops@example.org"\ntimeout = "5s"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        [*cronctl_exe, "run-now", "job"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2, result.stderr
    message = (tmp_path / "message").read_text()
    assert "To: ops@example.org" in message and "job failed" in message
