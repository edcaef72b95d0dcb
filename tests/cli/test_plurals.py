"""Counts read right (issue 14, item 11): `1 task`, `1 run`, `1 warning`, and `show`'s success
rate names the runs it is of ("of 8 runs" while there are fewer than 50). Through the real
command."""

from __future__ import annotations

import os
import subprocess

import pytest


def cronctl(exe: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exe, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.parametrize(
    ("extra", "summary"),
    [
        ([], ": 1 task, valid."),
        (["--jitter", "2m"], ": 1 task, valid, 1 warning."),
    ],
)
def test_c11_check_counts_one_task_and_one_warning(cronctl_exe, extra, summary):
    assert cronctl(cronctl_exe, "add", "only", "@every 1m", "true", *extra).returncode == 0
    checked = cronctl(cronctl_exe, "check")
    assert checked.returncode == 0 and checked.stderr.rstrip().endswith(summary), checked.stderr


@pytest.mark.parametrize(
    ("results", "success"),
    [
        ("", "-"),
        ("s", "100% of 1 run"),
        ("sssfsfss", "75% of 8 runs"),
    ],
)
def test_c11_show_names_the_runs_its_success_rate_is_of(cronctl_exe, tmp_path, results, success):
    """A task that fails while a flag file exists, run with `run-now` once per letter (s:
    succeeds, f: fails)."""
    flag = tmp_path / "fail"
    cronctl(cronctl_exe, "add", "job", "@daily", f"test ! -e {flag}")
    for result in results:
        if result == "f":
            flag.touch()
        cronctl(cronctl_exe, "run-now", "job")
        flag.unlink(missing_ok=True)
    shown = cronctl(cronctl_exe, "show", "job").stdout
    lines = {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip()
        for line in shown.splitlines()
        if line.strip() and not line.startswith(" ") and len(line.split(None, 1)) == 2
    }
    assert lines["success"] == success, shown


def test_c11_logs_counts_one_byte(cronctl_exe, tmp_path):
    """`logs` heads each stream with its size: `(1 byte)`, not `(1 bytes)`."""
    assert cronctl(cronctl_exe, "add", "one", "@daily", "printf x; printf yz >&2").returncode == 0
    cronctl(cronctl_exe, "run-now", "one")
    logs = cronctl(cronctl_exe, "logs", "one", "--last")
    assert "--- stdout (1 byte) ---" in logs.stdout + logs.stderr, logs
    assert "--- stderr (2 bytes) ---" in logs.stdout + logs.stderr, logs
