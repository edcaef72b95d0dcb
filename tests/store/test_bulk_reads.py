"""The reads of many tasks in one statement (`newest_starts`, `latest_slots`, `tasks_stats`,
`last_successes`) answer what the per-task reads answer (`last_run`, `latest_slot`,
`task_stats`, `last_success_at`), on generated histories."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.errors import SlotTakenError
from cronctl.records import Status, Trigger

from .conftest import BACKENDS
from .support import T0

# Examples per store: the PostgreSQL store's take a round trip a call (about 15 ms an example).
EXAMPLES = {"sqlite": 150, "postgresql": 40}
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


@contextlib.contextmanager
def history(histories, backend: str, runs: list[tuple[str, Trigger, Status, int, int, int | None]]):
    with histories.fresh(backend) as store:
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
        yield store


@pytest.mark.parametrize("backend", BACKENDS)
def test_bulk_reads_answer_as_the_per_task_reads(backend, histories):
    @settings(max_examples=EXAMPLES[backend], deadline=None)
    @given(RUNS, st.lists(st.sampled_from(NAMES), unique=True))
    def check(runs, asked):
        with history(histories, backend, runs) as store:
            newest = {}
            latest = {}
            succeeded = {}
            for name in asked:
                success = store.last_success_at(name)
                if success is not None:
                    succeeded[name] = success
                last = store.last_run(name)
                if last is not None:
                    newest[name] = last.started_at
                slot = store.latest_slot(name)
                if slot is not None:
                    latest[name] = slot
            assert store.newest_starts(asked) == newest
            assert store.latest_slots(asked) == latest
            assert store.last_successes(asked) == succeeded
            assert store.tasks_stats(asked) == {
                name: store.task_stats(name) for name in asked if name in newest
            }
            assert store.tasks_stats(asked, window=3) == {
                name: store.task_stats(name, window=3) for name in asked if name in newest
            }

    check()


def test_newest_starts_searches_the_index_per_name(sqlite_store):
    statements: list[str] = []
    sqlite_store._db.set_trace_callback(statements.append)
    assert sqlite_store.newest_starts(["a", "b"]) == {}
    sqlite_store._db.set_trace_callback(None)
    plan = [r[3] for r in sqlite_store._db.execute("EXPLAIN QUERY PLAN " + statements[0])]
    assert plan[0].startswith("SCAN names VIRTUAL TABLE")
    assert any(step.startswith("SEARCH runs USING COVERING INDEX") for step in plan), plan
    assert not any(step.startswith("SCAN runs") for step in plan), plan
