"""Deleting old history (cronctl/store/retention.py)."""

from __future__ import annotations

from datetime import timedelta

from cronctl.records import Output, Status, Trigger
from cronctl.store import PRUNE_CHUNK, HistoryStore

from .support import T0, add_run


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


def test_delete_task_runs_in_chunks_and_gives_pages_back(tmp_path):
    with HistoryStore(tmp_path / "history.db") as store:
        for _ in range(PRUNE_CHUNK + 5):
            run_id = store.start_run("a", Trigger.MANUAL, started_at=T0)
            store.finish_run(
                run_id, status=Status.SUCCEEDED, finished_at=T0, stdout=Output(b"o" * 500, 500)
            )
        add_run(store, task="b")
        before = store._db.execute("PRAGMA page_count").fetchone()[0]
        assert store.delete_task_runs("a") == PRUNE_CHUNK + 5
        assert store.delete_task_runs("a") == 0
        assert store.task_names() == ["b"]
        assert store._db.execute("SELECT COUNT(*) FROM run_output").fetchone()[0] == 0
        assert store._db.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert store._db.execute("PRAGMA page_count").fetchone()[0] < before
        store.checkpoint()
        assert (tmp_path / "history.db-wal").stat().st_size == 0


def test_prune_keeps_runs_in_progress_and_spares_other_tasks(store):
    running = store.start_run("a", Trigger.MANUAL, started_at=T0 - timedelta(days=400))
    add_run(store, task="a", at=T0 - timedelta(days=400))
    add_run(store, task="b", at=T0)
    assert store.prune(now=T0, keep_days=90, default_keep_runs=1000) == {"a": 1}
    assert [r.id for r in store.runs("a")] == [running]
    assert store.prune(now=T0, keep_days=90, default_keep_runs=1000) == {}
