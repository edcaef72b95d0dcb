"""Acknowledgements in the store (cronctl/store/acks.py) and the upgrade to schema 6."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from cronctl.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore

from .support import T0, add_run, schema_version


def test_an_ack_is_stored_read_back_and_replaced_by_the_next(store):
    assert store.acks() == {}
    first = store.acknowledge("backup", at=T0, by="alice", note="disk full")
    assert store.acks() == {"backup": first}
    assert (first.task, first.at, first.by, first.note) == ("backup", T0, "alice", "disk full")
    later = store.acknowledge("backup", at=T0 + timedelta(hours=1))
    assert store.acks() == {"backup": later} and later.by is None and later.note is None


def test_an_ack_changes_no_run(store):
    run_id = add_run(store, "backup", "failed")
    before = store.run_counts()
    store.acknowledge("backup", at=T0 + timedelta(minutes=1))
    assert store.run_counts() == before == {"backup": (1, 1)}
    assert store.get_run(run_id).status == "failed"


def test_migration_from_schema_5_keeps_runs_and_adds_acks_and_the_journal(tmp_path):
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:5]:
        old.executescript(script)
    old.execute("PRAGMA user_version = 5")
    old.execute(
        "INSERT INTO runs (task, trigger, started_at, finished_at, status)"
        " VALUES ('legacy', 'manual', 1, 2, 'failed')"
    )
    old.close()
    assert SCHEMA_VERSION == 9
    with HistoryStore(path) as opened:
        assert schema_version(path) == 9
        [run] = opened.runs("legacy")
        assert run.status == "failed"
        opened.acknowledge("legacy", at=T0, by="bob")
        assert opened.acks()["legacy"].by == "bob"
        assert opened.renames_after(0) == []
    with HistoryStore(path) as again:  # opened again: no second migration
        assert again.acks()["legacy"].at == T0


def test_remove_purge_deletes_the_ack_with_the_runs(store):
    add_run(store, "backup", "failed")
    store.acknowledge("backup", at=T0)
    store.acknowledge("other", at=T0)
    assert store.delete_task_runs("backup") == 1
    assert set(store.acks()) == {"other"} and store.history_rows("backup") == 0
