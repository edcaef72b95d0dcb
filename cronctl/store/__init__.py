"""The run history in SQLite: the one package that speaks SQL.

`HistoryStore` implements every protocol of `cronctl.history` (the seam a second backend, a
shared PostgreSQL database, implements again). It is assembled from one class per reader,
each in its own module with its own SQL, all over one base class that owns the connection:

    Database          database.py     opening, PRAGMAs, read-only fallbacks, damage checks,
    |                                 sqlite3 errors -> typed StoreErrors, `_guard`/`_write`
    +-- RunStore      runs.py         RunRecorder, RunReader; rows -> `Run`
    |   +-- HealthStore     stats.py      HealthReader (list, show, status, metrics)
    |   +-- RetentionStore  retention.py  Retention (prune, remove --purge, checkpoint)
    |   +-- SkipStore       skips.py      a run of `when` skips kept as one row
    +-- ServeStateStore     serve_state.py  ServeStateRecorder (one serve row per host)
    +-- AckStore            acks.py         Acknowledgements (`cronctl ack`)
    +-- RenameStore         renames.py      Renames: `cronctl rename`'s journal, settled on open
    +-- DefinitionStore     definitions.py  TaskDefinitions: what each host's serve runs
    schema.py: tables, indexes, application id and the migrations `Database` applies

Why subclasses and not parts held by the store: every part shares one connection and one
transaction discipline (`_guard`, `_write`), and `HistoryStore` must offer the protocols'
methods with their exact signatures, which forwarding would repeat method by method. The two
parts that read runs to do their work (the newest run of `task_stats`, the task names `prune`
walks) derive from `RunStore`; the others from `Database` alone. Each module can be read, and
is tested, by itself (tests/store/test_<module>.py; this one's in test_history_store.py).

Requires SQLite 3.35 or newer (`UPDATE ... RETURNING`, see runs.py).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cronctl.errors import (
    DamagedDatabaseError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabasePathAtStartError,
    DatabasePathError,
    ReadOnlyDatabaseError,
    SlotTakenError,
)
from cronctl.store.acks import AckStore
from cronctl.store.database import (
    BUSY_TIMEOUT,
    Database,
    from_ms,
    move_aside,
    to_ms,
)
from cronctl.store.definitions import DefinitionStore
from cronctl.store.renames import RenameStore
from cronctl.store.retention import PRUNE_CHUNK, VACUUM_CHUNK, RetentionStore
from cronctl.store.runs import RunStore
from cronctl.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from cronctl.store.serve_state import ServeStateStore
from cronctl.store.skips import SkipStore
from cronctl.store.stats import HealthStore

if TYPE_CHECKING:
    from cronctl.history import History, ServeHistory


class HistoryStore(
    HealthStore,
    RetentionStore,
    SkipStore,
    ServeStateStore,
    AckStore,
    RenameStore,
    DefinitionStore,
):
    """Runs recorded in SQLite: every reader's part (see the module docstring), one connection.
    `HistoryStore(":memory:")` for tests; opening, read-only fallbacks and the errors it
    raises are `Database`'s. Opening a writable store settles a rename a killed `cronctl
    rename` left half done (`RenameStore.settle_open_renames`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = BUSY_TIMEOUT,
        tasks_file: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(path, timeout=timeout, tasks_file=tasks_file)
        try:
            self.settle_open_renames()
        except BaseException:
            self.close()
            raise


if TYPE_CHECKING:

    def _implements_history(store: HistoryStore) -> History:
        return store  # mypy checks here that HistoryStore satisfies every protocol

    def _implements_serve_history(store: HistoryStore) -> ServeHistory:
        return store  # and what serve needs beyond them


def open_for_serve(
    path: str | os.PathLike[str],
    *,
    now: datetime,
    tasks_file: str | os.PathLike[str] | None = None,
) -> tuple[HistoryStore, Path | None]:
    """Open the history for `serve`: writable, sound, else moved aside and started anew.

    Returns the store and, when the file was damaged, where it was moved
    (`history.db.corrupt-<UTC time>`, with its `-wal` and `-shm`); the caller logs that
    loudly. A read-only database, a full disk, a lock held past the busy timeout and a
    schema from a newer cronctl raise StoreError: moving those aside would lose history. A
    path that is no history at all (the task file, a file without SQLite's header, a folder, a
    FIFO, a device) raises DatabasePathAtStartError (exit 78) and is never touched.
    The caller must hold the serve lock (no other serve uses the file).
    """
    path = os.fspath(path)
    try:
        store = HistoryStore(path, tasks_file=tasks_file)
        try:
            problems = store.quick_check()
            if problems:
                raise DamagedDatabaseError(
                    f"{path} is damaged: {'; '.join(problems[:3])}", hint=None
                )
        except BaseException:
            store.close()
            raise
    except DatabasePathError as exc:
        raise DatabasePathAtStartError(exc.message, hint=exc.hint) from None
    except DamagedDatabaseError:
        try:
            moved = move_aside(path, now)
        except DatabasePathError as exc:  # the file changed under us: still never moved
            raise DatabasePathAtStartError(exc.message, hint=exc.hint) from None
        return HistoryStore(path), moved
    try:
        store.check_writable()  # can serve record runs at all?
    except BaseException:
        store.close()
        raise
    return store, None


__all__ = [
    "APPLICATION_ID",
    "AckStore",
    "BUSY_TIMEOUT",
    "MIGRATIONS",
    "PRUNE_CHUNK",
    "SCHEMA_VERSION",
    "VACUUM_CHUNK",
    "DamagedDatabaseError",
    "Database",
    "DefinitionStore",
    "DatabaseFullError",
    "DatabaseLockedError",
    "DatabasePathAtStartError",
    "DatabasePathError",
    "HealthStore",
    "HistoryStore",
    "ReadOnlyDatabaseError",
    "RenameStore",
    "RetentionStore",
    "RunStore",
    "ServeStateStore",
    "SlotTakenError",
    "from_ms",
    "move_aside",
    "open_for_serve",
    "to_ms",
]
