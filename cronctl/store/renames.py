"""The journal of `cronctl rename` and the rename of a task's history rows.

A rename changes two things that no transaction spans: the task file and the database. The
journal makes it one step (docs/reliability.md#renaming-a-task):

1. `begin_rename` writes an open row: OLD, NEW, the task file's path, its SHA-256 before and
   after the rename;
2. the task file is replaced atomically (cronctl.taskfile, under its lock);
3. `finish_rename` renames every row keyed by the task's name (`runs`, `acks`) and closes the
   journal row, in one transaction.

A process killed between 1 and 3 leaves the row open. Whoever opens the store next
(`settle_open_renames`, called by `HistoryStore` on every writable open: any command, serve)
looks at the file: it has the text after the rename, or NEW and no OLD, so step 2 happened and
step 3 is done now; otherwise the file was not replaced and the row is dropped. The renamer
holds the task file's lock from 1 to 3, and a row is settled only by whoever can take that lock:
a rename still in progress is never judged from outside.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from cronctl.errors import StoreError
from cronctl.records import Rename
from cronctl.store.database import Database, to_ms

RENAMED = "renamed"
DROPPED = "dropped"


def digest(data: bytes | None) -> str:
    """The journal's fingerprint of a task file's bytes (None: no file)."""
    import hashlib  # OpenSSL's, 2 ms: only a rename needs it (docs/architecture.md, start-up)

    return "" if data is None else hashlib.sha256(data).hexdigest()


class RenameStore(Database):
    """`Renames` of cronctl.history in SQLite."""

    def begin_rename(
        self,
        old: str,
        new: str,
        *,
        tasks_file: str,
        digest_before: str,
        digest_after: str,
        now: datetime,
    ) -> int:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO renames (old, new, tasks_file, digest_before, digest_after,"
                " started_at) VALUES (?, ?, ?, ?, ?, ?)",
                (old, new, tasks_file, digest_before, digest_after, to_ms(now)),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def finish_rename(self, rename_id: int) -> Rename:
        try:
            with self._write() as db:
                row = db.execute(
                    "SELECT old, new, outcome, runs FROM renames WHERE id = ?", (rename_id,)
                ).fetchone()
                if row is None:
                    raise StoreError(f"no rename with id {rename_id} in the journal")
                old, new, outcome, runs = row
                if outcome is not None:  # settled already
                    return Rename(rename_id, old, new, outcome, runs)
                runs = db.execute("UPDATE runs SET task = ? WHERE task = ?", (new, old)).rowcount
                db.execute("UPDATE OR REPLACE acks SET task = ? WHERE task = ?", (new, old))
                db.execute(
                    "UPDATE renames SET outcome = ?, runs = ? WHERE id = ?",
                    (RENAMED, runs, rename_id),
                )
                return Rename(rename_id, old, new, RENAMED, runs)
        except sqlite3.IntegrityError:
            # Two first attempts of one slot under one name: NEW had runs of its own, which
            # `rename` refuses before it begins; nothing was changed.
            raise StoreError(
                f"cannot rename the history of rename {rename_id}: the new name has runs"
                " of the same slots",
                hint="see `cronctl history`",
            ) from None

    def drop_rename(self, rename_id: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE renames SET outcome = ? WHERE id = ? AND outcome IS NULL",
                (DROPPED, rename_id),
            )

    def history_rows(self, task: str) -> int:
        with self._guard():
            row = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM runs WHERE task = ?)"
                " + (SELECT COUNT(*) FROM acks WHERE task = ?)",
                (task, task),
            ).fetchone()
        return int(row[0])

    def renames_after(self, rename_id: int) -> list[Rename]:
        with self._guard():
            rows = self._db.execute(
                "SELECT id, old, new, outcome, runs FROM renames WHERE id > ? ORDER BY id",
                (rename_id,),
            ).fetchall()
        return [Rename(*row) for row in rows]

    def rename_stragglers(self, old: str, new: str) -> int:
        with self._write() as db:
            count = db.execute("UPDATE runs SET task = ? WHERE task = ?", (new, old)).rowcount
            db.execute("UPDATE OR REPLACE acks SET task = ? WHERE task = ?", (new, old))
        return int(count)

    def settle_open_renames(self) -> list[Rename]:
        """Finish or drop the journal rows a killed `rename` left open (see the module
        docstring); return what was settled. A read-only store settles nothing."""
        if self.read_only:
            return []
        with self._guard():
            rows = self._db.execute(
                "SELECT id, old, new, tasks_file, digest_before, digest_after FROM renames"
                " WHERE outcome IS NULL ORDER BY id"
            ).fetchall()
        settled = []
        for rename_id, old, new, path, before, after in rows:
            with lock_if_free(path) as free:
                if not free:
                    continue  # its renamer is still at work
                if file_was_renamed(path, before, after, old, new):
                    settled.append(self.finish_rename(rename_id))
                else:
                    self.drop_rename(rename_id)
                    settled.append(Rename(rename_id, old, new, DROPPED))
        return settled


@contextlib.contextmanager
def lock_if_free(tasks_file: str) -> Iterator[bool]:
    """Hold the task file's write lock (cronctl.taskfile.locked) if no one holds it; yield
    whether it is held by us. Unlike `locked`, it never creates the lock file or its folder:
    opening the history must not write beside the task file."""
    from cronctl.taskfile import lock_path  # only when a rename was left open

    try:
        fd = os.open(lock_path(Path(tasks_file)), os.O_RDWR)
    except FileNotFoundError:
        yield True  # no lock file: no writer
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def file_was_renamed(path: str, before: str, after: str, old: str, new: str) -> bool:
    """Whether the task file was replaced by the rename: its bytes are the renamed text, or
    (edited since) it has NEW and no OLD. Read as every command reads it (a regular file, at
    most taskfile.MAX_BYTES): a file swapped for a FIFO must not hang the opening of the store."""
    from cronctl.errors import TaskFileError
    from cronctl.taskfile import snapshot

    try:
        data = snapshot(Path(path), regular_only=True)
    except TaskFileError:
        return False
    if data is None:
        return False
    found = digest(data)
    if found in (before, after):
        return found == after
    try:
        tasks = tomllib.loads(data.decode("utf-8")).get("tasks", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(tasks, dict) and new in tasks and old not in tasks
