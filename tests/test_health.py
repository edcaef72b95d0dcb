"""The data behind `status` and `prune` (cronctl.health), on real SQLite files."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronctl import health, metrics, pruning, taskfile
from cronctl.records import Output, ServeState
from cronctl.store import HistoryStore

NOW = datetime(2026, 3, 1, 12, 2, 30, tzinfo=UTC)

TASKS = """\
[tasks.backup]
schedule = "*/5 * * * *"
command = "restic backup"

[tasks.report]
schedule = "0 9 * * *"
command = "make report"
retries = 1

[tasks.boot]
schedule = "@reboot"
command = "true"

[tasks.off]
schedule = "* * * * *"
command = "true"
enabled = false
"""


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened


def load_tasks(tmp_path: Path, text: str = TASKS, changed: datetime = NOW - timedelta(days=2)):
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    os.utime(path, (changed.timestamp(), changed.timestamp()))
    return taskfile.load(path, default_zone="UTC")


def add(
    store,
    task,
    status,
    at,
    *,
    attempt=1,
    trigger="schedule",
    exit_code=None,
    stderr=b"",
    scheduled=True,
):
    run_id = store.start_run(
        task, trigger, started_at=at, attempt=attempt, scheduled_at=at if scheduled else None
    )
    if status != "running":
        store.finish_run(
            run_id,
            status=status,
            finished_at=at + timedelta(seconds=1),
            duration_ms=1000,
            exit_code=exit_code,
            stderr=Output(stderr, len(stderr)),
        )
    return run_id


def healthy_state(store):
    store.serve_started(pid=4242, hostname="box", version="0.1.0", now=NOW - timedelta(hours=3))
    store.heartbeat(NOW - timedelta(seconds=5))
    add(store, "backup", "succeeded", NOW - timedelta(minutes=2, seconds=30))  # the 12:00 slot
    add(store, "report", "succeeded", NOW.replace(hour=9, minute=0, second=0))


# ------------------------------------------------------------------------------------ serve


def test_serve_states():
    assert health.serve_health(None, NOW) == health.ServeHealth(
        known=False, running=False, stale=False
    )


def test_a_healthy_machine(store, tmp_path):
    healthy_state(store)
    report = health.health(load_tasks(tmp_path), store, NOW)
    assert report.healthy, report.problems
    assert (
        report.serve.running
        and report.serve.pid == 4242
        and report.serve.uptime_seconds == 3 * 3600
    )
    data = health.health_json(report)
    assert (
        data["healthy"] is True
        and data["serve"]["running"] is True
        and data["serve"]["stale"] is False
    )
    assert set(data) >= {
        "healthy",
        "serve",
        "failures_last_hour",
        "failures_last_day",
        "overdue",
        "missed",
        "failing",
    }


def test_h1_an_invalid_task_file_is_a_problem_and_says_what_serve_runs(store, tmp_path):
    """The file's error and the version serve keeps running (its last load, to the second);
    the failures come from the history alone; a serve from before load times were recorded
    (none in its row) is said to run "the last valid version"."""
    healthy_state(store)
    store.tasks_loaded(NOW - timedelta(minutes=10, seconds=3))
    add(store, "backup", "failed", NOW - timedelta(minutes=5), exit_code=1)
    invalid = health.InvalidTaskFile(tmp_path / "tasks.toml", "tasks.toml:4: invalid TOML: x")
    report = health.health(invalid, store, NOW)
    assert report.problems == [
        "the task file is invalid: tasks.toml:4: invalid TOML: x",
        "serve keeps running the version of the task file it loaded at 2026-03-01T11:52:27+00:00",
        "1 failed run in the last hour",
    ]
    assert (report.overdue, report.failing) == ([], [])
    data = health.health_json(report)
    assert data["task_file"] == {"valid": False, "error": "tasks.toml:4: invalid TOML: x"}
    assert data["serve"]["tasks_loaded_at"] == "2026-03-01T11:52:27+00:00"
    old = health.ServeHealth(known=True, running=True, stale=False, tasks_loaded_at=None)
    assert health._invalid_file_problems(invalid, old)[1] == (
        "serve keeps running the last valid version of the task file it loaded"
    )


def test_a_stale_heartbeat_means_serve_is_not_running(store, tmp_path):
    healthy_state(store)
    store.heartbeat(NOW - timedelta(seconds=61))
    report = health.health(load_tasks(tmp_path), store, NOW)
    assert not report.healthy and report.serve.stale and not report.serve.running
    assert report.problems == ["serve's last heartbeat is 1m 1s old: it is not running"]


def test_a_serve_whose_process_is_gone_is_not_running(store, tmp_path):
    """h13: a fresh heartbeat but no process (kill -9 records nothing): not running, now."""
    healthy_state(store)
    probed: list[int] = []

    def gone(state):
        probed.append(state.pid)
        return False

    report = health.health(load_tasks(tmp_path), store, NOW, gone)
    assert probed == [4242]
    assert not report.serve.running and report.serve.gone and not report.healthy
    assert report.problems == [
        "serve (pid 4242) is not running: it ended without recording a stop (killed?)"
    ]
    assert "cronctl_serve_up 0" in metrics.metrics(load_tasks(tmp_path), store, NOW, gone)
    unsure = health.health(load_tasks(tmp_path), store, NOW, lambda state: None)
    assert unsure.serve.running and unsure.healthy  # no answer: the heartbeat decides


def test_the_local_probe_asks_only_about_a_serve_of_this_host(store):
    import socket

    healthy_state(store)
    state = store.serve_state()
    assert health.local_serve_probe(state) is None  # ran on "box"
    store.serve_started(pid=os.getpid(), hostname=socket.gethostname(), version="v", now=NOW)
    assert health.local_serve_probe(store.serve_state()) is True
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    store.serve_started(pid=child, hostname=socket.gethostname(), version="v", now=NOW)
    assert health.local_serve_probe(store.serve_state()) is False


def test_a_stopped_serve(store, tmp_path):
    healthy_state(store)
    store.serve_stopped(NOW - timedelta(seconds=10))
    report = health.health(load_tasks(tmp_path), store, NOW)
    assert (
        not report.serve.running
        and report.serve.stale
        and report.problems == ["serve is not running (it stopped at 2026-03-01T12:02:20+00:00)"]
    )


# --------------------------------------------------------------------------------- failures


def test_failures_of_the_last_hour_and_day_with_the_first_line_of_stderr(store, tmp_path):
    healthy_state(store)
    add(
        store,
        "report",
        "failed",
        NOW - timedelta(hours=5),
        exit_code=2,
        stderr=b"\n  make: *** no rule\nmore\n",
        trigger="manual",
        scheduled=False,
    )
    add(store, "gone", "timed_out", NOW - timedelta(minutes=10), trigger="manual", scheduled=False)
    report = health.health(load_tasks(tmp_path), store, NOW)
    assert [f.run.task for f in report.failures_last_hour] == ["gone"]
    assert [f.run.task for f in report.failures_last_day] == ["gone", "report"]
    assert report.failures_last_day[1].stderr_first_line == "make: *** no rule"
    # #14, item 7: "gone" is no longer in the task file: listed apart, not counted.
    assert report.problems == []
    assert [(g.task, g.last_hour, g.last_day, g.counted) for g in report.failure_groups] == [
        ("report", 0, 1, True),
        ("gone", 1, 1, False),
    ]
    assert report.failure_groups[0].last.stderr_first_line == "make: *** no rule"


def test_the_last_hour_starts_at_the_millisecond_as_a_since_query_does(store, tmp_path):
    """The history keeps times to the millisecond: the hour's first millisecond is in it,
    even when `now` has microseconds, exactly as `runs(since=...)` counts it."""
    now = NOW + timedelta(microseconds=400)
    hour_ago = NOW - timedelta(hours=1)
    for at in (hour_ago, hour_ago - timedelta(milliseconds=1)):
        add(store, "gone", "failed", at, trigger="manual", scheduled=False)
    report = health.health(load_tasks(tmp_path), store, now)
    assert [f.run.started_at for f in report.failures_last_hour] == [hour_ago]
    assert [r.started_at for r in store.runs(since=now - timedelta(hours=1))] == [hour_ago]
    assert len(report.failures_last_day) == 2


def test_failing_counts_runs_in_a_row_with_retries_once(store, tmp_path):
    healthy_state(store)
    day = NOW.replace(hour=9, minute=0, second=0)
    with HistoryStore(store.path) as other:
        other.delete_task_runs("report")
    add(store, "report", "succeeded", day - timedelta(days=2))
    add(store, "report", "failed", day - timedelta(days=1), exit_code=1)
    add(
        store,
        "report",
        "failed",
        day - timedelta(days=1, minutes=-1),
        attempt=2,
        trigger="retry",
        exit_code=1,
    )
    add(
        store,
        "report",
        "failed",
        day - timedelta(minutes=-1),
        trigger="manual",
        scheduled=False,
        exit_code=1,
    )
    add(store, "report", "skipped", day - timedelta(minutes=-2), trigger="manual", scheduled=False)
    report = health.health(load_tasks(tmp_path), store, NOW)
    [failing] = report.failing
    assert (failing.task, failing.consecutive) == ("report", 2)
    assert not report.healthy and report.problems == ["1 task failing repeatedly: report"]


def test_one_failure_is_not_failing(store, tmp_path):
    healthy_state(store)
    add(
        store,
        "backup",
        "failed",
        NOW - timedelta(hours=2),
        exit_code=1,
        trigger="manual",
        scheduled=False,
    )
    report = health.health(load_tasks(tmp_path), store, NOW)
    assert report.failing == [] and report.healthy


def test_missed_runs_are_shown_but_not_unhealthy(store, tmp_path):
    healthy_state(store)
    for minutes in (30, 35, 40):
        slot = NOW - timedelta(hours=4, minutes=minutes)
        store.start_run(
            "backup",
            "schedule",
            started_at=NOW - timedelta(hours=3),
            scheduled_at=slot,
            status="missed",
        )
    report = health.health(load_tasks(tmp_path), store, NOW)
    [missed] = report.missed
    assert (missed.task, missed.count, missed.latest_slot) == (
        "backup",
        3,
        NOW - timedelta(hours=4, minutes=30),
    )
    assert report.healthy


# ---------------------------------------------------------------------------------- overdue


def test_a_slot_that_passed_without_a_run_is_overdue(store, tmp_path):
    store.serve_started(pid=4242, hostname="box", version="0.1.0", now=NOW - timedelta(hours=3))
    store.heartbeat(NOW)
    add(store, "backup", "succeeded", datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    add(store, "report", "succeeded", NOW.replace(hour=9, minute=0, second=0))
    report = health.health(load_tasks(tmp_path), store, NOW)
    [overdue] = report.overdue
    assert overdue.task == "backup" and overdue.slot == datetime(2026, 3, 1, 11, 5, tzinfo=UTC)
    assert overdue.late_seconds == 57.5 * 60
    assert not report.healthy and report.problems == ["1 task overdue: backup"]


def test_not_overdue_within_a_minute_or_while_running_or_after_an_edit(store, tmp_path):
    store.serve_started(pid=1, hostname="box", version="0.1.0", now=NOW - timedelta(hours=3))
    store.heartbeat(NOW)
    add(store, "backup", "succeeded", datetime(2026, 3, 1, 11, 55, tzinfo=UTC))
    add(store, "report", "succeeded", NOW.replace(hour=9, minute=0, second=0))
    # the 12:00 slot is 2m30s past: overdue
    assert [o.task for o in health.health(load_tasks(tmp_path), store, NOW).overdue] == ["backup"]
    # ... not 50 s after it
    assert (
        health.health(load_tasks(tmp_path), store, NOW.replace(minute=0, second=50)).overdue == []
    )
    # ... nor while a run of the task is in progress (queued behind it)
    run_id = add(
        store, "backup", "running", NOW - timedelta(minutes=4), trigger="manual", scheduled=False
    )
    assert health.health(load_tasks(tmp_path), store, NOW).overdue == []
    store.finish_run(run_id, status="succeeded", finished_at=NOW)
    # ... nor when the task file changed after the slot (a task added or enabled then)
    assert (
        health.health(load_tasks(tmp_path, changed=NOW - timedelta(minutes=1)), store, NOW).overdue
        == []
    )


def test_a_new_task_is_due_from_serve_start_or_the_file_change(store, tmp_path):
    store.serve_started(pid=1, hostname="box", version="0.1.0", now=NOW - timedelta(minutes=30))
    store.heartbeat(NOW)
    report = health.health(load_tasks(tmp_path), store, NOW)
    assert [o.task for o in report.overdue] == [
        "backup"
    ]  # disabled, @reboot and a daily task not yet due
    assert report.overdue[0].slot == NOW.replace(minute=35, second=0) - timedelta(hours=1)


# ---------------------------------------------------------------------------------- queries


def test_every_status_and_metrics_query_uses_an_index(store, tmp_path):
    healthy_state(store)
    for day in range(30):
        add(
            store,
            "backup",
            "failed" if day % 3 else "succeeded",
            NOW - timedelta(days=day, hours=1),
            exit_code=1,
        )
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    tasks = load_tasks(tmp_path)
    health.health(tasks, store, NOW)
    metrics.metrics(tasks, store, NOW)
    store._db.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) > 10
    for sql in selects:
        plan = " / ".join(row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql))
        for step in plan.split(" / "):
            if step.startswith("SCAN"):
                # index-only scans (counting a task's runs) are fine, and so is the walk of
                # the task names a bulk read is given (json_each); table scans are not
                assert (
                    "COVERING INDEX" in step
                    or "INDEX runs_failures" in step
                    or step.startswith("SCAN names VIRTUAL TABLE")
                ), (sql, plan)


# ------------------------------------------------------------------------------------ prune


def test_prune_per_task_limits_and_dry_run(store, tmp_path):
    tasks = load_tasks(
        tmp_path,
        TASKS.replace('command = "restic backup"', 'command = "restic backup"\nkeep_runs = 3'),
    )
    for i in range(6):
        add(store, "backup", "succeeded", NOW - timedelta(hours=i))
        add(store, "report", "succeeded", NOW - timedelta(hours=i))
    add(store, "report", "succeeded", NOW - timedelta(days=100))
    dry = pruning.prune(tasks, store, NOW, dry_run=True)
    assert (
        dry.removed == {"backup": 3, "report": 1}
        and dry.dry_run
        and len(store.runs(limit=None)) == 13
    )
    done = pruning.prune(tasks, store, NOW)
    assert done.removed == {"backup": 3, "report": 1} and len(store.runs(limit=None)) == 9
    assert pruning.prune(tasks, store, NOW, keep_runs=2).removed == {"backup": 1, "report": 4}
    assert pruning.prune_json(done) == {
        "dry_run": False,
        "keep_days": 90,
        "default_keep_runs": 1000,
        "removed": {"backup": 3, "report": 1},
        "total": 4,
    }


# ------------------------------------------------------------ the other hosts' serves (issue 17)


def _other(age: float, lease: float | None, dead_by: str | None = None) -> health.ServeHealth:
    state = ServeState(
        pid=7,
        hostname="web2",
        version="1",
        started_at=NOW - timedelta(hours=1),
        heartbeat_at=NOW - timedelta(seconds=age),
        stopped_at=None,
        lease_seconds=lease,
        declared_dead_at=NOW if dead_by else None,
        declared_dead_by=dead_by,
    )
    return health.serve_health(state, NOW)


@pytest.mark.parametrize(
    ("age", "lease", "dead_by", "problem"),
    [
        (1, 3, None, None),  # beating
        (4.9, 3, None, None),  # past its 3 s lease but within LATE_FLOOR (5 s): a loaded host
        (19, 30, None, None),  # lease 30: a beat every 10 s, late after two missing (20 s)
        (21, 30, None, "serve on web2: its last heartbeat is 21s old, late (lease 30 s)"),
        (31, 30, None, "serve on web2: its last heartbeat is 31s old, past its lease of 30 s"),
        (6, 3, None, "serve on web2: its last heartbeat is 6s old, past its lease of 3 s"),
        (29, 300, None, None),  # lease 300: a beat every 15 s, late after 30 s
        (31, 300, None, "serve on web2: its last heartbeat is 31s old, late (lease 300 s)"),
        (61, None, None, "serve on web2: its last heartbeat is 1m 1s old"),  # before schema 8
        (40, 30, "web1", "serve on web2 was declared dead by web1 at 2026-03-01T12:02:30+00:00"
         " (no heartbeat for 40s)"),
    ],
)  # fmt: skip
def test_another_hosts_serve_late_past_its_lease_or_declared_dead(age, lease, dead_by, problem):
    mine = health.serve_health(
        ServeState(7, "web1", "1", NOW - timedelta(hours=1), NOW, None, lease_seconds=30), NOW
    )
    other = _other(age, lease, dead_by)
    other = health._judged_late(other)
    found = health._fleet_problems([mine, other], mine)
    assert found == ([problem] if problem else [])
    assert other.late is (problem is not None and dead_by is None and lease is not None)
