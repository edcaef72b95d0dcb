"""A renamed task's state carried over at a reload (cronctl/serve/renames.py), under the fake
clock: its retry, its next slot, and the renames read from the journal."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from cronctl.records import Status, Trigger
from cronctl.serve.renames import RenameFollower
from cronctl.store.renames import digest
from tests.serve.fakes import task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "history.db")


def rename_history(store, old, new, path="/nonexistent/tasks.toml"):
    rename_id = store.begin_rename(
        old, new, tasks_file=path, digest_before=digest(b"a"), digest_after=digest(b"b"), now=T0
    )
    return store.finish_rename(rename_id)


def test_a_retry_waiting_at_the_rename_runs_under_the_new_name(harness):
    old = task("r", "0 * * * *", retries=1, retry_delay=60)
    h = harness([old], outcomes={"r": "failed", "r2": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, seconds=10))  # the 13:00 run failed; its retry waits
    assert [(r.attempt, r.status) for r in h.runs("r")] == [(1, Status.FAILED)]
    rename_history(h.store, "r", "r2")
    new = dataclasses.replace(old, name="r2")
    carried = h.scheduler.apply({"r2": new}, h.clock.now(), {"r": "r2"})
    assert carried == {"r": "r2"}
    h.run_until(T0 + timedelta(hours=2, seconds=5))
    assert h.runs("r") == []
    assert [(r.trigger, r.attempt, r.status, r.scheduled_at) for r in h.runs("r2")] == [
        (Trigger.SCHEDULE, 1, Status.FAILED, T0 + timedelta(hours=1)),
        (Trigger.RETRY, 2, Status.SUCCEEDED, T0 + timedelta(hours=1)),
        (Trigger.SCHEDULE, 1, Status.SUCCEEDED, T0 + timedelta(hours=2)),
    ]


def test_without_a_rename_the_same_reload_drops_the_retry(harness):
    """The case above as a plain remove and add: what carrying over is for."""
    old = task("r", "0 * * * *", retries=1, retry_delay=60)
    h = harness([old], outcomes={"r": "failed", "r2": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, seconds=10))
    rename_history(h.store, "r", "r2")
    h.scheduler.apply({"r2": dataclasses.replace(old, name="r2")}, h.clock.now())
    h.run_until(T0 + timedelta(hours=1, minutes=5))
    assert [r.trigger for r in h.runs("r2")] == [Trigger.SCHEDULE]  # no retry


def test_a_rename_with_a_new_schedule_is_retimed_from_now(harness):
    old = task("a", "0 * * * *")
    h = harness([old], outcomes={"a": "succeeded", "b": "succeeded"})
    h.run_until(T0 + timedelta(minutes=10))
    new = dataclasses.replace(old, name="b", schedule="30 * * * *")
    h.scheduler.apply({"b": new}, h.clock.now(), {"a": "b"})
    assert h.scheduler.states["b"].next_slot == T0 + timedelta(minutes=30)
    h.run_until(T0 + timedelta(minutes=31))
    assert [r.scheduled_at for r in h.runs("b")] == [T0 + timedelta(minutes=30)]


def test_the_follower_reads_each_rename_once_and_follows_chains(store_path):
    from cronctl.store import HistoryStore

    with HistoryStore(store_path) as store:
        rename_history(store, "old-one", "before")
        follower = RenameFollower(HistoryStore(store_path))
        assert follower.pending() == {}  # done before serve started
        rename_history(store, "a", "b")
        rename_history(store, "b", "c")
        rename_history(store, "x", "y")
        assert follower.pending() == {"a": "c", "x": "y"}
        assert follower.pending() == {}
        follower.close()


def test_the_follower_settles_an_open_rename_first(store_path, tmp_path):
    from cronctl.store import HistoryStore

    tasks = tmp_path / "tasks.toml"
    tasks.write_bytes(b"[tasks.new]\n")
    with HistoryStore(store_path) as store:
        follower = RenameFollower(HistoryStore(store_path))
        store.begin_rename(
            "old",
            "new",
            tasks_file=str(tasks),
            digest_before=digest(b"[tasks.old]\n"),
            digest_after=digest(b"[tasks.new]\n"),
            now=T0,
        )  # the renamer was killed after replacing the file
        assert follower.pending() == {"old": "new"}
        follower.close()


def test_rows_written_under_the_old_name_after_the_carry_over_are_swept(store_path):
    """A claim or a `skipped` row decided before the reload may reach the database after it."""
    from cronctl.store import HistoryStore
    from tests.store.support import add_run

    with HistoryStore(store_path) as store:
        follower = RenameFollower(HistoryStore(store_path))
        rename_history(store, "a", "b")
        follower.carried({"a": "b"}, mono=100.0)
        add_run(store, "a")  # written a moment after the state moved
        follower.sweep(104.9)
        assert len(store.runs("a")) == 1
        follower.sweep(105.0)
        assert store.runs("a") == [] and len(store.runs("b")) == 1
        add_run(store, "a")
        follower.sweep(160.0)  # the last sweep
        assert store.runs("a") == []
        add_run(store, "a")
        follower.sweep(1000.0)  # none left: the row stays
        assert len(store.runs("a")) == 1
        follower.carried({"a": "b"}, mono=2000.0)  # (a rename of the same names again)
        add_run(store, "a")
        follower.sweep(2005.0, tasks={"a"})  # a task named a again: its rows are its own
        assert len(store.runs("a")) == 1
        follower.close()
