"""Hardening h9 and h10 of reliability.md: state files are cronctl's own.

Only a SQLite file (or nothing, or an empty file) is ever used as the history or moved aside as
damaged: the task file, a text file, a folder, a FIFO or a device given as `--db` is refused
untouched (exit 2, serve 78). serve's lock is never opened through a symbolic link
(README.md#files).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .storage_support import (
    assert_one_error,
    run_cli,
    task_text,
    write_tasks,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG_OUTPUT = "head -c 300000 /dev/zero | tr '\\\\0' x"  # 300 kB: the run keeps 128 KiB of it


def test_h10_serve_refuses_a_planted_lock_link_and_leaves_its_target(cronctl_exe, cronctl_home):
    """Decided: `serve.lock` is opened without following a symbolic link. A link planted there
    (to a file of the user's) makes serve exit 1 with one error line, and the file it points at
    is untouched. Before: serve wrote its pid into the target and emptied it on exit."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(task_text("a"))
    precious = cronctl_home.parent / "precious.txt"
    precious.write_text("keep me\n")
    (cronctl_home / "serve.lock").symlink_to(precious)
    result = run_cli(cronctl_exe, "serve", timeout=30)
    assert result.returncode == 1, result.stderr
    assert_one_error(result, "serve.lock", "symbolic link")
    assert precious.read_text() == "keep me\n"


# ------------------------------------------------------------ h9 what is no history at all


def _plant(kind: str, folder: Path) -> tuple[list[str], Path]:
    """Create what `kind` names; return the global options that point cronctl at it."""
    tasks = folder / "tasks.toml"
    tasks.write_text(task_text("a", "@daily", "true"))
    if kind == "--db tasks.toml":
        return ["--tasks-file", str(tasks), "--db", str(tasks)], tasks
    if kind == "--db of an empty task file":
        tasks.write_text("")
        return ["--tasks-file", str(tasks), "--db", str(tasks)], tasks
    target = folder / "notes.txt"
    if kind == "--db notes.txt":
        target.write_text("milk, eggs\n")
    elif kind == "--db random bytes":
        target.write_bytes(b"#" + os.urandom(8192))
    elif kind == "--db a folder":
        target.mkdir()
    elif kind == "--db a FIFO":
        os.mkfifo(target)
    else:
        raise ValueError(kind)
    return ["--tasks-file", str(tasks), "--db", str(target)], target


def _files(folder: Path) -> dict[str, bytes | None]:
    return {
        p.name: (p.read_bytes() if p.is_file() and not p.is_fifo() else None)
        for p in folder.iterdir()
        if p.name != "serve.lock"  # serve's lock beside the database path: its own file
    }


NOT_A_HISTORY = [
    "--db tasks.toml",
    "--db of an empty task file",
    "--db notes.txt",
    "--db random bytes",
    "--db a folder",
    "--db a FIFO",
]


@pytest.mark.parametrize("kind", NOT_A_HISTORY)
def test_h9_a_db_path_that_is_no_history_is_refused_and_untouched(kind, cronctl_exe, tmp_path):
    """Decided: only a regular file that starts with SQLite's header (or is empty, or does not
    exist) is ever used as the history, and only such a file is moved aside as damaged. The
    task file (resolved), any other file, a folder or a FIFO is refused with one error line
    naming it: exit 2 for commands, 78 for serve (EX_CONFIG: systemd does not restart it);
    nothing in the folder changes. Before: `--db tasks.toml serve` and `--db notes.txt serve`
    renamed the file to *.corrupt-<time> and created a database in its place."""
    folder = tmp_path / "place"
    folder.mkdir()
    options, path = _plant(kind, folder)
    before = _files(folder)
    commands = [(["history"], 2), (["serve"], 78)]
    if "empty" not in kind:  # an empty task file has no task `a` to run
        commands.append((["run-now", "a"], 2))
    for command, code in commands:
        result = run_cli(cronctl_exe, *options, *command, timeout=30)
        assert result.returncode == code, (command, result.stderr)
        assert_one_error(result, str(path))
        assert _files(folder) == before, command
    assert not list(folder.glob("*.corrupt-*"))


def test_h9_a_device_as_db_is_refused(cronctl_exe, cronctl_home):
    """Decided: a device (`--db /dev/null`) is refused with exit 2 by the commands."""
    write_tasks(cronctl_home, task_text("a", "@daily", "true"))
    result = run_cli(cronctl_exe, "--db", "/dev/null", "history")
    assert result.returncode == 2, result.stderr
    assert_one_error(result, "/dev/null", "a device")
