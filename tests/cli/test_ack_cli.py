"""`cronctl ack` through the real Typer app (in-process), with status and metrics read after it:
acknowledgement changes health, never history (cronctl/acks.py)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from cronctl.store import HistoryStore
from tests.cli.test_health_cli import now, run, serve_alive

__all__ = ["now"]  # the fixture, imported for pytest

TASKS = """\
[tasks.backup]
schedule = "@daily"
command = "restic backup"

[tasks.report]
schedule = "@daily"
command = "mail"
"""


@pytest.fixture
def db(cronctl_home, tasks_path, now):
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(TASKS)
    with HistoryStore(cronctl_home / "history.db") as store:
        serve_alive(store, now)
        run(store, "report", "succeeded", now - timedelta(minutes=30))
        yield store


def failing_backup(db, now, count=2):
    for minutes in range(count, 0, -1):
        run(db, "backup", "failed", now - timedelta(minutes=10 * minutes), exit_code=1)


def status_json(cli):
    result = cli("status", "--json")
    return result.exit_code, json.loads(result.stdout)


def failure_counters(cli):
    lines = cli("metrics").stdout.splitlines()
    return [line for line in lines if line.startswith('cronctl_task_failures_total{task="backup"')]


def test_ack_makes_status_healthy_and_says_so_while_metrics_keep_counting(cli, db, now):
    failing_backup(db, now)
    code, data = status_json(cli)
    assert code == 1 and data["problems"] == [
        "2 failed runs in the last hour",
        "1 task failing repeatedly: backup",
    ]
    counters = failure_counters(cli)
    assert counters == ['cronctl_task_failures_total{task="backup"} 2']

    acked = cli("ack", "backup", "--note", "disk full, ticket 42", env={"USER": "alice"})
    assert acked.exit_code == 0, acked.stderr
    assert acked.stderr.strip() == (
        "Acknowledged 'backup': 2 failures in the last day and failing 2 runs in a row;"
        " status counts its failures again from its next one."
    )

    code, data = status_json(cli)
    assert code == 0 and data["healthy"] is True and data["problems"] == []
    [group] = data["failures_by_task"]
    assert group["counted"] is False
    assert group["ignored_because"].startswith("acknowledged by ack at ")
    assert group["acknowledged_by"] == "alice"
    assert group["acknowledged_note"] == "disk full, ticket 42"
    assert group["acknowledged_at"] is not None
    [failing] = data["failing"]
    assert failing["acknowledged_at"] == group["acknowledged_at"]

    text = cli("status")
    assert text.exit_code == 0
    assert "acknowledged failures (not counted):" in text.stdout
    assert "  backup: acknowledged by ack at " in text.stdout
    lines = text.stdout.splitlines()
    said = lines.index(next(x for x in lines if x.startswith("  backup: acknowledged by ack at ")))
    assert lines[said].endswith("+00:00 (alice)")  # piped: ISO 8601 to the second
    assert lines[said + 1] == "    disk full, ticket 42"
    assert "\tacknowledged 20" in text.stdout  # the table's why cell: when
    assert "failing repeatedly:" not in text.stdout

    assert failure_counters(cli) == counters  # the history is unchanged


def test_a_failure_after_the_ack_makes_the_task_unhealthy_again(cli, db, now):
    failing_backup(db, now)
    assert cli("ack", "backup").exit_code == 0
    assert status_json(cli)[0] == 0
    run(db, "backup", "failed", now + timedelta(seconds=5), exit_code=1)  # ends after the ack
    code, data = status_json(cli)
    assert code == 1
    # Only the new failure counts; the streak goes on (3 in a row).
    assert data["problems"] == [
        "1 failed run in the last hour",
        "1 task failing repeatedly: backup",
    ]
    assert data["failures_by_task"][0]["counted"] is True
    assert data["failures_by_task"][0]["acknowledged_at"] is None
    assert data["failing"][0]["consecutive_failures"] == 3
    assert failure_counters(cli) == ['cronctl_task_failures_total{task="backup"} 3']


def test_ack_of_a_task_without_failure_says_so_and_stores_nothing(cli, db, now):
    result = cli("ack", "report")
    assert result.exit_code == 0
    assert result.stderr.strip() == "'report' has no failure to acknowledge."
    assert db.acks() == {}
    shown = cli("ack", "report", "--json")
    assert json.loads(shown.stdout) == [
        {
            "task": "report",
            "acknowledged": False,
            "failures_last_day": 0,
            "failing_streak": 0,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "acknowledged_note": None,
        }
    ]


def test_ack_all_acknowledges_every_task_with_a_current_failure(cli, db, now):
    failing_backup(db, now, count=1)
    result = cli("ack", "--all", "--json", env={"USER": "bob"})
    assert result.exit_code == 0
    [outcome] = json.loads(result.stdout)
    assert outcome["task"] == "backup" and outcome["acknowledged"] is True
    assert outcome["acknowledged_by"] == "bob"
    assert set(db.acks()) == {"backup"}
    again = cli("ack", "--all")
    assert again.exit_code == 0 and "No task has a failure to acknowledge." in again.stderr


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (("backpu",), "error: no task named 'backpu'", "hint: did you mean 'backup'?"),
        ((), "error: name the tasks to acknowledge, or give --all", "hint: cronctl ack NAME..."),
        (("backup", "--note", "x" * 501), "error: the note is 501 characters long", None),
    ],
)
def test_ack_refusals_exit_2_and_store_nothing(cli, db, now, args, error, hint):
    failing_backup(db, now)
    result = cli("ack", *args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(error) and lines[1:] == ([hint] if hint else [])
    assert db.acks() == {}


def test_ack_does_not_cover_an_overdue_task(cli, db, now, tasks_path):
    # backup alone: `report` (@daily) would be overdue too just after midnight.
    tasks_path.write_text('[tasks.backup]\nschedule = "*/5 * * * *"\ncommand = "restic backup"\n')
    old = (now - timedelta(hours=2)).timestamp()
    os.utime(tasks_path, (old, old))
    run(db, "backup", "failed", now - timedelta(minutes=40), exit_code=1)
    assert cli("ack", "backup").exit_code == 0
    code, data = status_json(cli)
    assert code == 1 and data["problems"] == ["1 task overdue: backup"]
