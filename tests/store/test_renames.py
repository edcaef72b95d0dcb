"""The rename journal and the rename of a task's history rows (cronctl/store/renames.py)."""

from __future__ import annotations

import fcntl
import os

import pytest

from cronctl.errors import StoreError
from cronctl.store import HistoryStore
from cronctl.store.renames import digest

from .support import T0, add_run


def journal(store, path, before=b"[tasks.old]\n", after=b"[tasks.new]\n"):
    return store.begin_rename(
        "old",
        "new",
        tasks_file=str(path),
        digest_before=digest(before),
        digest_after=digest(after),
        now=T0,
    )


def test_finish_renames_every_row_of_the_task_in_one_transaction(store, tmp_path):
    ids = [add_run(store, "old", scheduled=T0, trigger="schedule"), add_run(store, "old")]
    add_run(store, "other")
    store.acknowledge("old", at=T0, by="alice")
    rename_id = journal(store, tmp_path / "t.toml")
    assert store.renames_after(0)[0].outcome is None  # open until finished
    done = store.finish_rename(rename_id)
    assert (done.old, done.new, done.outcome, done.runs) == ("old", "new", "renamed", 2)
    assert [r.id for r in store.runs("new")][::-1] == ids and store.runs("old") == []
    assert store.latest_slot("new") == T0
    assert set(store.acks()) == {"new"} and store.acks()["new"].by == "alice"
    assert store.history_rows("old") == 0 and store.history_rows("new") == 3
    assert store.finish_rename(rename_id) == done  # settled once


def test_a_failed_finish_changes_nothing(store, tmp_path):
    """Two first attempts of one slot under NEW: the transaction is refused as a whole."""
    add_run(store, "old", scheduled=T0, trigger="schedule")
    add_run(store, "old", at=T0, trigger="manual")
    add_run(store, "new", scheduled=T0, trigger="schedule")
    rename_id = journal(store, tmp_path / "t.toml")
    with pytest.raises(StoreError):
        store.finish_rename(rename_id)
    assert len(store.runs("old")) == 2 and len(store.runs("new")) == 1
    assert store.renames_after(0)[0].outcome is None


@pytest.mark.parametrize(
    ("on_disk", "outcome"),
    [
        (b"[tasks.new]\n", "renamed"),  # the file was replaced: finish
        (b"[tasks.old]\n", "dropped"),  # it was not: drop
        (b"# edited since\n[tasks.new]\ncommand='x'\n", "renamed"),  # NEW, no OLD
        (b"# edited since\n[tasks.old]\n[tasks.new]\n", "dropped"),  # both: not ours
        (None, "dropped"),  # no file at all
    ],
)
def test_opening_the_store_settles_an_open_rename_by_the_file(tmp_path, on_disk, outcome):
    path, db = tmp_path / "tasks.toml", tmp_path / "history.db"
    if on_disk is not None:
        path.write_bytes(on_disk)
    with HistoryStore(db) as store:
        add_run(store, "old")
        journal(store, path)
    with HistoryStore(db) as store:  # what any command does first
        [settled] = store.renames_after(0)
        assert settled.outcome == outcome
        assert len(store.runs("new" if outcome == "renamed" else "old")) == 1


def test_a_rename_whose_renamer_holds_the_lock_is_left_alone(tmp_path):
    path, db = tmp_path / "tasks.toml", tmp_path / "history.db"
    path.write_bytes(b"[tasks.old]\n")
    with HistoryStore(db) as store:
        journal(store, path)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the renamer at work, between its steps
        with HistoryStore(db) as store:
            assert store.renames_after(0)[0].outcome is None
    finally:
        os.close(fd)
    with HistoryStore(db) as store:
        assert store.renames_after(0)[0].outcome == "dropped"


def test_stragglers_are_renamed(store, tmp_path):
    store.finish_rename(journal(store, tmp_path / "t.toml"))
    add_run(store, "old")  # serve started it under the old name before its reload
    assert store.rename_stragglers("old", "new") == 1
    assert store.runs("old") == [] and len(store.runs("new")) == 1
