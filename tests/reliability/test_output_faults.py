"""Fault scenarios 15-17 of reliability.md section 6: what jobs print, jobs that cannot start,
jobs that read stdin. Driven through the real `cronctl` script (run-now, logs, history, show)
and, where the scenario says so, a real `cronctl serve`."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.reliability.cfg_helpers import (
    LIMIT,
    CfgServe,
    assert_one_error,
    cfg_run,
    environment,
    wait_for,
)

JUNK_COMMAND = (
    r"printf '\377\376\000\033[31m[bold]x\033]0;title\007\r\n'; "
    r"printf 'err\033[2J[red]e\377' >&2"
)
JUNK_STDOUT = b"\xff\xfe\x00\x1b[31m[bold]x\x1b]0;title\x07\r\n"
JUNK_STDERR = b"err\x1b[2J[red]e\xff"
RAW_CONTROLS = ("\x1b", "\x00", "\x07", "\r", "\x9b")


def run_bytes(exe, *args: str, env=None, stdin=subprocess.DEVNULL, timeout: float = LIMIT):
    return subprocess.run(
        [*exe, *args], stdin=stdin, capture_output=True, env=environment(env), timeout=timeout
    )


def assert_no_raw_controls(text: str, what: str) -> None:
    for char in RAW_CONTROLS:
        assert char not in text, f"raw {char!r} in {what}: {text!r}"


# ---------------------------------------------------------------------------------------------
# 15. Invalid UTF-8, NUL, terminal escapes and Rich markup in output


def test_s15_job_output_is_stored_exactly_and_shown_escaped(cronctl_exe):
    """Decided: `run-now` passes the job's bytes through unchanged (as running the command in the
    terminal would; `run-now x > file` gets exactly what the job printed). What cronctl shows
    from its records is escaped: `logs` prints control characters and invalid UTF-8 as `\\xNN`
    (lossless, rather than U+FFFD replacement characters), Rich markup such as `[bold]` literally,
    and `--json` (logs, run-now) is valid JSON whose text has no raw control character."""
    assert cfg_run(cronctl_exe, "add", "junk", "@daily", JUNK_COMMAND).returncode == 0
    ran = run_bytes(cronctl_exe, "run-now", "junk")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == JUNK_STDOUT
    assert ran.stderr.startswith(JUNK_STDERR)

    logs = cfg_run(cronctl_exe, "logs", "junk", "--last")
    assert logs.returncode == 0
    assert_no_raw_controls(logs.stdout, "logs")
    assert "[bold]x" in logs.stdout and "[red]e" in logs.stdout
    assert "\\xff\\xfe\\x00\\x1b[31m[bold]x\\x1b]0;title\\x07" in logs.stdout
    assert "err\\x1b[2J[red]e\\xff" in logs.stdout

    for args in (["logs", "junk", "--last", "--json"], ["run-now", "junk", "--json"]):
        result = cfg_run(cronctl_exe, *args)
        assert result.returncode == 0, result.stderr
        run = json.loads(result.stdout)
        assert "[bold]x" in run["stdout"] and "[red]e" in run["stderr"]
        assert_no_raw_controls(run["stdout"] + run["stderr"], " ".join(args))
        assert run["stdout_bytes"] == len(JUNK_STDOUT) and run["stderr_bytes"] == len(JUNK_STDERR)

    for args in (["history"], ["history", "--json"], ["show", "junk"], ["list"]):
        result = cfg_run(cronctl_exe, *args)
        assert result.returncode == 0
        assert_no_raw_controls(result.stdout + result.stderr, " ".join(args))


def test_s15_values_from_the_task_file_and_arguments_are_shown_escaped(tasks_path, cronctl_exe):
    """Decided: every text cronctl prints goes through one escaping step (render.printable):
    task values from the file (a description, an env value with ESC, BEL, C1 CSI) and names
    typed on the command line echoed in errors never reach the terminal raw; `[bold]` stays
    literal. Before, `show` printed such a description raw and `show $'x\\e[31m'` echoed the
    escape sequence in its error."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(
        '[tasks.d]\nschedule = "@daily"\ncommand = "echo hi"\n'
        'description = "\\u001b[31mred\\u001b[0m [bold]x\\u0007\\u009b2J"\n'
        'env = { A = "\\u001b]0;title\\u0007" }\n'
    )
    for args in (["show", "d"], ["list"], ["export", "--format", "crontab"]):
        result = cfg_run(cronctl_exe, *args)
        assert result.returncode == 0, result.stderr
        if args[0] != "export":  # a crontab must carry the value as it is
            assert_no_raw_controls(result.stdout + result.stderr, " ".join(args))
    shown = cfg_run(cronctl_exe, "show", "d").stdout
    assert "\\x1b[31mred\\x1b[0m [bold]x\\x07\\x9b2J" in shown
    for name in ("x\x1b[31m", "\x1b]0;pwned\x07"):
        for command in ("show", "run-now", "enable"):
            result = cfg_run(cronctl_exe, command, name)
            assert result.returncode == 2
            assert_no_raw_controls(result.stderr, f"{command} error")


