"""Several runs' writes in one transaction (cronctl/store/runs.py `start_runs`,
cronctl/store/database.py `batch`): serve's claims of one instant and its group commits."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from cronctl.errors import StoreError, UnknownRunError
from cronctl.records import Output, Status, Trigger
from cronctl.store import HistoryStore

from .support import T0

T1 = T0 + timedelta(minutes=1)


def statuses(store):
    return {run.id: run.status for run in store.runs(limit=None)}


def test_start_runs_claims_each_in_order_and_skips_a_slot_taken(store):
    taken = store.start_run("b", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
    ids = store.start_runs(
        [
            ("a", Trigger.SCHEDULE, 1, T0),
            ("b", Trigger.SCHEDULE, 1, T0),  # this slot already has its run
            ("c", Trigger.MANUAL, 1, None),
            ("a", Trigger.SCHEDULE, 1, T1),
        ],
        started_at=T0,
    )
    assert ids[1] is None and None not in (ids[0], ids[2], ids[3])
    assert ids[0] < ids[2] < ids[3] and taken not in ids
    claimed = [store.get_run(run_id) for run_id in (ids[0], ids[2], ids[3])]
    assert [(r.task, r.trigger, r.scheduled_at, r.status) for r in claimed] == [
        ("a", Trigger.SCHEDULE, T0, Status.RUNNING),
        ("c", Trigger.MANUAL, None, Status.RUNNING),
        ("a", Trigger.SCHEDULE, T1, Status.RUNNING),
    ]
    assert all(r.started_at == T0 and r.attempt == 1 for r in claimed)


def test_start_runs_in_one_batch_claims_a_slot_once(store):
    ids = store.start_runs(
        [("a", Trigger.SCHEDULE, 1, T0), ("a", Trigger.SCHEDULE, 1, T0)], started_at=T0
    )
    assert ids[0] is not None and ids[1] is None
    assert len(store.runs(limit=None)) == 1


def test_start_runs_writes_all_or_none(tmp_path):
    path = str(tmp_path / "h.db")
    # The short busy timeout is the blocked writer's (it was the holder's: the batch waited
    # the default 5 s before it failed).
    with HistoryStore(path, timeout=0.05) as store, HistoryStore(path) as other:
        other._db.execute("BEGIN IMMEDIATE")  # another writer holds the database
        with pytest.raises(StoreError):
            store.start_runs([("a", Trigger.MANUAL, 1, None)] * 3, started_at=T0)
        other._db.execute("ROLLBACK")
        assert store.runs(limit=None) == []


def test_a_batch_commits_its_writes_together(tmp_path):
    path = str(tmp_path / "h.db")
    with HistoryStore(path) as store, HistoryStore(path) as reader:
        first = store.start_run("a", Trigger.MANUAL, started_at=T0)
        second = store.start_run("b", Trigger.MANUAL, started_at=T0)
        with store.batch():
            store.set_pid(first, 11)
            done = store.finish_run(second, status=Status.SUCCEEDED, finished_at=T1, exit_code=0)
            # Not visible to another connection before the batch commits.
            assert reader.get_run(first).pid is None
            assert reader.get_run(second).status == Status.RUNNING
        assert done.status == Status.SUCCEEDED
        assert reader.get_run(first).pid == 11
        assert reader.get_run(second).status == Status.SUCCEEDED


def test_a_failed_write_rolls_the_whole_batch_back(store):
    run_id = store.start_run("a", Trigger.MANUAL, started_at=T0)
    with pytest.raises(UnknownRunError), store.batch():
        store.set_pid(run_id, 11)
        store.finish_run(run_id + 99, status=Status.SUCCEEDED, finished_at=T1)
    assert store.get_run(run_id).pid is None
    # The connection is usable again: a write outside a batch commits on its own.
    store.set_pid(run_id, 12)
    assert store.get_run(run_id).pid == 12


# SQLite only: it fakes SQLite's full-disk error on its connection.
def test_a_write_that_recovers_on_its_own_still_fails_the_batch(sqlite_store, monkeypatch):
    """finish_run records the end without its output when the disk is full; inside a batch the
    first failure breaks it (SQLite may have rolled the transaction back already), and the
    caller does the writes again one by one."""
    run_id = sqlite_store.start_run("a", Trigger.MANUAL, started_at=T0)
    other = sqlite_store.start_run("b", Trigger.MANUAL, started_at=T0)
    real = sqlite_store._db

    class FullDisk:
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql.startswith("INSERT OR REPLACE INTO run_output"):
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    monkeypatch.setattr(sqlite_store, "_db", FullDisk())
    with pytest.raises(StoreError), sqlite_store.batch():
        sqlite_store.set_pid(other, 5)
        sqlite_store.finish_run(
            run_id, status=Status.FAILED, finished_at=T1, stdout=Output(b"x", 1), exit_code=1
        )
    monkeypatch.setattr(sqlite_store, "_db", real)
    assert statuses(sqlite_store) == {run_id: Status.RUNNING, other: Status.RUNNING}
    assert sqlite_store.get_run(other).pid is None
