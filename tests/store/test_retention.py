"""Deleting old history (cronctl/store/retention.py)."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.records import Output, Status, Trigger
from cronctl.store import PRUNE_CHUNK, HistoryStore

from .conftest import BACKENDS
from .support import T0, add_run, execute

EXAMPLES = {"sqlite": 150, "postgresql": 30}  # PostgreSQL: about 25 ms an example


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


# ---------------------------------------------------------------- prune by ranges (#18)

_T0_MS = int(T0.timestamp() * 1000)
_DAY = 86_400_000
_runs = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(-400, 0),  # started this many days before T0 (ties are common)
        st.sampled_from(["succeeded", "failed", "skipped", "running"]),
        st.booleans(),  # with an output row
    ),
    max_size=60,
)


def _expired_reference(store, task: str, cutoff_ms: int, keep: int) -> set[int]:
    """What prune deleted before issue 18, per task: the ids of its finished runs started
    before the cutoff or beyond its newest `keep` (started_at, then id)."""
    return {
        r[0]
        for r in execute(
            store,
            "SELECT id FROM runs WHERE task = ? AND status != 'running'"
            " AND (started_at < ? OR id IN (SELECT id FROM runs WHERE task = ?"
            " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?))",
            (task, cutoff_ms, task, 2**62, keep),
        )
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_prune_deletes_what_the_rule_says(backend, histories):
    """Property: prune's bounds per task delete exactly the runs of the rule (older than
    keep_days, or beyond a task's newest keep_runs by started_at then id; never a running
    one), report those counts (the same with --dry-run, which deletes nothing), and take
    their output rows along."""

    @settings(max_examples=EXAMPLES[backend], deadline=None)
    @given(
        runs=_runs, keep_days=st.integers(0, 500), keep_a=st.integers(1, 8), keep=st.integers(1, 8)
    )
    def check(runs, keep_days, keep_a, keep):
        with histories.fresh(backend) as store:
            _check_prune(store, runs, keep_days, keep_a, keep)

    check()


def _check_prune(store, runs, keep_days, keep_a, keep):
    for task, day, status, with_output in runs:
        started = _T0_MS + day * _DAY
        [(run_id,)] = execute(
            store,
            "INSERT INTO runs (task, trigger, started_at, status) VALUES (?, 'manual', ?, ?)"
            " RETURNING id",
            (task, started, status),
        )
        if with_output:
            execute(store, "INSERT INTO run_output (run_id, stdout) VALUES (?, ?)", (run_id, b"\0"))
    cutoff = _T0_MS - keep_days * _DAY
    expected = {
        task: _expired_reference(store, task, cutoff, keep_a if task == "a" else keep)
        for task in "abc"
    }
    counts = {task: len(ids) for task, ids in expected.items() if ids}
    before = {r[0] for r in execute(store, "SELECT id FROM runs")}
    arguments = dict(now=T0, keep_days=keep_days, keep_runs={"a": keep_a})
    assert store.prune(**arguments, default_keep_runs=keep, dry_run=True) == counts
    assert {r[0] for r in execute(store, "SELECT id FROM runs")} == before
    assert store.prune(**arguments, default_keep_runs=keep) == counts
    gone = set().union(*expected.values())
    assert {r[0] for r in execute(store, "SELECT id FROM runs")} == before - gone
    [(orphans,)] = execute(
        store, "SELECT COUNT(*) FROM run_output WHERE run_id NOT IN (SELECT id FROM runs)"
    )
    assert orphans == 0


def _bulk_history(store, runs: int, tasks: int) -> None:
    """`runs` finished runs of `tasks` interleaved tasks, one a minute, a failed one in ten
    with an output row (one INSERT ... SELECT)."""
    store._db.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {runs - 1})
        INSERT INTO runs (task, trigger, started_at, status)
        SELECT 'task-' || (i % {tasks}), 'schedule', {_T0_MS} - ({runs} - i) * 60000,
               CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END
        FROM n
        """
    )
    store._db.execute(
        "INSERT INTO run_output (run_id, stderr) SELECT id, x'6f6f7073' FROM runs"
        " WHERE status = 'failed'"
    )


def test_prune_memory_does_not_grow_with_the_history(tmp_path):
    """Decided (#18, item 3): prune holds a bound per task, never the ids it deletes: the
    Python memory it allocates is the same for 20,000 and 200,000 runs to delete (before:
    a list of every id, 1.6 MB more for the bigger history)."""
    peaks = []
    for runs in (20_000, 200_000):
        with HistoryStore(tmp_path / f"{runs}.db") as store:
            _bulk_history(store, runs, 20)
            for dry_run in (True, False):
                tracemalloc.start()
                removed = store.prune(now=T0, keep_days=9999, default_keep_runs=10, dry_run=dry_run)
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
                assert sum(removed.values()) == runs - 200
            assert store._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 200
            assert store._db.execute("SELECT COUNT(*) FROM run_output").fetchone()[0] == 20
    assert max(peaks) < 200_000, peaks


def test_prune_deletes_by_ranges_through_indexes(tmp_path):
    """Decided: every statement of a real prune reads through an index or the primary key
    (EXPLAIN QUERY PLAN of the SQL it ran, captured with a trace callback): no full scan of
    runs or run_output, and no temporary sort."""
    with HistoryStore(tmp_path / "history.db") as store:
        _bulk_history(store, 5_000, 10)
        seen: list[str] = []
        store._db.set_trace_callback(seen.append)
        try:
            assert sum(store.prune(now=T0, keep_days=9999, default_keep_runs=10).values()) == 4_900
        finally:
            store._db.set_trace_callback(None)
        statements = {s for s in seen if s.lstrip().upper().startswith(("SELECT", "DELETE"))}
        assert any(s.startswith("DELETE FROM runs WHERE id BETWEEN") for s in statements)
        for sql in statements:
            plan = [row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql)]
            for step in plan:
                assert not step.startswith(("SCAN runs", "SCAN run_output")), (sql, plan)
                assert "TEMP B-TREE" not in step, (sql, plan)


def test_prune_window_gaps_cost_no_transactions(tmp_path):
    """Windows of PRUNE_CHUNK ids start at the next id that exists: a history whose ids have
    wide gaps (earlier prunes, another task's purge) takes one write transaction per chunk
    of runs, not one per PRUNE_CHUNK ids of the gaps."""
    with HistoryStore(tmp_path / "history.db") as store:
        for block in range(5):
            store._db.execute(
                "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " INSERT INTO runs (id, task, trigger, started_at, status)"
                f" SELECT i, 'a', 'manual', {_T0_MS} + i, 'succeeded' FROM n",
                (block * 1_000_000 + 1, block * 1_000_000 + 10),
            )
        seen: list[str] = []
        store._db.set_trace_callback(seen.append)
        try:
            assert store.prune(now=T0, keep_days=9999, default_keep_runs=1) == {"a": 49}
        finally:
            store._db.set_trace_callback(None)
        # (SQLite traces a statement again for each run whose output row it cascades to)
        deletes = {s for s in seen if s.startswith("DELETE FROM runs WHERE id BETWEEN")}
        assert len(deletes) == 5, sorted(deletes)
