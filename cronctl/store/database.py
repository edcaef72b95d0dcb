"""The connection to the history database: opening, damage checks, read-only fallbacks, errors.

SQLite in WAL mode so that `serve` writes while the CLI reads. Every write is one short
`BEGIN IMMEDIATE` transaction (a deferred transaction that reads and then writes fails at
once with "database is locked" instead of waiting for the busy timeout). Times are stored as
integer milliseconds since the Unix epoch, UTC (`to_ms`, `from_ms`).

`Database` is the base of every reader's part of `HistoryStore` (see the package docstring):
it owns the connection `_db`, `_guard` (a sqlite3 error becomes one of the typed StoreErrors
below, with the database's path and a hint) and `_write` (one write transaction).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Self, TypeVar, overload
from urllib.parse import quote

from cronctl.errors import (
    DamagedDatabaseError,
    DatabaseFullError,
    DatabaseLockedError,
    ReadOnlyDatabaseError,
    StoreError,
)
from cronctl.locations import MEMORY, ensure_private_dir, host_name
from cronctl.store import schema
from cronctl.store.paths import SQLITE_HEADER as SQLITE_HEADER  # where the tests look for it
from cronctl.store.paths import check_database_path, not_sqlite_error

BUSY_TIMEOUT = 5.0
C = TypeVar("C")  # a store's connection (sqlite3's, psycopg's)
"""The first 16 bytes of every SQLite database file (sqlite.org/fileformat.html)."""

# Primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF, Python 3.11+).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


@overload
def to_ms(moment: datetime) -> int: ...
@overload
def to_ms(moment: datetime | None) -> int | None: ...
def to_ms(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the history store")
    return round(moment.timestamp() * 1000)


@overload
def from_ms(value: int) -> datetime: ...
@overload
def from_ms(value: int | None) -> datetime | None: ...
def from_ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class _Unusable(StoreError):
    """SQLite cannot open or extend a file it needs (CANTOPEN, IOERR): a read-only folder, or
    a disk without room for the `-shm` file."""


# The errors after which a database opened for writing is opened again for reading only.
_CANNOT_WRITE = (ReadOnlyDatabaseError, DatabaseFullError, _Unusable)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


class Batch(Generic[C]):
    """The state of a `batch` transaction, in either store (PgDatabase's too)."""

    __slots__ = ("failed", "open")

    def __init__(self) -> None:
        self.open = False  # BEGIN done: writes join the transaction
        self.failed: BaseException | None = None  # the first write inside that failed

    @contextlib.contextmanager
    def join(
        self, guard: Callable[[], contextlib.AbstractContextManager[None]], connection: C
    ) -> Iterator[C]:
        """A write inside the open batch, on its connection: after a failed write every later
        one raises that failure, and a write's own failure fails the batch (all or nothing)."""
        if self.failed is not None:
            raise self.failed
        try:
            with guard():
                yield connection
        except BaseException as exc:
            self.failed = exc
            raise


class Database:
    """One connection to the history database. `Database(":memory:")` for tests.

    Opening never needs to write when the file cannot be written: a read-only file or folder,
    or a full disk that has no room for SQLite's `-shm` file, gives a read-only store
    (`read_only` is then True) on which every query works and every write raises a
    StoreError that says why. A path that must never become a history raises
    DatabasePathError, and nothing is written to it: the task file given as `tasks_file`, a
    folder, a FIFO or a device before anything is opened (`check_database_path`), a file
    without SQLite's header when SQLite refuses to read it (`not_sqlite_error`). A SQLite file
    that is not a readable database raises DamagedDatabaseError; a schema from a newer
    cronctl is refused before anything is written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = BUSY_TIMEOUT,
        tasks_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self.host = host_name()  # written into each run row this store starts
        self.read_only = False
        self._batch: Batch[sqlite3.Connection] | None = (
            None  # inside `batch`: the transaction writes join
        )
        self.read_only_cause: StoreError | None = None
        if self.path == MEMORY:
            self._open()
            return
        check_database_path(self.path, tasks_file=tasks_file)
        try:
            self._open()
        except DamagedDatabaseError:
            # Read only now, with no connection of ours open on the file: closing any
            # descriptor of a file drops every SQLite lock this process holds on it.
            refused = not_sqlite_error(self.path)
            if refused is not None:  # never SQLite's: refused, never "damaged" (h9)
                raise refused from None
            raise

    def _open(self) -> None:
        try:
            if self.path != MEMORY:
                _create_private(Path(self.path))
            self._db = self._connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            unwritable = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC)
            if (
                isinstance(exc, OSError)
                and exc.errno in unwritable
                and not os.path.exists(self.path)
            ):
                # No history yet, and none can be made: an empty history to read.
                self._empty_read_only(self._diagnosed() or self._readonly_error())
                return
            raise StoreError(
                f"cannot open the history database {self.path}: {_reason(exc)}",
                hint="check that its folder exists and is writable,"
                " or choose another place with --db or CRONCTL_DB",
            ) from None
        try:
            self._migrate(self._configure())
        except _CANNOT_WRITE as exc:
            self._db.close()
            self._open_read_only(exc)
        except StoreError:
            self._db.close()
            raise
        else:
            if self.path != MEMORY and not os.access(self.path, os.W_OK):
                # SQLite opened a read-only file for reading by itself.
                self.read_only = True
                self.read_only_cause = self._readonly_error()

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        return sqlite3.connect(
            target, timeout=self.timeout, isolation_level=None, check_same_thread=False, uri=uri
        )

    def _open_read_only(self, cause: StoreError) -> None:
        """Open the file for reading only, after a read-write open could not write.

        `mode=ro` reads a WAL database as long as SQLite can use its `-shm` file; when that
        file cannot be created either (read-only folder, full disk), `immutable=1` reads the
        file without it, which is exact only when no `-wal` holds changes: otherwise we refuse
        rather than show a history without its latest runs.
        """

        base = "file:" + quote(os.path.abspath(self.path))
        attempts = [base + "?mode=ro"]
        wal = Path(self.path + "-wal")
        if not (wal.exists() and wal.stat().st_size > 0):
            attempts.append(base + "?mode=ro&immutable=1")
        for target in attempts:
            try:
                self._db = self._connect(target, uri=True)
            except sqlite3.Error:
                continue
            self.read_only = True
            self.read_only_cause = cause
            try:
                version = self._check_owner()
            except _CANNOT_WRITE:
                self._db.close()
                continue
            except StoreError:
                self._db.close()
                raise
            if version == 0:  # an empty file: an empty history
                self._db.close()
                self._empty_read_only(cause)
                return
            self._db.execute("PRAGMA query_only = ON")
            if version < schema.SCHEMA_VERSION:
                self._db.close()
                raise ReadOnlyDatabaseError(
                    f"the history database {self.path} needs an upgrade of its schema"
                    f" (from {version} to {schema.SCHEMA_VERSION}) but cannot be written:"
                    f" {cause.message}",
                    hint=cause.hint,
                )
            return
        raise cause

    def _empty_read_only(self, cause: StoreError) -> None:
        """Stand in for a history that does not exist and cannot be created: no runs, and
        every write raises `cause`'s kind of error."""
        self._db = self._connect(MEMORY)
        saved, self.path = self.path, MEMORY
        try:
            self._migrate(self._configure())
        finally:
            self.path = saved
        self._db.execute("PRAGMA query_only = ON")
        self.read_only = True
        self.read_only_cause = cause

    # -- connection ------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- errors ----------------------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (_BUSY, _LOCKED) or "locked" in text or "busy" in text:
            return DatabaseLockedError(
                f"the history database {self.path} is locked by another process"
                f" (waited {self.timeout:g}s)",
                hint="try again; if it persists, look for a stuck cronctl process",
            )
        if code in (_CORRUPT, _NOTADB) or "not a database" in text or "malformed" in text:
            return DamagedDatabaseError(
                f"{self.path} is not a cronctl history database, or it is damaged ({text})",
                hint=(
                    "`cronctl serve` moves a damaged history aside (to history.db.corrupt-<time>)"
                    " and starts a new one; or move it aside yourself"
                ),
            )
        if code == _READONLY or "readonly" in text:
            cause = self.read_only_cause
            if self.read_only and cause is not None:  # opened read-only because of `cause`
                return type(cause)(cause.message, hint=cause.hint)
            return self._readonly_error()
        if code == _FULL or "full" in text:
            return self._full_error()
        if code in (_CANTOPEN, _IOERR):
            # SQLite cannot create or grow a file: say why when the file system tells.
            return self._diagnosed() or _Unusable(
                f"cannot use the history database {self.path}: {text}",
                hint="check that its folder is writable and the disk has room",
            )
        return StoreError(f"history database error ({self.path}): {text}")

    def _diagnosed(self) -> StoreError | None:
        """Return the read-only or full-disk error the database's file system explains."""
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            fs = os.statvfs(folder)
        except OSError:
            return None
        if fs.f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK):
            return self._readonly_error()
        if fs.f_bavail * fs.f_frsize < 256 * 1024:
            return self._full_error()
        return None

    def _readonly_error(self) -> ReadOnlyDatabaseError:
        return ReadOnlyDatabaseError(
            f"the history database {self.path} is read-only",
            hint="make the file and its folder writable,"
            " or choose another place with --db or CRONCTL_DB",
        )

    def _full_error(self) -> DatabaseFullError:
        return DatabaseFullError(
            f"the disk holding {self.path} is full",
            hint="free some space on that file system; nothing was recorded",
        )

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write made inside (serve's group commit of the pids and
        ends that wait together: docs/performance.md, "Serve's hot path after issue 18").

        All or nothing: when any write inside fails, even one its method would recover from
        on its own (the end of a run recorded without its output on a full disk), every later
        write inside raises, the whole batch is rolled back, and the caller does the writes
        again one by one. Not reentrant; writes of other threads must not run meanwhile."""
        self._batch = Batch()
        try:
            with self._write():
                self._batch.open = True
                yield
                if self._batch.failed is not None:
                    raise self._batch.failed
        finally:
            self._batch = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        batch = self._batch
        if batch is not None and batch.open:
            with batch.join(self._guard, self._db) as db:
                yield db
            return
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (a full disk): never leave a transaction open,
                # or every later write fails with "cannot start a transaction within a
                # transaction".
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def check_writable(self) -> None:
        """Raise the StoreError that keeps this database from recording runs, if any (an
        empty write transaction: the lock, the file and its folder are all tried)."""
        if self.read_only:
            raise self.read_only_cause or self._readonly_error()
        with self._write():
            pass

    # -- schema ----------------------------------------------------------------------------

    def _check_owner(self) -> int:
        """Refuse a SQLite file that belongs to another program (never migrate into it), or a
        schema from a newer cronctl; return the schema version."""
        with self._guard():
            app_id, version, tables = schema.read_header(self._db)
        if not schema.is_ours(app_id, version, tables):
            raise StoreError(
                f"{self.path} is a SQLite database of another program,"
                " not a cronctl history database",
                hint="choose another place with --db or CRONCTL_DB; the file was not changed",
            )
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"the history database {self.path} was created by a newer cronctl"
                f" (schema {version}; this cronctl knows {schema.SCHEMA_VERSION})",
                hint="upgrade cronctl; the database was not changed",
            )
        return version

    def _configure(self) -> int:
        """Set the connection up; return the schema version found."""
        # Read-only checks first: nothing is written to a file we are going to refuse.
        version = self._check_owner()
        with self._guard():
            self._db.execute("PRAGMA foreign_keys = ON")
            if version == 0 and self.path != MEMORY:
                # auto_vacuum must be chosen before the first table exists.
                self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if self.path != MEMORY:
                mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    if mode != "wal":  # SQLite says so instead of raising (read-only file)
                        raise self._readonly_error()
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA journal_size_limit = 8388608")
        return version

    def _migrate(self, version: int) -> None:
        if version == schema.SCHEMA_VERSION:
            return
        with self._write() as db:
            schema.migrate(db)

    def quick_check(self) -> list[str]:
        """Return the problems `PRAGMA quick_check` finds (empty when the file is sound).

        O(size of the file), about 0.3 s per million runs when cached; the retention rules
        keep the history far smaller. Raises DamagedDatabaseError when SQLite cannot even
        read the file's structure."""
        with self._guard():
            rows = [str(r[0]) for r in self._db.execute("PRAGMA quick_check").fetchall()]
        return [] if rows == ["ok"] else rows


def move_aside(path: str | os.PathLike[str], now: datetime) -> Path:
    """Rename a damaged database and its `-wal` and `-shm` files to `<name>.corrupt-<UTC>`
    (SQLite can still open the moved copy with its WAL, for whoever wants to rescue rows).

    Only a regular file that starts with SQLite's header, or is empty, is ever moved: anything
    else raises DatabasePathError and stays where it is."""
    check_database_path(path)
    refused = not_sqlite_error(path)
    if refused is not None:
        raise refused
    source = Path(path)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = source.with_name(f"{source.name}.corrupt-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = source.with_name(f"{source.name}.corrupt-{stamp}-{number}")
    try:
        for suffix in ("-wal", "-shm", ""):  # the main file last: its name is the marker
            sidecar = Path(f"{source}{suffix}")
            if sidecar.exists():
                os.replace(sidecar, f"{target}{suffix}")
    except OSError as exc:
        raise StoreError(
            f"the history database {source} is damaged and cannot be moved aside: {exc.strerror}",
            hint=f"move it away yourself (mv {source} {target})",
        ) from None
    return target


def _create_private(path: Path) -> None:
    """Create the database file 0600 in a 0700 folder before SQLite opens it."""
    ensure_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
