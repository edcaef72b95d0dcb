"""The history store on real SQLite files (and :memory:)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from cronctl.errors import StoreError, UnknownRunError
from cronctl.records import FAILURE_STATUSES, Output, Status
from cronctl.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore, SlotTakenError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store():
    with HistoryStore(":memory:") as opened:
        yield opened


def add_run(
    store, task="a", status="succeeded", at=T0, duration=100, trigger="manual", scheduled=None
):
    run_id = store.start_run(task, trigger, started_at=at, scheduled_at=scheduled)
    store.finish_run(
        run_id,
        status=status,
        finished_at=at + timedelta(milliseconds=duration),
        duration_ms=duration,
    )
    return run_id


def test_run_round_trip_with_output(store):
    run_id = store.start_run("a", "schedule", started_at=T0, scheduled_at=T0, pid=123)
    assert store.get_run(run_id).status == Status.RUNNING
    store.finish_run(
        run_id,
        status="failed",
        finished_at=T0 + timedelta(seconds=2),
        duration_ms=2000,
        exit_code=3,
        stdout=Output(b"out\xff", 4),
        stderr=Output(b"err", 200_000, 70_000),
        reason="exit status 3",
    )
    run = store.get_run(run_id)
    assert (run.status, run.exit_code, run.duration_ms, run.pid) == ("failed", 3, 2000, 123)
    assert run.scheduled_at == T0 and run.finished_at == T0 + timedelta(seconds=2)
    assert run.stdout == Output(b"out\xff", 4, 0)
    assert run.stderr.dropped_bytes == 70_000 and run.stderr.total_bytes == 200_000
    assert run.reason == "exit status 3"


def test_a_slot_runs_once(store):
    store.start_run("a", "schedule", started_at=T0, scheduled_at=T0)
    with pytest.raises(SlotTakenError):
        store.start_run("a", "catch-up", started_at=T0, scheduled_at=T0)
    # Retries of the slot, other tasks and manual runs are not slot claims.
    store.start_run("a", "retry", attempt=2, started_at=T0, scheduled_at=T0)
    store.start_run("b", "schedule", started_at=T0, scheduled_at=T0)
    store.start_run("a", "manual", started_at=T0)
    assert store.latest_slot("a") == T0


def test_runs_filters_newest_first(store):
    for minute, status in enumerate(["succeeded", "failed", "timed_out", "skipped", "succeeded"]):
        add_run(store, status=status, at=T0 + timedelta(minutes=minute))
    add_run(store, task="b", status="failed", at=T0 + timedelta(minutes=10))
    assert [r.status for r in store.runs("a")] == [
        "succeeded",
        "skipped",
        "timed_out",
        "failed",
        "succeeded",
    ]
    assert [r.task for r in store.runs(statuses=FAILURE_STATUSES)] == ["b", "a", "a"]
    since = store.runs(since=T0 + timedelta(minutes=3))
    assert [r.status for r in since] == ["failed", "succeeded", "skipped"]
    assert len(store.runs(limit=2)) == 2


def test_task_stats(store):
    for minute, (status, ms) in enumerate(
        [("succeeded", 100), ("failed", 300), ("succeeded", 200), ("skipped", None)]
    ):
        run_id = store.start_run("a", "schedule", started_at=T0 + timedelta(minutes=minute))
        store.finish_run(run_id, status=status, finished_at=T0, duration_ms=ms)
    stats = store.task_stats("a")
    assert stats.recent == ("skipped", "succeeded", "failed", "succeeded")
    assert stats.success_rate == pytest.approx(2 / 3)
    assert stats.p50_ms == 200 and stats.p95_ms == 300
    assert stats.last == store.runs("a", limit=1)[0] and stats.last.status == "skipped"
    add_run(store, status="failed", at=T0 + timedelta(minutes=9))
    assert store.last_success_at("a") == T0 + timedelta(minutes=2)


def test_unknown_run(store):
    with pytest.raises(UnknownRunError):
        store.get_run(99)


def test_prune_by_count_and_age(store):
    for day in range(10):
        add_run(store, at=T0 - timedelta(days=100 - day))
    for minute in range(20):
        add_run(store, at=T0 + timedelta(minutes=minute))
    running = store.start_run("a", "schedule", started_at=T0 - timedelta(days=200))
    add_run(store, task="b", at=T0)
    preview = store.prune(
        now=T0 + timedelta(hours=1), keep_days=90, default_keep_runs=15, dry_run=True
    )
    assert preview == {"a": 15}
    assert len(store.runs("a", limit=None)) == 31
    removed = store.prune(
        now=T0 + timedelta(hours=1), keep_days=90, keep_runs={"a": 15}, default_keep_runs=1000
    )
    assert removed == {"a": 15}
    remaining = store.runs("a", limit=None)
    assert len(remaining) == 16 and running in {r.id for r in remaining}
    assert len(store.runs("b")) == 1


def test_heartbeat(store):
    assert store.serve_state() is None
    store.serve_started(pid=42, hostname="h", version="0.1", now=T0)
    store.heartbeat(T0 + timedelta(seconds=30))
    state = store.serve_state()
    assert (state.pid, state.heartbeat_at, state.stopped_at) == (
        42,
        T0 + timedelta(seconds=30),
        None,
    )
    store.serve_stopped(T0 + timedelta(minutes=1))
    assert store.serve_state().stopped_at == T0 + timedelta(minutes=1)


def test_file_is_private_wal_and_versioned(tmp_path):
    path = tmp_path / "state" / "history.db"
    with HistoryStore(path) as opened:
        add_run(opened)
        assert opened.schema_version == SCHEMA_VERSION
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    raw.close()


def test_migration_from_schema_1_keeps_runs(tmp_path):
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.execute(
        "INSERT INTO runs (task, trigger, started_at, status) VALUES ('legacy', 'manual', 1, 'succeeded')"
    )
    old.close()
    with HistoryStore(path) as opened:
        assert opened.schema_version == SCHEMA_VERSION
        [run] = opened.runs("legacy")
        assert run.status == "succeeded" and run.notify_error is None
        opened.serve_started(pid=1, hostname="h", version="v", now=T0)  # table from schema 2
        opened.record_notify_error(run.id, "webhook: connection refused")
        assert opened.get_run(run.id).notify_error == "webhook: connection refused"


def test_migration_from_schema_2_swaps_in_the_covering_task_index(tmp_path):
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        old.executescript(script)
    old.execute("PRAGMA user_version = 2")
    old.execute(
        "INSERT INTO runs (task, trigger, started_at, duration_ms, status)"
        " VALUES ('a', 'manual', 1, 7, 'failed')"
    )
    old.close()
    with HistoryStore(path) as opened:
        indexes = {
            r[0] for r in opened._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert "runs_task_recent" in indexes and "runs_task_started" not in indexes
        stats = opened.task_stats("a")
        assert (stats.recent, stats.p50_ms, stats.last.status) == (("failed",), 7, "failed")


def test_task_stats_reads_the_index_only(store):
    """The health of each task in `list` reads no table rows but its newest run's."""
    add_run(store)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.task_stats("a")
    store._db.set_trace_callback(None)
    plans = [
        " / ".join(r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in statements
    ]
    assert plans[0] == "SEARCH runs USING COVERING INDEX runs_task_recent (task=?)"
    assert all("runs_task_recent" in plan for plan in plans), plans


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "history.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer cronctl"):
        HistoryStore(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not sqlite, it is a note to self\n" * 100)
    with pytest.raises(StoreError, match="is not a cronctl history database"):
        HistoryStore(path)
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_locked_database_waits_then_says_so(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1], isolation_level=None);"
            " db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with HistoryStore(path, timeout=0.3) as opened:
            began = time.monotonic()
            with pytest.raises(StoreError, match="locked by another process"):
                opened.start_run("a", "manual", started_at=T0)
            assert time.monotonic() - began >= 0.25
    finally:
        holder.kill()
        holder.wait()


def test_read_only_database_is_a_clear_error(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    uri = f"file:{path}?mode=ro"
    opened = HistoryStore(path)
    opened._db.close()
    opened._db = sqlite3.connect(uri, uri=True, isolation_level=None)
    with pytest.raises(StoreError, match="read-only"):
        opened.start_run("a", "manual", started_at=T0)
    opened.close()


def test_two_processes_racing_the_migration_migrate_once(tmp_path):
    path = tmp_path / "history.db"
    code = "import sys; from cronctl.store import HistoryStore; HistoryStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    with HistoryStore(path) as opened:
        assert opened.schema_version == SCHEMA_VERSION