@pytest.mark.parametrize("terminal", ["0", "1"], ids=["piped", "terminal"])
def test_h19_show_keeps_each_value_on_its_line(tasks_path, cronctl_exe, terminal):
    """Also seen in #13: `show` printed tabs and newlines of values raw, so a description with a
    newline made a line that is no setting and a tab split a value in `cut -f`. Each value is
    now shown on its line with tab and newline escaped as `\\t` and `\\n` (the other control
    characters as `\\xNN`, as before), piped and on a terminal alike."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(
        '[tasks.d]\nschedule = "@daily"\ncommand = "echo one\\tTAB\\ntwo"\n'
        'description = "first\\nsecond\\tthird\\u001b"\nenv = { A = "x\\ty" }\n'
    )
    result = cfg_run(cronctl_exe, "show", "d", env={"TTY_COMPATIBLE": terminal, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    settings = shown[: shown.index("next runs:")].splitlines()
    expected = {
        "command": "echo one\\tTAB\\ntwo",
        "description": "first\\nsecond\\tthird\\x1b",
        "env": "A=x\\ty",
    }
    for key, value in expected.items():
        lines = [line for line in settings if line.split(" ", 1)[0] == key]
        assert len(lines) == 1 and lines[0].split(None, 1)[1] == value, shown
    assert "\t" not in shown and not any(line.startswith(("second", "two")) for line in settings)


# ---------------------------------------------------------------------------------------------
# 16. Command not found, not executable, bad shebang, missing working folder or shell


def test_s16_jobs_that_cannot_run_are_recorded_and_notified_once(tmp_path, cronctl_exe):
    """Decided (README.md#run-statuses): a command the shell cannot find is a `failed` run with
    exit 127 and a reason saying so; not executable: `failed`, 126; a bad shebang: whatever the
    shell reports (dash: 127 "not found"; bash: 126); a missing working folder or shell: `error`
    (could not start), with the reason. `run-now` exits with the job's status (127, 126) and 1 for
    `error` runs, which have none. Each failed run sends its failure notification exactly once."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "noexec").write_text("echo hi\n")
    (bin_dir / "badshebang").write_text("#!/nonexistent/interpreter\necho hi\n")
    (bin_dir / "badshebang").chmod(0o755)
    notified = tmp_path / "notified.log"
    notify = [
        "--notify-on",
        "failure",
        "--notify-command",
        f'echo "$CRONCTL_TASK $CRONCTL_STATUS" >> {notified}',
    ]
    tasks = {
        "notfound": (["no-such-command-xyz"], "failed", {127}, "could not find the command"),
        "noexec": ([str(bin_dir / "noexec")], "failed", {126}, "exit status 126"),
        "shebang": ([str(bin_dir / "badshebang")], "failed", {126, 127}, "exit status 12"),
        "nocwd": (
            ["true", "--working-dir", str(tmp_path / "gone")],
            "error",
            {1},
            "does not exist",
        ),
        "noshell": (
            ["true", "--shell", "/no/such/shell"],
            "error",
            {1},
            "shell /no/such/shell not found",
        ),
    }
    for name, (command, *_rest) in tasks.items():
        added = cfg_run(cronctl_exe, "add", name, "@daily", *command, *notify)
        assert added.returncode == 0, added.stderr
    for name, (_, status, codes, reason) in tasks.items():
        ran = cfg_run(cronctl_exe, "run-now", name)
        assert ran.returncode in codes, (name, ran.returncode, ran.stderr)
        assert "Traceback" not in ran.stderr
        run = json.loads(cfg_run(cronctl_exe, "history", name, "--json").stdout)[0]
        assert run["status"] == status, (name, run)
        assert reason in (run["reason"] or ""), (name, run)
        if status == "failed":
            assert run["exit_code"] in codes
    lines = notified.read_text().splitlines()
    assert sorted(lines) == sorted(
        f"{name} {status}" for name, (_, status, *_r) in tasks.items()
    ), lines


def test_s16_serve_keeps_scheduling_beside_jobs_that_cannot_run(tmp_path, cronctl_exe):
    """Decided: serve records each failing start (`failed` 127, `error` for a missing folder) and
    keeps firing every task on time; it keeps running and stops cleanly."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "tasks.toml").write_text(
        '[tasks.good]\nschedule = "@every 1s"\ncommand = "true"\n\n'
        '[tasks.notfound]\nschedule = "@every 1s"\ncommand = "no-such-command-xyz"\n\n'
        '[tasks.nocwd]\nschedule = "@every 1s"\ncommand = "true"\n'
        f'working_dir = "{tmp_path}/gone"\n'
    )
    serve = CfgServe(cronctl_exe, home, "--grace", "5")
    try:

        def enough():
            runs = serve.runs()
            by = {(r.task, r.status) for r in runs}
            counts = {key: sum(1 for r in runs if (r.task, r.status) == key) for key in by}
            return (
                counts.get(("good", "succeeded"), 0) >= 3
                and counts.get(("notfound", "failed"), 0) >= 2
                and counts.get(("nocwd", "error"), 0) >= 2
            )

        wait_for(enough, what="runs of good, notfound and nocwd")
        assert serve.proc.poll() is None, serve.log
        failed = [r for r in serve.runs("notfound") if r.status == "failed"]
        assert all(r.exit_code == 127 for r in failed)
        assert serve.stop() == 0, serve.log
        assert "Traceback" not in serve.log
    finally:
        serve.kill()


# ---------------------------------------------------------------------------------------------
# 17. A job that reads stdin

READER = 'read x; echo "got[$x] read=$?"; cat; echo "cat=$?"'


def test_s17_a_job_reading_stdin_gets_end_of_file_at_once(tasks_path, cronctl_exe):
    """Decided: a job's stdin is /dev/null, also under `run-now` whose own stdin is an open
    terminal or pipe that nobody writes to: `read` gets end-of-file at once, `cat` ends, the run
    succeeds well before its 20 s timeout, and nothing typed at the terminal is taken."""
    assert (
        cfg_run(cronctl_exe, "add", "reader", "@daily", READER, "--timeout", "20s").returncode == 0
    )
    proc = subprocess.Popen(
        [*cronctl_exe, "run-now", "reader"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=LIMIT)  # stdin stays open until the end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - started < 10
    assert proc.returncode == 0, err
    assert out.decode() == "got[] read=1\ncat=0\n"


def test_s17_under_serve_too(tmp_path, cronctl_exe):
    """Decided: the same under serve, whose own stdin here is a pipe held open: each scheduled
    run of the reader ends at once with `got[]` and `succeeded`."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "tasks.toml").write_text(
        f'[tasks.reader]\nschedule = "@every 1s"\ncommand = \'{READER}\'\ntimeout = "20s"\n'
    )
    read_end, write_end = os.pipe()
    serve = CfgServe(cronctl_exe, home, "--grace", "5", stdin=read_end)
    os.close(read_end)
    try:
        runs = wait_for(
            lambda: [r for r in serve.runs("reader") if r.status != "running"],
            what="a finished reader run",
        )
        assert runs[0].status == "succeeded", runs[0]
        logs = cfg_run(cronctl_exe, "logs", str(runs[0].id), env={"CRONCTL_HOME": str(home)})
        assert "got[] read=1" in logs.stdout and "cat=0" in logs.stdout
        assert serve.stop() == 0, serve.log
    finally:
        serve.kill()
        os.close(write_end)


