"""The schema and its migrations (cronctl/store/schema.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from cronctl.errors import StoreError
from cronctl.store import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, HistoryStore
from cronctl.store.schema import is_ours, statements

from .support import T0, schema_version


def test_migration_from_schema_1_keeps_runs(tmp_path):
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.execute(
        "INSERT INTO runs (task, trigger, started_at, status)"
        " VALUES ('legacy', 'manual', 1, 'succeeded')"
    )
    old.close()
    with HistoryStore(path) as opened:
        assert schema_version(path) == SCHEMA_VERSION
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


def test_h1_migration_from_schema_3_adds_when_serve_loaded_its_tasks(tmp_path, monkeypatch):
    """A serve row written before load times were recorded reads back with none; the next
    start and reload record them (schema 8: the row is host h's, and so is this store)."""
    monkeypatch.setenv("CRONCTL_HOST", "h")
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:3]:
        old.executescript(script)
    old.execute("PRAGMA user_version = 3")
    old.execute("INSERT INTO serve_state VALUES (1, 7, 'h', '0.9', 1000, 2000, NULL)")
    old.close()
    with HistoryStore(path) as opened:
        assert schema_version(path) == SCHEMA_VERSION
        state = opened.serve_state()
        assert (state.pid, state.version, state.tasks_loaded_at) == (7, "0.9", None)
        opened.tasks_loaded(T0)
        assert opened.serve_state().tasks_loaded_at == T0


def test_migration_from_schema_6_indexes_the_missed_runs(tmp_path):
    """Issue 18: schema 7 adds runs_missed and runs_failed_recent (partial covering indexes of
    the runs recorded `missed` and of the failures), built on a file of schema 6 with its runs,
    acks and serve row kept; `status`'s missed and failure counts then read the indexes, and
    are the same as before."""
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:6]:
        old.executescript(script)
    old.execute("PRAGMA user_version = 6")
    start = int(T0.timestamp() * 1000)
    for number, (task, status) in enumerate(
        [("a", "missed"), ("a", "succeeded"), ("b", "missed"), ("a", "missed"), ("c", "failed")]
    ):
        at = start + 60_000 * number
        old.execute(
            "INSERT INTO runs (task, trigger, scheduled_at, started_at, finished_at, status)"
            " VALUES (?, 'schedule', ?, ?, ?, ?)",
            (task, at, at, at, status),
        )
    old.execute("INSERT INTO acks VALUES ('c', ?, 'bob', NULL)", (start,))
    old.execute("INSERT INTO serve_state VALUES (1, 7, 'h', '0.9', 1000, 2000, NULL, NULL)")
    old.close()
    with HistoryStore(path) as opened:
        assert schema_version(path) == SCHEMA_VERSION == 9
        assert opened.missed_counts(T0) == [
            ("a", 2, T0 + timedelta(minutes=3)),
            ("b", 1, T0 + timedelta(minutes=2)),
        ]
        assert opened.missed_counts(T0 + timedelta(minutes=3)) == [
            ("a", 1, T0 + timedelta(minutes=3))
        ]
        assert len(opened.runs(limit=None)) == 5
        assert opened.acks()["c"].by == "bob" and opened.serve_state().pid == 7
        seen: list[str] = []
        opened._db.set_trace_callback(seen.append)
        opened.missed_counts(T0)
        opened._db.set_trace_callback(None)
        [sql] = [s for s in seen if s.startswith("SELECT")]
        plan = [row[3] for row in opened._db.execute("EXPLAIN QUERY PLAN " + sql)]
        assert plan[0].startswith("SEARCH runs USING COVERING INDEX runs_missed"), plan
        [(newest, day, hour)] = opened.failure_counts(T0, T0 + timedelta(minutes=4))
        assert (newest.task, newest.status.value, day, hour) == ("c", "failed", 1, 1)
        seen.clear()
        opened._db.set_trace_callback(seen.append)
        opened.failure_counts(T0, T0)
        opened._db.set_trace_callback(None)
        plan = [row[3] for row in opened._db.execute("EXPLAIN QUERY PLAN " + seen[0])]
        assert plan[0].startswith("SEARCH runs USING COVERING INDEX runs_failed_recent"), plan
    with sqlite3.connect(path) as check:
        entries = check.execute(
            "SELECT COUNT(*) FROM runs INDEXED BY runs_missed WHERE status = 'missed'"
        ).fetchone()[0]
        failures = check.execute(
            "SELECT COUNT(*) FROM runs INDEXED BY runs_failed_recent"
            " WHERE status IN ('failed', 'timed_out', 'killed', 'abandoned', 'error')"
        ).fetchone()[0]
    assert (entries, failures) == (3, 1)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "history.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer cronctl"):
        HistoryStore(path)


def test_two_processes_racing_the_migration_migrate_once(tmp_path):
    path = tmp_path / "history.db"
    code = "import sys; from cronctl.store import HistoryStore; HistoryStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    assert schema_version(path) == SCHEMA_VERSION


def test_a_database_of_another_program_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE notes (text TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="another program"):
        HistoryStore(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 0
    assert raw.execute("PRAGMA application_id").fetchone()[0] == 0
    raw.close()


def test_a_new_file_is_marked_as_a_cronctl_history(tmp_path):
    HistoryStore(tmp_path / "history.db").close()
    raw = sqlite3.connect(tmp_path / "history.db")
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    raw.close()


def test_is_ours_and_statements():
    assert is_ours(0, 0, 0) and is_ours(APPLICATION_ID, 3, 9) and is_ours(0, 2, 5)
    assert not is_ours(0, 0, 1) and not is_ours(42, 0, 0)
    assert statements("-- a comment\nCREATE TABLE t (x);\n\n DROP TABLE t;\n") == [
        "CREATE TABLE t (x)",
        "DROP TABLE t",
    ]
