"""`cronctl rename OLD NEW` through the real command: the file and the history, the refusals,
and a real process killed between its steps (cronctl/renaming.py, docs/reliability.md)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from cronctl.renaming import KILL_SWITCH
from cronctl.store import HistoryStore
from tests.store.support import T0, add_run

TASKS = """\
# nightly things
[tasks.backup]  # the backup
schedule = "@daily"
command = "restic backup"

[tasks.backup.env]
HOME = "/srv"

[tasks.report]
schedule = "@daily"
command = "mail"
after = ["backup"]  # report after the backup
"""

RENAMED = (
    TASKS.replace("[tasks.backup]", "[tasks.backup-home]")
    .replace("[tasks.backup.env]", "[tasks.backup-home.env]")
    .replace('after = ["backup"]', 'after = ["backup-home"]')
)


@pytest.fixture
def home(cronctl_home, tasks_path):
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(TASKS)
    with HistoryStore(cronctl_home / "history.db") as store:
        for _ in range(3):
            add_run(store, "backup", "failed")
        add_run(store, "report")
        store.acknowledge("backup", at=T0, by="alice")
    return cronctl_home


def names_in_history(home):
    with HistoryStore(home / "history.db") as store:
        return sorted(store.task_names()), set(store.acks())


def run(exe, *args, env=None):
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_rename_renames_the_file_and_the_history(cli, home, tasks_path):
    result = cli("rename", "backup", "backup-home")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == (
        "Renamed 'backup' to 'backup-home': the task file and 3 runs of history;"
        " `after` of report updated."
    )
    assert tasks_path.read_text() == RENAMED
    assert names_in_history(home) == (["backup-home", "report"], {"backup-home"})
    shown = cli("history", "backup-home")
    assert shown.exit_code == 0 and shown.stdout.count("failed") == 3


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (("backup", "report"), "a task named 'report' already exists", "choose another name"),
        (("backpu", "x"), "no task named 'backpu'", "did you mean 'backup'?"),
        (("backup", "no good"), "invalid task name 'no good'", "a name is 1-63"),
        (("backup", "backup"), "the task is already named 'backup'", None),
        (
            ("report", "gone"),
            "the history already has 2 rows of a task named 'gone'",
            "history gone",
        ),
    ],
)
def test_refusals_exit_2_and_change_nothing(cli, home, tasks_path, args, error, hint):
    with HistoryStore(home / "history.db") as store:
        add_run(store, "gone")
        add_run(store, "gone")
    before = names_in_history(home)
    result = cli("rename", *args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and error in lines[0]
    assert len(lines) == (2 if hint else 1) and (hint is None or hint in lines[1])
    assert tasks_path.read_text() == TASKS
    assert names_in_history(home) == before


def test_rename_refuses_text_it_cannot_edit_alone(cli, home, tasks_path):
    """An inline table that holds the name in another string than `after`: the check of the
    result refuses it, and nothing is written."""
    text = '[tasks]\nold = { schedule = "@daily", command = "echo old" }\n'
    text += 'other = { schedule = "@daily", command = "old", after = ["old"] }\n'
    tasks_path.write_text(text)
    result = cli("rename", "old", "new")
    assert result.exit_code == 2 and "cronctl edit" in result.stderr
    assert tasks_path.read_text() == text


@pytest.mark.parametrize("step", ["journal", "file"])
def test_killed_between_steps_the_file_and_history_agree_after_any_command(
    cronctl_exe, home, tasks_path, step
):
    killed = run(cronctl_exe, "rename", "backup", "backup-home", env={KILL_SWITCH: step})
    assert killed.returncode == -signal.SIGKILL
    renamed = step == "file"  # killed after the file was replaced, before the history
    assert ("[tasks.backup-home]" in tasks_path.read_text()) is renamed
    # Any command opens the store, which settles the rename by what the file says.
    listed = run(cronctl_exe, "history")
    assert listed.returncode == 0, listed.stderr
    expected = "backup-home" if renamed else "backup"
    assert names_in_history(home) == (sorted([expected, "report"]), {expected})
    assert tasks_path.read_text() == (RENAMED if renamed else TASKS)
    # And the rename can be done (again) to the end.
    again = run(cronctl_exe, "rename", "backup", "backup-home")
    assert again.returncode == (0 if not renamed else 2), again.stderr
    assert names_in_history(home)[0] == ["backup-home", "report"]


def test_killed_after_the_file_serve_settles_it_at_start(cronctl_exe, home, tasks_path):
    """serve opens the store too: the same settling."""
    run(cronctl_exe, "rename", "backup", "backup-home", env={KILL_SWITCH: "file"})
    from cronctl.store import open_for_serve

    opened, _ = open_for_serve(home / "history.db", now=T0, tasks_file=tasks_path)
    with opened:
        assert sorted(opened.task_names()) == ["backup-home", "report"]