def test_s16_run_now_of_an_unknown_task_is_one_error_line(cronctl_exe):
    """Decided: `run-now nosuch` is invalid input: exit 2, one error line with a hint."""
    assert_one_error(cfg_run(cronctl_exe, "run-now", "nosuch"), 2, "no task named 'nosuch'")


def test_h11_jobs_never_inherit_the_task_files_secret_variables(tasks_path, cronctl_exe):
    """Decided: the variables named by `password_env` ([defaults.smtp]) and by any task's
    `webhook_secret_env` are removed from every job's and `when` condition's environment, so a
    job that prints its environment cannot put them into the history. Other variables pass.
    Before: the job printed both secrets, and `logs` showed them."""
    tasks_path.parent.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(
        "[defaults.smtp]\n"
        'host = "127.0.0.1"\nuser = "me"\npassword_env = "H11_SMTP_PASS"\nstarttls = true\n\n'
        '[tasks.hook]\nschedule = "@daily"\ncommand = "true"\n'
        '[tasks.hook.notify]\nwebhook = "http://127.0.0.1:9/hook"\n'
        'webhook_secret_env = "H11_HOOK_KEY"\n\n'
        '[tasks.printer]\nschedule = "@daily"\ncommand = "env"\n'
        'when = "test -z \\"$H11_SMTP_PASS$H11_HOOK_KEY\\""\n'
    )
    secrets = {"H11_SMTP_PASS": "smtp-secret-1", "H11_HOOK_KEY": "hook-secret-2"}
    ran = cfg_run(cronctl_exe, "run-now", "printer", "--json", env={**secrets, "H11_KEEP": "x"})
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded", run  # the `when` condition saw no secret either
    assert "H11_KEEP=x" in run["stdout"]
    for value in secrets.values():
        assert value not in ran.stdout
        assert value not in cfg_run(cronctl_exe, "logs", "printer", "--last").stdout
