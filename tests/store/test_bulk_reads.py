"""The reads of many tasks in one statement (`newest_starts`, `latest_slots`, `tasks_stats`)
answer what the per-task reads answer (`last_run`, `latest_slot`, `task_stats`), on generated
histories."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.errors import SlotTakenError
from cronctl.records import Status, Trigger
from cronctl.store import HistoryStore

from .support import T0

NAMES = ["a", "b", "db-1", "café", 'quote"d', "back\\slash", "never"]  # "never" has no runs

RUNS = st.lists(
    st.tuples(
        st.sampled_from(NAMES[:-1]),
        st.sampled_from(list(Trigger)),
        st.sampled_from(list(Status)),
        st.integers(1, 3),  # attempt
        st.integers(0, 30),  # started, minutes after T0 (equal starts happen)
        st.one_of(st.none(), st.integers(0, 30)),  # scheduled, minutes after T0
    ),
    max_size=40,
)


def history(runs: list[tuple[str, Trigger, Status, int, int, int | None]]) -> HistoryStore:
    store = HistoryStore(":memory:")
    for task, trigger, status, attempt, started, scheduled in runs:
        try:
            run_id = store.start_run(
                task,
                trigger,
                started_at=T0 + timedelta(minutes=started),
                attempt=attempt,
                scheduled_at=None if scheduled is None else T0 + timedelta(minutes=scheduled),
            )
        except SlotTakenError:
            continue  # a slot runs once: the generated duplicate is left out
        if status != Status.RUNNING:
            duration = None if started % 4 == 0 else started * 37 % 1000
            store.finish_run(run_id, status=status, finished_at=T0, duration_ms=duration)
    return store


@settings(max_examples=150, deadline=None)
@given(RUNS, st.lists(st.sampled_from(NAMES), unique=True))
def test_bulk_reads_answer_as_the_per_task_reads(runs, asked):
    with history(runs) as store:
        newest = {}
        latest = {}
        for name in asked:
            last = store.last_run(name)
            if last is not None:
                newest[name] = last.started_at
            slot = store.latest_slot(name)
            if slot is not None:
                latest[name] = slot
        assert store.newest_starts(asked) == newest
        assert store.latest_slots(asked) == latest
        assert store.tasks_stats(asked) == {
            name: store.task_stats(name) for name in asked if name in newest
        }
        assert store.tasks_stats(asked, window=3) == {
            name: store.task_stats(name, window=3) for name in asked if name in newest
        }


def test_newest_starts_searches_the_index_per_name(store):
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    assert store.newest_starts(["a", "b"]) == {}
    store._db.set_trace_callback(None)
    plan = [r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + statements[0])]
    assert plan[0].startswith("SCAN names VIRTUAL TABLE")
    assert any(step.startswith("SEARCH runs USING COVERING INDEX") for step in plan), plan
    assert not any(step.startswith("SCAN runs") for step in plan), plan
