"""status, prune, metrics and notify-test through the real Typer app (in-process), each test
with its own CRONCTL_HOME and a database built directly with HistoryStore."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta

import pytest

from cronctl.records import Output
from cronctl.store import HistoryStore
from tests.notify.servers import free_port, http_server

TASKS = """\
[tasks.backup]
schedule = "*/5 * * * *"
command = "restic backup"
"""


@pytest.fixture
def now():
    return datetime.now(UTC)


@pytest.fixture
def home(cronctl_home, tasks_path):
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(TASKS)
    return cronctl_home


@pytest.fixture
def db(home):
    with HistoryStore(home / "history.db") as store:
        yield store


def run(store, task, status, at, *, exit_code=None, stderr=b"", scheduled=None):
    run_id = store.start_run(
        task, "schedule" if scheduled else "manual", started_at=at, scheduled_at=scheduled
    )
    store.finish_run(
        run_id,
        status=status,
        finished_at=at + timedelta(seconds=1),
        duration_ms=1000,
        exit_code=exit_code,
        stderr=Output(stderr, len(stderr)),
    )
    return run_id


def serve_alive(store, now, *, beat_age=5):
    store.serve_started(pid=4242, hostname="box", version="0.1.0", now=now - timedelta(hours=3))
    store.heartbeat(now - timedelta(seconds=beat_age))


def status(cli, *args):
    result = cli("status", *args)
    return result, (json.loads(result.stdout) if "--json" in args else None)


def test_status_healthy_exits_0(cli, db, now):
    serve_alive(db, now)
    run(db, "backup", "succeeded", now - timedelta(minutes=3))
    result, data = status(cli, "--json")
    assert result.exit_code == 0, result.stdout
    assert data["healthy"] is True and data["problems"] == []
    assert (
        data["serve"]["running"] is True
        and data["serve"]["pid"] == 4242
        and data["serve"]["stale"] is False
    )
    assert 3 * 3600 - 5 < data["serve"]["uptime_seconds"] < 3 * 3600 + 60
    assert data["serve"]["heartbeat_at"].endswith("+00:00")
    text = cli("status")
    assert text.exit_code == 0
    assert "healthy" in text.stdout and "running (pid 4242 on box, up 3h" in text.stdout
    assert "failures in the last day: none" in text.stdout


def test_status_with_a_failure_in_the_last_hour_exits_1(cli, db, now):
    serve_alive(db, now)
    run_id = run(
        db,
        "backup",
        "failed",
        now - timedelta(minutes=20),
        exit_code=2,
        stderr=b"\x1b[31mrestic: repository is locked\x1b[0m\nmore\n",
    )
    result, data = status(cli, "--json")
    assert result.exit_code == 1
    assert data["healthy"] is False and data["problems"] == ["1 failed run in the last hour"]
    [failure] = data["failures_last_hour"]
    assert failure["id"] == run_id and failure["exit_code"] == 2 and failure["status"] == "failed"
    assert failure["stderr_first_line"] == "\\x1b[31mrestic: repository is locked\\x1b[0m"
    assert [f["id"] for f in data["failures_last_day"]] == [run_id]
    text = cli("status")
    assert text.exit_code == 1 and "UNHEALTHY" in text.stdout
    # One row a task (#14, item 7): task, last hour, last day, last failure, status, exit, error.
    row = next(line for line in text.stdout.splitlines() if line.startswith("backup\t"))
    assert row.split("\t")[1:3] == ["1", "1"] and row.split("\t")[4:6] == ["failed", "2"]
    assert "\x1b" not in text.stdout


def test_status_with_a_task_failing_twice_in_a_row_exits_1(cli, db, now):
    serve_alive(db, now)
    run(db, "backup", "failed", now - timedelta(hours=5), exit_code=1)
    run(db, "backup", "failed", now - timedelta(hours=3), exit_code=1)
    result, data = status(cli, "--json")
    assert result.exit_code == 1
    assert [(f["task"], f["consecutive_failures"]) for f in data["failing"]] == [("backup", 2)]
    assert data["failures_last_hour"] == []


def test_status_with_a_stale_serve_exits_1(cli, db, now):
    serve_alive(db, now, beat_age=120)
    result, data = status(cli, "--json")
    assert result.exit_code == 1
    assert data["serve"]["running"] is False and data["serve"]["stale"] is True
    assert data["serve"]["uptime_seconds"] is None
    text = cli("status")
    # Piped: the heartbeat's time, not "2m ago" (#14, item 4).
    assert "not running: stale heartbeat (last heartbeat at 20" in text.stdout


def test_status_without_serve_ever_running_exits_1(cli, home):
    result, data = status(cli, "--json")
    assert result.exit_code == 1
    assert data["serve"] == {
        "running": False,
        "pid": None,
        "hostname": None,
        "version": None,
        "started_at": None,
        "uptime_seconds": None,
        "heartbeat_at": None,
        "stopped_at": None,
        "stale": False,
        "tasks_loaded_at": None,
    }
    assert data["task_file"] == {"valid": True, "error": None}
    assert data["problems"] == ["serve has never run with this database"]


def test_status_with_an_overdue_task_exits_1(cli, db, now, tasks_path):
    serve_alive(db, now)
    long_ago = (now - timedelta(hours=4)).timestamp()
    os.utime(tasks_path, (long_ago, long_ago))
    slot = (now - timedelta(hours=1)).replace(second=0, microsecond=0)
    slot -= timedelta(minutes=slot.minute % 5)
    run(db, "backup", "succeeded", slot, scheduled=slot)
    result, data = status(cli, "--json")
    assert result.exit_code == 1
    [overdue] = data["overdue"]
    assert overdue["task"] == "backup"
    assert datetime.fromisoformat(overdue["slot"]) == slot + timedelta(minutes=5)
    text = cli("status")
    assert "overdue:" in text.stdout and "1 task overdue: backup" in text.stdout


def test_status_help_defines_unhealthy(cli):
    result = cli("status", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Unhealthy (exit 1) means any of" in text and "more than 60s old" in text


# ----------------------------------------------------------------------------------- prune


def test_prune_dry_run_then_for_real(cli, db, now):
    for hours in range(5):
        run(db, "backup", "succeeded", now - timedelta(hours=hours))
    run(db, "backup", "succeeded", now - timedelta(days=91))
    result = cli("prune", "--keep-runs", "3", "--dry-run", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "dry_run": True,
        "keep_days": 90,
        "default_keep_runs": 3,
        "removed": {"backup": 3},
        "total": 3,
    }
    assert len(db.runs(limit=None)) == 6
    result = cli("prune", "--keep-runs", "3")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["task\tremoved", "backup\t3"]
    assert "Removed 3 runs" in result.stderr
    assert len(db.runs(limit=None)) == 3
    # --keep-days 0 keeps no day: every finished run goes (#14, item 8; it was refused).
    result = cli("prune", "--keep-days", "0")
    assert result.exit_code == 0 and "Removed 3 runs (every finished run" in result.stderr
    assert db.runs(limit=None) == []
    assert cli("prune", "--keep-days", "-1").exit_code == 2


# --------------------------------------------------------------------------------- metrics


LINE = re.compile(
    r'^(# (HELP|TYPE) .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+)$'
)


def test_metrics_prints_prometheus_text(cli, db, now):
    serve_alive(db, now)
    run(db, "backup", "failed", now - timedelta(minutes=3), exit_code=1)
    result = cli("metrics")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(LINE.match(line) for line in lines), [line for line in lines if not LINE.match(line)]
    assert "cronctl_serve_up 1" in lines
    assert 'cronctl_task_failures_total{task="backup"} 1' in lines
    assert "# TYPE cronctl_task_failures_total counter" in lines


def test_metrics_to_a_file_atomically(cli, db, tmp_path):
    target = tmp_path / "textfile" / "cronctl.prom"
    target.parent.mkdir()
    result = cli("metrics", "--output", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert "cronctl_serve_up 0" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(target.parent) == ["cronctl.prom"]


# ----------------------------------------------------------------------------- notify-test


def test_notify_test_reports_each_channel(cli, home, tasks_path):
    with http_server() as web:
        dead = free_port()
        tasks_path.write_text(
            TASKS
            + f'\n[tasks.backup.notify]\nwebhook = "{web.url}/hook"\nhealthchecks = "http://127.0.0.1:{dead}/hc"\n'
        )
        result = cli("notify-test", "backup", "--json")
        assert result.exit_code == 1
        data = json.loads(result.stdout)
        assert data["task"] == "backup" and data["ok"] is False
        assert [(c["channel"], c["ok"]) for c in data["channels"]] == [
            ("webhook", True),
            ("healthchecks", False),
        ]
        assert f"cannot reach 127.0.0.1:{dead}" in data["channels"][1]["detail"]
        assert json.loads(web.requests[0].body)["event"] == "test"

        tasks_path.write_text(
            TASKS + f'\n[tasks.backup.notify]\nwebhook = "{web.url}/hook"\nformat = "slack"\n'
        )
        result = cli("notify-test", "backup")
        assert result.exit_code == 0
        assert result.stdout.splitlines() == ["channel\tresult\tdetail", "webhook\tok\tHTTP 200"]
        assert json.loads(web.requests[1].body)["text"].startswith("cronctl test: backup failed")


def test_notify_test_without_channels_or_task(cli, home):
    result = cli("notify-test", "backup")
    assert result.exit_code == 2 and "task 'backup' has no notification channel" in result.stderr
    result = cli("notify-test", "bakcup")
    assert result.exit_code == 2 and "did you mean 'backup'?" in result.stderr
