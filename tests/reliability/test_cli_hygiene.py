"""Fault scenarios 34-35 of reliability.md section 6: shell completion in a broken environment,
and output to a closed pipe, with NO_COLOR and piped output free of escape sequences."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.reliability.cfg_helpers import (
    LIMIT,
    Call,
    cfg_run,
    cfg_run_many,
    environment,
)
from tests.support import read_pty

COMPLETE_BASH = {
    "_CRONCTL_COMPLETE": "complete_bash",
    "COMP_WORDS": "cronctl run-now ",
    "COMP_CWORD": "2",
}
CORRUPT = {
    "truncated": b"[tasks.a",
    "byte-order-mark": b'\xef\xbb\xbf[tasks.a]\nschedule = "@daily"\ncommand = "true"\n',
    "invalid-utf8": b'[tasks.a]\nschedule = "@daily"\ncommand = "caf\xe9"\n',
    "garbage": bytes(range(256)),
}


def tree(path: Path) -> list[str]:
    """Everything under `path` (relative names), or ['<absent>']."""
    if not path.exists():
        return ["<absent>"]
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def complete(exe, env, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return cfg_run(exe, env={**COMPLETE_BASH, **env}, timeout=timeout)


def assert_no_candidates(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, (what, result.stderr)
    assert result.stderr == "", (what, result.stderr)
    assert result.stdout.split() == [], (what, result.stdout)


# ---------------------------------------------------------------------------------------------
# 34. Completion with a broken environment


def test_s34_completion_with_a_corrupt_task_file_offers_nothing_and_creates_nothing(
    tmp_path, cronctl_exe
):
    """Decided: a TAB with a corrupt task file (truncated, BOM, invalid UTF-8, binary) prints no
    candidates, exits 0, says nothing on stderr (it would land in the user's prompt), and
    creates no file: no database, no lock (the folder holds only the task file afterwards).
    zsh and fish answer the same way (zsh's `_files` fallback is Typer's protocol for "no
    candidates")."""
    for name, content in CORRUPT.items():
        home = tmp_path / name
        home.mkdir()
        (home / "tasks.toml").write_bytes(content)
        result = complete(cronctl_exe, {"CRONCTL_HOME": str(home)})
        assert_no_candidates(result, name)
        assert tree(home) == ["tasks.toml"], name
        for shell, extra in (("zsh", {}), ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"})):
            other = cfg_run(
                cronctl_exe,
                env={
                    "CRONCTL_HOME": str(home),
                    "_CRONCTL_COMPLETE": f"complete_{shell}",
                    "_TYPER_COMPLETE_ARGS": "cronctl run-now ",
                    **extra,
                },
                timeout=10,
            )
            assert other.returncode == 0 and other.stderr == "", (shell, name, other.stderr)
            assert "a" not in other.stdout.split(), (shell, name, other.stdout)
            assert tree(home) == ["tasks.toml"], (shell, name)


def test_s34_completion_without_home_or_with_a_read_only_home(tmp_path, cronctl_exe):
    """Decided: with HOME unset (and XDG folders pointing nowhere), with HOME unset and no XDG
    variables, and with a read-only HOME, a TAB offers nothing, exits 0, prints nothing on
    stderr and creates nothing: no config or state folder appears anywhere."""
    xdg = tmp_path / "xdg"
    unset_home = {"HOME": None, "CRONCTL_HOME": None, "CRONCTL_TASKS": None, "CRONCTL_DB": None}
    cases = {
        "no HOME, XDG elsewhere": {
            **unset_home,
            "XDG_CONFIG_HOME": str(xdg / "config"),
            "XDG_STATE_HOME": str(xdg / "state"),
            "XDG_DATA_HOME": str(xdg / "data"),
        },
    }
    for label, env in cases.items():
        assert_no_candidates(complete(cronctl_exe, env), label)
        assert tree(xdg) == ["<absent>"], label

    # No HOME and no XDG variables: platformdirs falls back to the password database's home.
    fallback = Path(os.path.expanduser("~" + _user())) / ".config" / "cronctl"
    existed = fallback.exists()
    bare = {**unset_home, "XDG_CONFIG_HOME": None, "XDG_STATE_HOME": None, "XDG_DATA_HOME": None}
    result = complete(cronctl_exe, bare)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert fallback.exists() == existed

    home = tmp_path / "readonly-home"
    home.mkdir()
    home.chmod(0o555)
    try:
        readonly = {**bare, "HOME": str(home)}
        assert_no_candidates(complete(cronctl_exe, readonly), "read-only home")
        assert tree(home) == []
    finally:
        home.chmod(0o755)

    absent = tmp_path / "never-created"
    assert_no_candidates(
        complete(cronctl_exe, {"CRONCTL_HOME": str(absent)}), "absent CRONCTL_HOME"
    )
    assert tree(absent) == ["<absent>"]


def test_s34_completion_never_hangs_on_a_task_file_that_is_not_a_file(tmp_path, cronctl_exe):
    """Decided: completion reads only a regular file. A task file that is a FIFO nobody writes
    to, or /dev/zero, used to hang the user's TAB (forever); now: no candidates at once."""
    fifo_home = tmp_path / "fifo"
    fifo_home.mkdir()
    os.mkfifo(fifo_home / "tasks.toml")
    assert_no_candidates(complete(cronctl_exe, {"CRONCTL_HOME": str(fifo_home)}), "FIFO")
    assert_no_candidates(complete(cronctl_exe, {"CRONCTL_TASKS": "/dev/zero"}), "/dev/zero")


def test_s34_completion_still_completes_a_good_file_without_creating_anything(
    tmp_path, cronctl_exe
):
    """Decided (the control case): with a valid file the names complete, and still nothing is
    created beside it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "tasks.toml").write_text(
        '[tasks.alpha]\nschedule = "@daily"\ncommand = "true"\n'
        '[tasks.beta]\nschedule = "@daily"\ncommand = "true"\n'
    )
    result = complete(cronctl_exe, {"CRONCTL_HOME": str(home)})
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.split() == ["alpha", "beta"]
    assert tree(home) == ["tasks.toml"]


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


# ---------------------------------------------------------------------------------------------
# 35. Output to a closed pipe; no escape sequences when piped or with NO_COLOR

CHATTY = "for i in $(seq 1 5000); do echo line $i; done; exit 3"


@pytest.fixture(scope="module")
def cfg_busy_home(tmp_path_factory) -> Path:
    """A home with 60 tasks (one with an escape sequence in its description), a chatty failing
    task and 3,000 runs: enough output to fill any pipe buffer."""
    from cronctl.store import HistoryStore

    home = tmp_path_factory.mktemp("busy")
    lines = []
    for i in range(60):
        lines.append(
            f'[tasks.t{i}]\nschedule = "H * * * *"\ncommand = "echo {i}"\ntimezone = "UTC"\n'
        )
    lines.append(
        '[tasks.chatty]\nschedule = "@daily"\ncommand = "' + CHATTY.replace('"', '\\"') + '"\n'
    )
    lines.append(
        '[tasks.esc]\nschedule = "@daily"\ncommand = "true"\ndescription = "\\u001b[31mred"\n'
    )
    (home / "tasks.toml").write_text("\n".join(lines))
    store = HistoryStore(str(home / "history.db"))
    now = datetime.now(UTC)
    try:
        for i in range(3000):
            started = now - timedelta(minutes=i)
            run_id = store.start_run(
                f"t{i % 60}", "schedule", started_at=started, scheduled_at=started
            )
            store.finish_run(
                run_id,
                status="succeeded" if i % 4 else "failed",
                finished_at=started + timedelta(seconds=2),
                duration_ms=2000,
                exit_code=0 if i % 4 else 1,
            )
    finally:
        store.close()
    return home


LONG_OUTPUT = [
    ["list"],
    ["list", "--json"],
    ["history", "--limit", "3000"],
    ["history", "--json", "--limit", "3000"],
    ["history", "--failed", "--limit", "3000"],
    ["show", "t1"],
    ["show", "t1", "--json"],
    ["explain", "* * * * *", "--count", "1000"],
    ["export", "--format", "crontab"],
    ["metrics"],
    ["check", "--json"],
    ["completion", "bash"],
    ["--help"],
    ["list", "--help"],
    ["--version"],
]


def _clean_stderr(stderr: str, what) -> None:
    for marker in ("Traceback", "BrokenPipeError", "Exception ignored", "Errno 32"):
        assert marker not in stderr, (what, stderr)


def test_s35_real_pipelines_into_head(cfg_busy_home, cronctl_exe):
    """Decided: `cronctl ... | head -1` and `| head -c 10` exit 0 (141, death by SIGPIPE, would
    be fine too) with nothing on stderr, however much output is left unread."""
    exe = " ".join(f"'{part}'" for part in cronctl_exe)
    for args in (
        ["list"],
        ["history", "--json", "--limit", "3000"],
        ["show", "t1"],
        ["explain", "'* * * * *'", "--count", "1000"],
        ["--help"],
    ):
        for reader in ("head -1", "head -c 10"):
            script = f"{exe} {' '.join(args)} | {reader} >/dev/null; echo ${{PIPESTATUS[0]}}"
            done = subprocess.run(
                ["bash", "-c", script],
                capture_output=True,
                text=True,
                env=environment({"CRONCTL_HOME": str(cfg_busy_home)}),
                timeout=LIMIT,
            )
            assert done.stdout.strip() in ("0", "141"), (args, reader, done.stdout, done.stderr)
            assert done.stderr == "", (args, reader, done.stderr)


def _closed_pipe_run(exe, args, home):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before cronctl writes a byte
    try:
        return subprocess.run(
            [*exe, *args],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=environment({"CRONCTL_HOME": str(home)}),
            timeout=LIMIT,
        )
    finally:
        os.close(write_end)


def test_s35_output_to_a_closed_pipe_is_not_an_error(cfg_busy_home, cronctl_exe):
    """Decided: when stdout's reader is gone before cronctl writes, every command ends with exit
    0 and a clean stderr: our commands, Rich output (whose own handler exits 1), and the help,
    version and usage text printed by Typer's Click (which also exits 1 on EPIPE). Before,
    `explain`, `--help` and `--version` exited 1."""
    for args in LONG_OUTPUT:
        done = _closed_pipe_run(cronctl_exe, args, cfg_busy_home)
        assert done.returncode == 0, (args, done.returncode, done.stderr)
        _clean_stderr(done.stderr.decode(), args)


def test_s35_run_now_into_a_closed_pipe_still_runs_and_records_the_job(
    tmp_path, cfg_busy_home, cronctl_exe
):
    """Decided: `cronctl run-now x | head -1`: the job is not cut short by the reader going away
    (its output still goes into the history in full); run-now exits with the job's own status
    (3 here) and the run is recorded `failed`, not left `running`. Before: exit 0 and the run
    stayed `running` forever."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "tasks.toml").write_text((cfg_busy_home / "tasks.toml").read_text())
    done = _closed_pipe_run(cronctl_exe, ["run-now", "chatty"], home)
    assert done.returncode == 3, done.stderr
    _clean_stderr(done.stderr.decode(), "run-now")

    run = json.loads(
        cfg_run(
            cronctl_exe, "logs", "chatty", "--last", "--json", env={"CRONCTL_HOME": str(home)}
        ).stdout
    )
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert run["stdout_bytes"] == sum(len(f"line {i}\n") for i in range(1, 5001))


PLAIN_COMMANDS = [
    ["list"],
    ["show", "esc"],
    ["history", "--limit", "20"],
    ["explain", "@daily"],
    ["check"],
    ["status"],
    ["--help"],
    ["show", "nosuch"],
    ["add", "t1", "@daily", "true"],
    ["logs", "1"],
]


def _pty_run(exe, args, env):
    """Run with stdout and stderr on a pseudo-terminal (what a user sees); return (code, bytes)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*exe, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    output = read_pty(leader, proc, LIMIT)
    return proc.returncode, output


def test_s35_piped_and_no_color_output_has_no_escape_sequences(cfg_busy_home, cronctl_exe):
    """Decided: piped output is plain text (no `\\x1b[` on stdout or stderr) whatever
    NO_COLOR says, and on a terminal NO_COLOR=1 (or --no-color) means no escape sequences at
    all -- no colour and no bold or dim either (Rich's no_color kept bold, so a table header still
    came out as `\\x1b[1m`). Without NO_COLOR the terminal does get styles (the control case)."""
    calls = [
        Call(args, env={"CRONCTL_HOME": str(cfg_busy_home), "NO_COLOR": no_color})
        for args in PLAIN_COMMANDS
        for no_color in (None, "1")
    ]
    for call, done in zip(calls, cfg_run_many(cronctl_exe, calls), strict=True):
        assert "\x1b[" not in done.stdout + done.stderr, (call, done.stdout[:300], done.stderr)
    terminal = environment(
        {"CRONCTL_HOME": str(cfg_busy_home), "COLUMNS": "160", "TERM": "xterm-256color"}
    )
    for args in PLAIN_COMMANDS:
        code, seen = _pty_run(cronctl_exe, args, {**terminal, "NO_COLOR": "1"})
        assert b"\x1b[" not in seen, (args, seen[:300])
    for args in PLAIN_COMMANDS[:4]:
        code, seen = _pty_run(
            cronctl_exe,
            ["--no-color", *args],
            {k: v for k, v in terminal.items() if k != "NO_COLOR"},
        )
        assert b"\x1b[" not in seen, (args, seen[:300])
    code, seen = _pty_run(
        cronctl_exe, ["show", "nosuch"], {k: v for k, v in terminal.items() if k != "NO_COLOR"}
    )
    assert code == 2 and b"\x1b[" in seen  # styles do reach a terminal without NO_COLOR


def test_h14_a_closed_pipe_keeps_the_exit_status_a_command_decided(
    tmp_path, cfg_busy_home, cronctl_exe
):
    """Decided: `cronctl status | head -1` while unhealthy exits 1, as `status` does unpiped
    (under `set -o pipefail` a script sees it); `check --json` of an invalid file exits 2. The
    reader going away silences the output, not the verdict. Before: both exited 0."""
    unhealthy = _closed_pipe_run(cronctl_exe, ["status"], cfg_busy_home)  # serve is not running
    assert unhealthy.returncode == 1, unhealthy.stderr
    _clean_stderr(unhealthy.stderr.decode(), "status")
    as_json = _closed_pipe_run(cronctl_exe, ["status", "--json"], cfg_busy_home)
    assert as_json.returncode == 1, as_json.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tasks.toml").write_text("[tasks.x\n")
    invalid = _closed_pipe_run(cronctl_exe, ["check", "--json"], broken)
    assert invalid.returncode == 2, invalid.stderr
    _clean_stderr(invalid.stderr.decode(), "check --json")
