"""The Notifier's way to the history: what it reads (a task's latest runs, for failure
streaks) and where it records a notification's failure.

It reads and writes through its own connection to the database, opened from its path on
first use (a HistoryStore is one sqlite3 connection: the notifier's workers take turns). A
failure can instead be recorded through the caller's writer (`record_error`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from cronctl.history import History
from cronctl.records import Run
from cronctl.store.opening import open_store


class HistoryLink:
    """`database`: the path of the history database; None reads and records nothing.
    `record_error(run_id, message)`: how to record a failure on a run, instead of
    `record_notify_error` through the own connection. Its methods raise CronctlError."""

    def __init__(
        self,
        database: str | os.PathLike[str] | None,
        record_error: Callable[[int, str], None] | None = None,
    ) -> None:
        self._database = database
        self._record_error = record_error
        self._store: History | None = None
        self._lock = threading.Lock()

    def runs(self, task: str, limit: int) -> list[Run] | None:
        """The latest `limit` runs of `task`, newest first; None without a database."""
        with self._lock:
            store = self._open()
            if store is None:
                return None
            return store.runs(task, limit=limit)

    def record_error(self, run_id: int, message: str) -> None:
        """Record `message` as the notification error of run `run_id`."""
        if self._record_error is not None:
            self._record_error(run_id, message)
            return
        with self._lock:
            store = self._open()
            if store is not None:
                store.record_notify_error(run_id, message)

    def close(self) -> None:
        """Close the own connection, if open (a later use opens it again)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
            self._store = None

    def _open(self) -> History | None:
        if self._store is None and self._database is not None:
            self._store = open_store(self._database)
        return self._store
