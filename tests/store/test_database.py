"""Opening the history database, its errors and transactions (cronctl/store/database.py)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from cronctl.errors import StoreError
from cronctl.records import Status, Trigger
from cronctl.store import SCHEMA_VERSION, HistoryStore, from_ms, move_aside, to_ms

from .support import T0, add_run, schema_version


def test_file_is_private_wal_and_versioned(tmp_path):
    path = tmp_path / "state" / "history.db"
    with HistoryStore(path) as opened:
        add_run(opened)
        assert schema_version(path) == SCHEMA_VERSION
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    raw.close()


def test_not_a_database(tmp_path):
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not sqlite, it is a note to self\n" * 100)
    with pytest.raises(StoreError, match="is not a cronctl history database"):
        HistoryStore(path)
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_locked_database_waits_then_says_so(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1], isolation_level=None);"
            " db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with HistoryStore(path, timeout=0.3) as opened:
            began = time.monotonic()
            with pytest.raises(StoreError, match="locked by another process"):
                opened.start_run("a", "manual", started_at=T0)
            assert time.monotonic() - began >= 0.25
    finally:
        holder.kill()
        holder.wait()


def test_read_only_database_is_a_clear_error(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    uri = f"file:{path}?mode=ro"
    opened = HistoryStore(path)
    opened._db.close()
    opened._db = sqlite3.connect(uri, uri=True, isolation_level=None)
    with pytest.raises(StoreError, match="read-only"):
        opened.start_run("a", "manual", started_at=T0)
    opened.close()


def test_times_are_milliseconds_since_the_epoch():
    assert to_ms(T0) == 1772366400000 and from_ms(1772366400000) == T0
    assert from_ms(to_ms(T0 + timedelta(microseconds=1499))) == T0 + timedelta(milliseconds=1)
    assert to_ms(None) is None and from_ms(None) is None
    with pytest.raises(ValueError, match="naive"):
        to_ms(T0.replace(tzinfo=None))


def test_a_failed_write_leaves_no_transaction_open(store):
    with pytest.raises(RuntimeError), store._write() as db:
        db.execute("INSERT INTO runs (task, trigger, status) VALUES ('a', 'manual', 'running')")
        raise RuntimeError("interrupted")
    assert not store._db.in_transaction
    assert store.runs() == []
    store.start_run("a", Trigger.MANUAL, started_at=T0, status=Status.SKIPPED)


def test_check_writable(tmp_path):
    with HistoryStore(tmp_path / "history.db") as store:
        store.check_writable()
    with HistoryStore(":memory:") as store:
        store.read_only = True
        with pytest.raises(StoreError, match="read-only"):
            store.check_writable()


def test_move_aside_keeps_the_sidecars_together(tmp_path):
    path = tmp_path / "history.db"
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"history.db{suffix}").write_text(suffix or "main")
    first = move_aside(path, T0)
    assert first.name == "history.db.corrupt-20260301T120000Z"
    assert (tmp_path / "history.db.corrupt-20260301T120000Z-wal").read_text() == "-wal"
    assert not path.exists() and not (tmp_path / "history.db-shm").exists()
    path.write_text("again")
    assert move_aside(path, T0).name == "history.db.corrupt-20260301T120000Z-2"
