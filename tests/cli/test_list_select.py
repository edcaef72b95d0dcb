"""`cronctl list PATTERN... --limit N` through the real console script (issue 18, item 3): a
person asks for the rows they want, and never waits for 100,000 they did not ask for."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

NAMES = ["backup-home", "backup-db", "db-vacuum", "report", "report.weekly", "Backup-old"]


def run(exe, *args):
    return subprocess.run(
        [*exe, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture
def listed(cronctl_exe, cronctl_home):
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(
        "".join(
            f'[tasks."{name}"]\nschedule = "0 3 * * *"\ncommand = "true"\ntimezone = "UTC"\n\n'
            for name in NAMES
        )
    )

    def names(*args: str) -> tuple[list[str], int, str]:
        result = run(cronctl_exe, "list", *args)
        lines = result.stdout.splitlines()
        assert not lines or lines[0].startswith("name\t"), result.stdout
        return [line.split("\t")[0] for line in lines[1:]], result.returncode, result.stderr

    return names


@pytest.mark.parametrize(
    ("args", "expected", "note"),
    [
        ((), NAMES, ""),
        (("backup-*",), ["backup-home", "backup-db"], ""),  # case matters, as names do
        (("*db*",), ["backup-db", "db-vacuum"], ""),
        (("report",), ["report"], ""),  # a name is a pattern that matches itself
        (("report*",), ["report", "report.weekly"], ""),
        (("db-?acuum", "report"), ["db-vacuum", "report"], ""),  # the file's order
        (("[bB]ackup-*",), ["backup-home", "backup-db", "Backup-old"], ""),
        (("nothing-*",), [], "No task matches 'nothing-*'."),
        (
            ("--limit", "2"),
            ["backup-home", "backup-db"],
            "note: 4 more tasks not shown (--limit 2).",
        ),
        (("backup-*", "--limit", "1"), ["backup-home"], "note: 1 more task not shown (--limit 1)."),
        (("backup-*", "--limit", "5"), ["backup-home", "backup-db"], ""),
    ],
)
def test_list_selects_by_pattern_and_limit(listed, args, expected, note):
    names, code, stderr = listed(*args)
    assert (names, code) == (expected, 0), stderr
    assert stderr.strip() == note


def test_a_name_that_is_no_task_is_an_error_with_the_nearest(listed):
    names, code, stderr = listed("reprot")
    assert (names, code) == ([], 2)
    assert stderr.splitlines() == ["error: no task named 'reprot'", "hint: did you mean 'report'?"]


@pytest.mark.parametrize(("args", "limit"), [((), "0"), ((), "-1"), ((), "x")])
def test_a_limit_below_one_is_a_usage_error(cronctl_exe, cronctl_home, args, limit):
    result = run(cronctl_exe, "list", *args, "--limit", limit)
    assert result.returncode == 2
    assert "--limit" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_keeps_its_shape_and_the_note_stays_on_stderr(cronctl_exe, listed, cronctl_home):
    result = run(cronctl_exe, "list", "--json", "--limit", "1", "report*")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert [task["name"] for task in data] == ["report"]
    assert set(data[0]) >= {"name", "schedule", "summary", "next_run", "enabled"}
    assert result.stderr.strip() == "note: 1 more task not shown (--limit 1)."
    nothing = run(cronctl_exe, "list", "--json", "zzz*")
    assert (json.loads(nothing.stdout), nothing.returncode) == ([], 0)
