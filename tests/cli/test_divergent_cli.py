"""`check` and `status` about task files that differ between hosts, through the real `cronctl`
(README.md#task-files-that-differ), where one host is all there is or the shared history cannot
be reached: on a SQLite file nothing is compared and nothing said; an unreachable database is a
note line, and `check` judges the file by itself as always (the scenario with several real
serves is tests/fleet/test_divergent.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

TASKS = '[tasks.a]\nschedule = "@daily"\ncommand = "true"\n'
BROKEN = TASKS + '[tasks.b]\nschedule = "@daily"\ncommand = "true"\ntimeout = "soon"\n'


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(exe: list[str], home: Path, *args: str, db: str | None = None):
    env = {**os.environ, "CRONCTL_HOME": str(home), "CRONCTL_HOST": "host-a"}
    if db is not None:
        env["CRONCTL_DB"] = db
    return subprocess.run(
        [*exe, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_on_a_sqlite_history_check_and_status_compare_nothing(cronctl_exe, cronctl_home):
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(TASKS)
    checked = run(cronctl_exe, cronctl_home, "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines() == [f"{cronctl_home / 'tasks.toml'}: 1 task, valid."]
    shape = json.loads(run(cronctl_exe, cronctl_home, "check", "--json").stdout)
    assert (shape["compared_with"], shape["divergent"], shape["comparison_note"]) == (
        None,
        [],
        None,
    )
    status = json.loads(run(cronctl_exe, cronctl_home, "status", "--json").stdout)
    assert status["divergent"] == []


@pytest.mark.parametrize(
    ("text", "code", "summary"), [(TASKS, 0, "1 task, valid."), (BROKEN, 2, "invalid")]
)
def test_an_unreachable_shared_history_is_a_note_and_check_judges_the_file_alone(
    cronctl_exe, cronctl_home, text, code, summary
):
    pytest.importorskip("psycopg")
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(text)
    url = f"postgresql://cron@127.0.0.1:{closed_port()}/cronctl"
    checked = run(cronctl_exe, cronctl_home, "check", db=url)
    assert checked.returncode == code, checked.stderr
    lines = checked.stderr.splitlines()
    note = (
        f"note: not compared with the other hosts: cannot reach the history database at"
        f" 127.0.0.1:{url.split(':')[2].split('/')[0]}"
    )
    assert [line for line in lines if line.startswith("note:")][0].startswith(note), lines
    assert summary in lines[-1] and "Traceback" not in checked.stderr
    shape = json.loads(run(cronctl_exe, cronctl_home, "check", "--json", db=url).stdout)
    assert shape["compared_with"] is None and shape["divergent"] == []
    assert shape["comparison_note"].startswith("not compared with the other hosts: cannot reach")
    assert shape["valid"] is (code == 0)


def test_a_task_file_that_is_not_toml_is_its_one_error_and_compared_with_nothing(
    cronctl_exe, cronctl_home, pg_url
):
    """Found by use: `check` of an unreadable file warned that its tasks were "not in this
    task file, but the serve of host-b runs it": no task can be read from it, so it is not
    compared (a valid file is, against the same history)."""
    from datetime import UTC, datetime

    from cronctl.model.digest import task_digests
    from cronctl.model.task import make_task
    from cronctl.store.postgres import PostgresStore

    with PostgresStore(pg_url) as other:  # host-b's live serve, which runs `a`
        now = datetime.now(UTC)
        other.serve_started(pid=1, hostname="host-b", version="test", now=now)
        other.record_definitions(
            task_digests([make_task("a", {"schedule": "@daily", "command": "other"})]), now=now
        )
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks_file = cronctl_home / "tasks.toml"
    tasks_file.write_text(TASKS)
    compared = run(cronctl_exe, cronctl_home, "check", db=pg_url)
    assert "defined differently by the serve of host-b" in compared.stderr, compared.stderr
    tasks_file.write_text("[tasks.a\n" + TASKS)
    checked = run(cronctl_exe, cronctl_home, "check", db=pg_url)
    assert checked.returncode == 2
    assert checked.stderr.splitlines() == [
        f"error: {tasks_file}:1: invalid TOML: Expected ']' at the end of a table declaration"
    ], checked.stderr
    shape = json.loads(run(cronctl_exe, cronctl_home, "check", "--json", db=pg_url).stdout)
    assert (shape["compared_with"], shape["divergent"], shape["warnings"]) == (None, [], [])
