"""Consecutive `when` skips kept as one row (cronctl/store/skips.py; issue 14, item 11)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from cronctl.records import Status, Trigger
from cronctl.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore
from cronctl.store.skips import folded_reason

from .support import T0, add_run, schema_version

NO = "the when condition `false` exited 1"
OTHER_NO = "the when condition `false` exited 2"


def skip(store, at, reason=NO, task="t", trigger=Trigger.SCHEDULE):
    """A slot claimed at `at` and skipped by its condition, as serve records one."""
    run_id = store.start_run(task, trigger, started_at=at, scheduled_at=at)
    return store.finish_condition_skip(run_id, finished_at=at + timedelta(seconds=1), reason=reason)


def ran(store, at, task="t"):
    run_id = store.start_run(task, Trigger.SCHEDULE, started_at=at, scheduled_at=at)
    return store.finish_run(run_id, status=Status.SUCCEEDED, finished_at=at, duration_ms=5)


@pytest.mark.parametrize(
    ("events", "rows"),
    [
        # events, one every 10 s: s = skipped (exit 1), S = skipped (exit 2), r = ran,
        # o = a skip of another task; rows: each row of task t, newest first, and its count.
        ("ssss", [("skipped", 4)]),
        ("s", [("skipped", 1)]),
        ("ssrss", [("skipped", 2), ("succeeded", 1), ("skipped", 2)]),
        ("ssSS", [("skipped", 2), ("skipped", 2)]),
        ("ssoss", [("skipped", 4)]),  # another task's row is not between two of t's
        ("rsss", [("skipped", 3), ("succeeded", 1)]),
    ],
)
def test_c11_consecutive_condition_skips_are_one_row(store, events, rows):
    for number, event in enumerate(events):
        at = T0 + timedelta(seconds=10 * number)
        if event == "r":
            ran(store, at)
        elif event == "o":
            skip(store, at, task="other")
        else:
            skip(store, at, NO if event == "s" else OTHER_NO)
    found = store.runs("t", limit=None)
    counts = [
        (
            run.status,
            int(run.reason.split("(")[1].split()[0]) if run.reason and "(" in run.reason else 1,
        )
        for run in found
    ]
    assert counts == rows


def test_c11_the_folded_row_says_how_many_since_when_and_holds_the_newest_skip(store):
    for number in range(123):
        last = skip(store, T0 + timedelta(seconds=10 * number))
    [row] = store.runs("t", limit=None)
    newest = T0 + timedelta(seconds=10 * 122)
    assert last.id == row.id and row.status == Status.SKIPPED
    assert row.reason == f"{NO} (123 times since 2026-03-01T12:00:00+00:00)"
    assert row.reason == folded_reason(NO, 123, T0)
    assert (row.started_at, row.scheduled_at) == (newest, newest)  # the newest skip's
    assert row.finished_at == newest + timedelta(seconds=1)
    assert store.latest_slot("t") == newest  # catch-up starts after the newest slot
    with pytest.raises(Exception, match="already run"):  # and that slot stays claimed
        store.start_run("t", Trigger.SCHEDULE, started_at=newest, scheduled_at=newest)


def test_c11_a_skip_after_a_manual_run_or_a_retry_is_a_row_of_its_own(store):
    skip(store, T0)
    add_run(store, task="t", at=T0 + timedelta(seconds=5))  # run-now between two skips
    skip(store, T0 + timedelta(seconds=10))
    skip(store, T0 + timedelta(seconds=20), trigger=Trigger.AFTER)
    assert [r.trigger for r in store.runs("t", limit=None)] == [
        "after",
        "schedule",
        "manual",
        "schedule",
    ]


def test_c11_migration_from_schema_4_counts_each_old_row_once(tmp_path):
    """A history of schema 4 (before `repeats`): its skipped rows read back as one skip each,
    and the next skip folds into the newest of them."""
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:4]:
        old.executescript(script)
    old.execute("PRAGMA user_version = 4")
    start = int(T0.timestamp() * 1000)
    for number in range(2):
        at = start + 10_000 * number
        old.execute(
            "INSERT INTO runs (task, trigger, scheduled_at, started_at, finished_at, status,"
            " reason) VALUES ('t', 'schedule', ?, ?, ?, 'skipped', ?)",
            (at, at, at + 1000, NO),
        )
    old.close()
    with HistoryStore(path) as opened:
        assert schema_version(path) == SCHEMA_VERSION == 9
        assert [r.reason for r in opened.runs("t")] == [NO, NO]
        skip(opened, T0 + timedelta(seconds=20))
        newest, oldest = opened.runs("t")
        assert newest.reason == f"{NO} (2 times since 2026-03-01T12:00:10+00:00)"
        assert oldest.reason == NO


def test_c11_the_folded_row_reads_as_the_newest_skip_in_every_history(store):
    """`history` of all tasks and `list`'s last run see the folded row at its newest skip."""
    skip(store, T0)
    ran(store, T0 + timedelta(seconds=5), task="other")
    skip(store, T0 + timedelta(seconds=10))
    assert [run.task for run in store.runs()] == ["t", "other"]
    assert store.last_run("t").started_at == T0 + timedelta(seconds=10)


def test_latest_slots_reads_the_newest_slot_of_each_task_at_once(store):
    """serve's catch-up starting points in one statement: the same answer as latest_slot
    asked task by task (first attempts of scheduled and catch-up runs only; a retry, a manual
    run and a folded skip count as latest_slot counts them), and nothing for a task without
    slots or unknown to the history; names of any characters pass through."""
    names = ["a", "b", "skips", "manual-only", "é-ünï", 'q"uote\\back', "none"]
    at = T0
    for offset, (task, trigger, attempt) in enumerate(
        [
            ("a", Trigger.SCHEDULE, 1),
            ("a", Trigger.CATCH_UP, 1),
            ("a", Trigger.SCHEDULE, 2),  # a retry: not a slot of its own
            ("b", Trigger.SCHEDULE, 1),
            ("manual-only", Trigger.MANUAL, 1),
            ("é-ünï", Trigger.SCHEDULE, 1),
            ('q"uote\\back', Trigger.CATCH_UP, 1),
        ]
    ):
        at = T0 + timedelta(minutes=offset)
        store.start_run(task, trigger, started_at=at, attempt=attempt, scheduled_at=at)
    skip(store, T0 + timedelta(hours=1), task="skips")
    skip(store, T0 + timedelta(hours=2), task="skips")  # folded: the newest skip's slot
    found = store.latest_slots(names)
    assert found == {n: store.latest_slot(n) for n in names if store.latest_slot(n) is not None}
    assert set(found) == {"a", "b", "skips", "é-ünï", 'q"uote\\back'}
    assert found["skips"] == T0 + timedelta(hours=2)
    assert store.latest_slots([]) == {}
