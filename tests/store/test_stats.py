"""Health figures answered from indexes (cronctl/store/stats.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cronctl.records import Output, Status, Trigger

from .support import T0, add_run


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


# SQLite only: SQLite's query plan (EXPLAIN QUERY PLAN).
def test_task_stats_reads_the_index_only(sqlite_store):
    """The health of each task in `list` reads no table rows but its newest run's."""
    add_run(sqlite_store)
    statements: list[str] = []
    sqlite_store._db.set_trace_callback(statements.append)
    sqlite_store.task_stats("a")
    sqlite_store._db.set_trace_callback(None)
    plans = [
        " / ".join(r[3] for r in sqlite_store._db.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in statements
    ]
    assert plans[0] == "SEARCH runs USING COVERING INDEX runs_task_recent (task=?)"
    assert all("runs_task_recent" in plan for plan in plans), plans


def test_running_tasks_missed_counts_and_run_counts(store):
    store.start_run("busy", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
    for minute in range(3):
        slot = T0 + timedelta(minutes=minute)
        store.start_run(
            "late",
            Trigger.CATCH_UP,
            started_at=T0 + timedelta(hours=1),
            scheduled_at=slot,
            status=Status.MISSED,
        )
    add_run(store, task="late", status="failed", at=T0 + timedelta(hours=2))
    add_run(store, task="late", status="succeeded", at=T0 + timedelta(hours=3))
    assert store.running_tasks() == {"busy"}
    assert store.missed_counts(T0) == [("late", 3, T0 + timedelta(minutes=2))]
    assert store.missed_counts(T0 + timedelta(hours=2)) == []
    assert store.run_counts() == {"busy": (1, 0), "late": (5, 1)}


def test_stderr_heads(store):
    ids = []
    for number in range(3):
        run_id = store.start_run("a", Trigger.MANUAL, started_at=T0)
        err = b"boom %d\n" % number + b"x" * 1000
        store.finish_run(run_id, status=Status.FAILED, finished_at=T0, stderr=Output(err, len(err)))
        ids.append(run_id)
    heads = store.stderr_heads([*ids, 999], size=6)
    assert heads == {ids[0]: b"boom 0", ids[1]: b"boom 1", ids[2]: b"boom 2"}
    assert store.stderr_heads([]) == {}


def test_the_newest_failure_of_a_tie_is_the_last_recorded(store):
    # Two failures of one task started in the same millisecond: `status` names the one
    # `history` shows first (latest start, then highest id). SQLite's bare id beside MAX()
    # took the lowest; the generated comparison of both stores found it.
    first = add_run(store, "a", "failed", at=T0)
    second = add_run(store, "a", "failed", at=T0)
    add_run(store, "b", "failed", at=T0 - timedelta(minutes=5))
    [(newest, day, hour), (other, _, _)] = store.failure_counts(
        T0 - timedelta(days=1), T0 - timedelta(hours=1)
    )
    assert (newest.id, day, hour) == (second, 2, 2) and second > first
    assert newest == store.last_run("a")
    assert other.task == "b"
