"""`cronctl edit` never loses what the user typed (h5): the real script, a real editor (a small
script that writes the texts a test chose, one per opening), prompts answered on a terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.cfg_helpers import LIMIT, environment

GOOD = '[tasks.a]\nschedule = "@daily"\ncommand = "true"\n'
RENAMED = GOOD.replace("[tasks.a]", "[tasks.b]")
INVALID_TOML = GOOD + "[tasks.broken\n"
SHAPE = GOOD + 'notify = "failure"\n'  # a string where a table belongs
DEEP = GOOD + "deep = " + "[" * 500 + "]" * 500 + "\n"  # made the checker raise RecursionError


@dataclass
class Edit:
    code: int
    stdout: str
    stderr: str
    kept: Path | None  # the file the output names as holding the edit
    left: list[str]  # what the scratch folder holds afterwards


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "tasks.toml").write_text(GOOD)
    return home


def run_edit(
    exe, home: Path, texts: list[str], *, answers: str | None = None, editor_status: int = 0
) -> Edit:
    """Run `cronctl edit`; the editor writes texts[i] at its i-th opening (then exits with
    `editor_status`). With `answers`, stdin is a terminal that has them typed in advance."""
    work = home.parent
    scratch_dir = work / "scratch"
    scratch_dir.mkdir(exist_ok=True)
    for number, text in enumerate(texts):
        (work / f"text{number}").write_text(text)
    (work / "count").write_text("0")
    editor = work / "editor.sh"
    editor.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{work}/count")\n'
        f'cp "{work}/text$n" "$1"\n'
        f'echo $((n + 1)) > "{work}/count"\n'
        f"exit {editor_status}\n"
    )
    editor.chmod(0o755)
    env = environment(
        {
            "CRONCTL_HOME": str(home),
            "EDITOR": str(editor),
            "VISUAL": None,
            "TMPDIR": str(scratch_dir),
        }
    )
    if answers is None:
        done = subprocess.run(
            [*exe, "edit"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=LIMIT,
            text=True,
        )
    else:
        leader, follower = pty.openpty()
        try:
            os.write(leader, answers.encode())
            done = subprocess.run(
                [*exe, "edit"],
                stdin=follower,
                capture_output=True,
                env=env,
                timeout=LIMIT,
                text=True,
            )
        finally:
            os.close(follower)
            os.close(leader)
    found = re.search(r"your edit is kept in (\S+)", done.stderr)
    return Edit(
        done.returncode,
        done.stdout,
        done.stderr,
        Path(found.group(1)) if found else None,
        sorted(p.name for p in scratch_dir.iterdir()),
    )


def assert_kept(edit: Edit, text: str, home: Path, code: int = 2) -> None:
    what = (edit.code, edit.stdout, edit.stderr)
    assert edit.code == code and "Traceback" not in edit.stderr, what
    assert edit.kept is not None and edit.kept.read_text() == text, what
    assert edit.left == [edit.kept.name], what
    assert (home / "tasks.toml").read_text() == GOOD, "the task file changed"


# (case, editor texts, typed answers or None for no terminal, editor status, a fragment of the
# error)
KEPT = [
    ("invalid, no terminal", [INVALID_TOML], None, 0, "invalid TOML"),
    ("invalid, no to edit again", [INVALID_TOML], "n\n", 0, "invalid TOML"),
    ("invalid twice, yes then no", [INVALID_TOML, SHAPE], "y\nn\n", 0, "notify"),
    ("a shape of value", [SHAPE], None, 0, "notify"),
    ("nesting the checker tripped on", [DEEP], None, 0, "tasks.toml"),
    ("the editor fails after writing", [RENAMED], None, 1, "exited with status 1"),
]


@pytest.mark.parametrize(
    ("texts", "answers", "status", "fragment"),
    [case[1:] for case in KEPT],
    ids=[case[0] for case in KEPT],
)
def test_h5_an_edit_that_is_not_saved_is_kept_and_its_path_printed(
    home, cronctl_exe, texts, answers, status, fragment
):
    """Decided: as `crontab -e` does, an edit that is not saved (invalid and given up, with or
    without a terminal; a shape of value that made the checker crash; the editor exiting
    non-zero) stays in its scratch file, and the last error line says `your edit is kept in
    PATH`; the task file is untouched, exit 2. Before: the scratch file was deleted (the deep
    nesting: a traceback, exit 1)."""
    edit = run_edit(cronctl_exe, home, texts, answers=answers, editor_status=status)
    assert_kept(edit, texts[-1], home)
    assert fragment in edit.stderr, edit.stderr
    last = edit.stderr.rstrip("\n").splitlines()[-1]  # after a prompt at a terminal, on its line
    assert re.search(r"(^|: ?)error: .*; your edit is kept in ", last), edit.stderr
    edit.kept.unlink()


def test_h5_nothing_typed_leaves_nothing_behind(home, cronctl_exe):
    """Decided: an edit that saves, or that changed nothing (even when the editor then failed),
    leaves no scratch file. (The control of the test above: it passed before the fix too, and
    guards against keeping files that hold nothing typed.)"""
    unchanged = run_edit(cronctl_exe, home, [GOOD], editor_status=1)
    assert unchanged.code == 2 and unchanged.kept is None and unchanged.left == []
    saved = run_edit(cronctl_exe, home, [INVALID_TOML, GOOD + "# more\n"], answers="y\n")
    assert saved.code == 0 and saved.left == [], saved.stderr
    assert (home / "tasks.toml").read_text() == GOOD + "# more\n"


def test_h5_renaming_a_task_with_history_says_where_its_runs_stay(home, cronctl_exe):
    """Decided: an edit that removes or renames a task with runs in the history says so before
    saving, one warning line a task (`task 'a' has 1 run in the history; they stay under the
    name 'a'`). As `remove` keeps the history of a task it removes, the history stays; without a
    terminal the edit is saved (as `remove` never asks); at a terminal `Save?` is asked, and a
    "no" (then "no" to editing again) keeps the edit aside like any edit not saved. A task
    without history goes without a word. Before: saved silently."""
    ran = subprocess.run(
        [*cronctl_exe, "run-now", "a"],
        env=environment({"CRONCTL_HOME": str(home)}),
        capture_output=True,
        timeout=LIMIT,
    )
    assert ran.returncode == 0, ran.stderr
    warning = "warning: task 'a' has 1 run in the history; they stay under the name 'a'"

    refused = run_edit(cronctl_exe, home, [RENAMED], answers="n\nn\n")
    assert_kept(refused, RENAMED, home)
    assert warning in refused.stderr.splitlines(), refused.stderr
    assert "Save?" in refused.stderr
    refused.kept.unlink()

    saved = run_edit(cronctl_exe, home, [RENAMED])
    assert saved.code == 0 and saved.left == [], saved.stderr
    assert saved.stderr.splitlines()[0] == warning, saved.stderr
    assert (home / "tasks.toml").read_text() == RENAMED

    quiet = run_edit(cronctl_exe, home, [GOOD])  # b, without history, goes: nothing said
    assert quiet.code == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_h5_a_yes_to_saving_a_rename_at_a_terminal_saves(home, cronctl_exe):
    subprocess.run(
        [*cronctl_exe, "run-now", "a"],
        env=environment({"CRONCTL_HOME": str(home)}),
        capture_output=True,
        timeout=LIMIT,
    )
    saved = run_edit(cronctl_exe, home, [RENAMED], answers="y\n")
    assert saved.code == 0 and saved.left == [], saved.stderr
    assert "task 'a' has 1 run in the history" in saved.stderr and "Save?" in saved.stderr
    assert (home / "tasks.toml").read_text() == RENAMED
    # b has no history: removing it at a terminal asks nothing (no answer is typed)
    quiet = run_edit(cronctl_exe, home, [GOOD], answers="")
    assert quiet.code == 0 and quiet.stderr.splitlines() == [f"Saved {home}/tasks.toml."], quiet
