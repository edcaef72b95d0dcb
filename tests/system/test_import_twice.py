"""`cronctl import` of a crontab already imported (issue 14, item 10): the lines whose tasks the
file holds are reported, not added again as `-2` copies; and the notes never speak of a line
that was refused. Through the real command, as `crontab -l | cronctl import -` is used."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tomllib
from pathlib import Path

import pytest

from .conftest import DATA

CRONTAB = """\
MAILTO=ops@example.org
PATH=/usr/bin:/bin
# nightly backup
0 2 * * * restic backup
*/5 * * * * check-mail
0 2 * * * restic backup
61 * * * * bad-minute
"""


def run(
    cronctl_exe: list[str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cronctl_exe, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def tasks_in(path: Path) -> dict[str, dict[str, object]]:
    return tomllib.loads(path.read_text())["tasks"]


def test_c10_a_crontab_imported_twice_is_imported_once(cronctl_exe, tasks_path):
    first = run(cronctl_exe, "import", "-", input=CRONTAB)
    assert first.returncode == 1, first.stderr  # line 7 is not imported
    assert list(tasks_in(tasks_path)) == ["restic", "check-mail", "restic-2"]
    text = tasks_path.read_text()

    again = run(cronctl_exe, "import", "-", input=CRONTAB)
    assert again.returncode == 1  # still only for line 7
    assert tasks_path.read_text() == text
    for line in (
        "line 4 already imported as task 'restic'",
        "line 5 already imported as task 'check-mail'",
        "line 6 already imported as task 'restic-2'",
        "Nothing imported; 3 lines already in the task file; 1 line not imported.",
    ):
        assert line in again.stderr, again.stderr

    valid_only = "\n".join(CRONTAB.splitlines()[:-1]) + "\n"
    quiet = run(cronctl_exe, "import", "-", "--json", input=valid_only)
    assert quiet.returncode == 0, quiet.stderr
    data = json.loads(quiet.stdout)
    assert data["imported"] == [] and data["skipped"] == []
    assert data["already_present"] == [
        {"line": 4, "text": "0 2 * * * restic backup", "task": "restic"},
        {"line": 5, "text": "*/5 * * * * check-mail", "task": "check-mail"},
        {"line": 6, "text": "0 2 * * * restic backup", "task": "restic-2"},
    ]
    assert tasks_path.read_text() == text


@pytest.mark.parametrize(
    ("edit", "added"),
    [
        # What a user may change after importing does not make a line new ...
        ({"description": "off-site copy", "retries": 2, "enabled": False}, []),
        ({"notify": {"on": ["failure"], "command": "true"}}, []),
        # ... what runs, when, where or with what environment does.
        ({"schedule": "0 3 * * *"}, ["check-2"]),
        ({"command": "check --all"}, ["check-2"]),
        ({"timezone": "Asia/Tokyo"}, ["check-2"]),
        ({"env": {"PATH": "/opt/bin"}}, ["check-2"]),
        ({"working_dir": "/srv"}, ["check-2"]),
    ],
)
def test_c10_a_line_is_present_when_its_task_runs_the_same(cronctl_exe, tasks_path, edit, added):
    crontab = "TZ=UTC\nPATH=/usr/bin\n0 2 * * * check\n"
    assert run(cronctl_exe, "import", "-", input=crontab).returncode == 0
    table = tomllib.loads(tasks_path.read_text())
    table["tasks"]["check"].update(edit)
    tasks_path.write_text(_toml(table))
    again = run(cronctl_exe, "import", "-", "--json", input=crontab)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert [t["name"] for t in data["imported"]] == added
    assert len(data["already_present"]) == (0 if added else 1)


def test_c10_the_notes_never_speak_of_a_refused_line(cronctl_exe, tasks_path):
    """A system crontab's line of another user that cannot be imported: it is reported as not
    imported, and no note says that user's lines will run as you."""
    me = pwd.getpwuid(os.getuid()).pw_name
    other = "cronctl-test-nobody" if me != "cronctl-test-nobody" else "someone-else"
    crontab = f"0 1 * * * {me} ok\n61 1 * * * {other} refused\n"
    result = run(cronctl_exe, "import", "-", "--system", "--json", input=crontab)
    data = json.loads(result.stdout)
    assert [s["line"] for s in data["skipped"]] == [2]
    assert not any(other in note["message"] for note in data["notes"]), data["notes"]
    assert [t["name"] for t in data["imported"]] == ["ok"]
    both = f"0 1 * * * {other} other-ok\n61 1 * * * {other} refused\n"
    data = json.loads(run(cronctl_exe, "import", "-", "--system", "--json", input=both).stdout)
    assert any(other in note["message"] for note in data["notes"])  # it still says so


def test_c10_the_packaged_cron_d_files_imported_twice_add_nothing(cronctl_exe, tasks_path):
    for name in ("php", "sysstat", "e2scrub_all"):
        run(cronctl_exe, "import", str(DATA / "cron.d" / name))
    text = tasks_path.read_text()
    for name in ("php", "sysstat", "e2scrub_all"):
        again = run(cronctl_exe, "import", str(DATA / "cron.d" / name))
        assert again.returncode == 0 and "already imported as task" in again.stderr
    assert tasks_path.read_text() == text


def _toml(table: dict[str, object]) -> str:
    from cronctl import taskfile

    tasks = table["tasks"]
    assert isinstance(tasks, dict)
    return "\n".join(taskfile.render_task_table(name, body) for name, body in tasks.items())
