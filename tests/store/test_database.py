"""Opening the history database, its errors and transactions (cronctl/store/database.py)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from cronctl.errors import DatabasePathAtStartError, DatabasePathError, ExitCode, StoreError
from cronctl.records import Status, Trigger
from cronctl.store import (
    SCHEMA_VERSION,
    HistoryStore,
    from_ms,
    move_aside,
    open_for_serve,
    to_ms,
)
from cronctl.store.database import SQLITE_HEADER, check_database_path

from .support import T0, add_run, in_transaction, schema_version


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
    assert not in_transaction(store)
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
        # the main file starts with SQLite's header: only such a file is ever moved (h9)
        (tmp_path / f"history.db{suffix}").write_bytes(
            (suffix or "main").encode() if suffix else SQLITE_HEADER + b"main"
        )
    first = move_aside(path, T0)
    assert first.name == "history.db.corrupt-20260301T120000Z"
    assert (tmp_path / "history.db.corrupt-20260301T120000Z-wal").read_text() == "-wal"
    assert not path.exists() and not (tmp_path / "history.db-shm").exists()
    path.write_bytes(b"")  # an empty file is moved too
    assert move_aside(path, T0).name == "history.db.corrupt-20260301T120000Z-2"


# ---------------------------------------------------------------------------------------------
# h9: only a SQLite file (or an empty one) is ever opened as the history, or moved aside


def _make_refused(kind: str, folder):
    """Create what `kind` names in `folder`; return (database path, task file path)."""
    tasks = folder / "tasks.toml"
    tasks.write_text('[tasks.a]\nschedule = "@daily"\ncommand = "true"\n')
    if kind == "the task file":
        return tasks, tasks
    if kind == "the task file, empty":
        tasks.write_text("")
        return tasks, tasks
    if kind == "a link to the task file":
        link = folder / "history.db"
        link.symlink_to(tasks)
        return link, tasks
    if kind == "a hard link to the task file":
        link = folder / "history.db"
        os.link(tasks, link)
        return link, tasks
    path = folder / "history.db"
    if kind == "a text file":
        path.write_text("my notes\n")
    elif kind == "random bytes":
        path.write_bytes(b"\x00garbage" + os.urandom(4096))
    elif kind == "a folder":
        path.mkdir()
    elif kind == "a FIFO":
        os.mkfifo(path)
    else:
        raise ValueError(kind)
    return path, tasks


REFUSED = [
    "the task file",
    "the task file, empty",
    "a link to the task file",
    "a hard link to the task file",
    "a text file",
    "random bytes",
    "a folder",
    "a FIFO",
]


def _snapshot(folder):
    found = {}
    for path in sorted(folder.iterdir()):
        info = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[path.name] = (stat.S_IFMT(info.st_mode), data)
    return found


@pytest.mark.parametrize("kind", REFUSED)
def test_h9_what_is_no_history_is_refused_and_left_untouched(kind, tmp_path):
    """Decided: the task file (also through a link), a file without SQLite's header, a folder
    and a FIFO are refused before anything is opened: DatabasePathError (exit 2) for the
    store, DatabasePathAtStartError (exit 78) from open_for_serve, never moved aside; the
    folder is exactly as it was. Before: open_for_serve moved any such file aside as damaged
    and created a database in its place."""
    path, tasks = _make_refused(kind, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(DatabasePathError) as refused:
        HistoryStore(path, tasks_file=tasks)
    assert refused.value.exit_code == ExitCode.USAGE
    assert str(path) in refused.value.message
    with pytest.raises(DatabasePathAtStartError) as at_start:
        open_for_serve(path, now=T0, tasks_file=tasks)
    assert at_start.value.exit_code == ExitCode.CONFIG
    if not kind.startswith(("the task file", "a link", "a hard link")):
        with pytest.raises(DatabasePathError):
            move_aside(path, T0)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["missing", "empty", "a history"])
def test_h9_a_missing_file_an_empty_one_or_a_history_may_be_opened(kind, tmp_path):
    path = tmp_path / "history.db"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "a history":
        HistoryStore(path).close()
    check_database_path(path, tasks_file=tmp_path / "tasks.toml")
    with HistoryStore(path, tasks_file=tmp_path / "tasks.toml") as opened:
        assert opened.runs() == []
    assert path.read_bytes().startswith(SQLITE_HEADER)


def test_h9_a_device_is_refused(tmp_path):
    with pytest.raises(DatabasePathError, match="a device"):
        check_database_path("/dev/null")
