"""The history store: the one module that speaks SQL.

SQLite in WAL mode so that `serve` writes while the CLI reads. Every write is one short
`BEGIN IMMEDIATE` transaction (a deferred transaction that reads and then writes fails at
once with "database is locked" instead of waiting for the busy timeout). Times are stored as
integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cronctl.errors import StoreError, UnknownRunError
from cronctl.locations import MEMORY, ensure_private_dir
from cronctl.records import (
    FAILURE_STATUSES,
    FINISHED_STATUSES,
    SLOT_TRIGGERS,
    Output,
    Run,
    ServeState,
    Status,
    TaskStats,
)

APPLICATION_ID = 0x63726F6E  # "cron": lets `file` and tools recognise the database
BUSY_TIMEOUT = 5.0
PRUNE_CHUNK = 1000
"""Runs deleted per write transaction by `prune` (sorted by id: ~5-20 ms each)."""
VACUUM_CHUNK = 500
"""Free pages given back per write transaction by `prune`'s incremental vacuum."""

# Primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF, Python 3.11+).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26

_SLOT_TRIGGERS_SQL = ", ".join(f"'{t}'" for t in SLOT_TRIGGERS)
_FAILURES_SQL = ", ".join(f"'{s}'" for s in FAILURE_STATUSES)

# Each entry upgrades the schema by one version; `PRAGMA user_version` says how many ran.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs and their captured output (kept apart so that listing runs never reads blobs).
    f"""
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        task TEXT NOT NULL,
        trigger TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        scheduled_at INTEGER,
        started_at INTEGER,
        finished_at INTEGER,
        duration_ms INTEGER,
        status TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        pid INTEGER,
        reason TEXT
    );
    CREATE TABLE run_output (
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        stdout BLOB,
        stderr BLOB,
        stdout_bytes INTEGER NOT NULL DEFAULT 0,
        stderr_bytes INTEGER NOT NULL DEFAULT 0,
        stdout_dropped INTEGER NOT NULL DEFAULT 0,
        stderr_dropped INTEGER NOT NULL DEFAULT 0
    );
    -- Exactly once per slot: one first attempt per (task, scheduled instant).
    CREATE UNIQUE INDEX runs_slot ON runs(task, scheduled_at)
        WHERE scheduled_at IS NOT NULL AND attempt = 1 AND trigger IN ({_SLOT_TRIGGERS_SQL});
    -- Runs of a task, newest first.
    CREATE INDEX runs_task_started ON runs(task, started_at DESC, id DESC);
    -- All runs newest first, and failures since T.
    CREATE INDEX runs_started ON runs(started_at DESC, id DESC);
    CREATE INDEX runs_failures ON runs(started_at) WHERE status IN ({_FAILURES_SQL});
    """,
    # 2: serve's heartbeat, and the outcome of notifications on a run.
    """
    ALTER TABLE runs ADD COLUMN notify_error TEXT;
    CREATE TABLE serve_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        version TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        stopped_at INTEGER
    );
    CREATE INDEX runs_running ON runs(status) WHERE status = 'running';
    """,
    # 3: a task's runs newest first, carrying status and duration: the health of every task
    # (`list`, `show`: outcomes and durations of its last 50 runs) is read from the index
    # alone, without a table read per run.
    """
    DROP INDEX runs_task_started;
    CREATE INDEX runs_task_recent ON runs(task, started_at DESC, id DESC, status, duration_ms);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def to_ms(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the history store")
    return round(moment.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class SlotTakenError(StoreError):
    """The (task, scheduled instant) slot already has a run: it must not run again."""


class DamagedDatabaseError(StoreError):
    """The file is not a readable SQLite database (corrupt, truncated, overwritten).

    `serve` moves such a file aside (`open_for_serve`); the CLI only says so.
    """


class DatabaseFullError(StoreError):
    """The file system holding the database has no room left."""


class ReadOnlyDatabaseError(StoreError):
    """The database (or its folder) cannot be written."""


class DatabaseLockedError(StoreError):
    """Another connection held the write lock for longer than the busy timeout."""


class _Unusable(StoreError):
    """SQLite cannot open or extend a file it needs (CANTOPEN, IOERR): a read-only folder, or
    a disk without room for the `-shm` file."""


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


_RUN_COLUMNS = (
    "id, task, trigger, attempt, scheduled_at, started_at, finished_at, duration_ms, status, "
    "exit_code, signal, pid, reason, notify_error"
)


def _run(row: Sequence, output: Sequence | None = None) -> Run:
    stdout = stderr = None
    if output is not None:
        stdout = Output(output[0] or b"", output[2], output[4])
        stderr = Output(output[1] or b"", output[3], output[5])
    return Run(
        id=row[0],
        task=row[1],
        trigger=row[2],
        attempt=row[3],
        scheduled_at=from_ms(row[4]),
        started_at=from_ms(row[5]),
        finished_at=from_ms(row[6]),
        duration_ms=row[7],
        status=row[8],
        exit_code=row[9],
        signal=row[10],
        pid=row[11],
        reason=row[12],
        notify_error=row[13],
        stdout=stdout,
        stderr=stderr,
    )


def _output_row(out: Output, err: Output) -> tuple[bytes, bytes, int, int, int, int]:
    """The run_output row of two captured streams, in the column order `_run` reads."""
    return (
        out.data,
        err.data,
        out.total_bytes,
        err.total_bytes,
        out.dropped_bytes,
        err.dropped_bytes,
    )


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class HistoryStore:
    """Runs recorded in SQLite. `HistoryStore(":memory:")` for tests.

    Opening never needs to write when the file cannot be written: a read-only file or folder,
    or a full disk that has no room for SQLite's `-shm` file, gives a read-only store
    (`read_only` is then True) on which every query works and every write raises a
    StoreError that says why. A file that is not a readable database raises
    DamagedDatabaseError; a schema from a newer cronctl is refused before anything is written.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = BUSY_TIMEOUT) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self.read_only = False
        self.read_only_cause: StoreError | None = None
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
                hint="check that its folder exists and is writable, or choose another place with --db or CRONCTL_DB",
            ) from None
        try:
            self._migrate(self._configure())
        except (ReadOnlyDatabaseError, DatabaseFullError, _Unusable) as exc:
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
        from urllib.parse import quote  # only here: not a cost of every start-up

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
            except (ReadOnlyDatabaseError, DatabaseFullError, _Unusable):
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
            if version < SCHEMA_VERSION:
                self._db.close()
                raise ReadOnlyDatabaseError(
                    f"the history database {self.path} needs an upgrade of its schema"
                    f" (from {version} to {SCHEMA_VERSION}) but cannot be written: {cause.message}",
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

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (_BUSY, _LOCKED) or "locked" in text or "busy" in text:
            return DatabaseLockedError(
                f"the history database {self.path} is locked by another process (waited {self.timeout:g}s)",
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
            diagnosed = self._diagnosed()
            if diagnosed is not None:
                return diagnosed
            return _Unusable(
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
            hint="make the file and its folder writable, or choose another place with --db or CRONCTL_DB",
        )

    def _full_error(self) -> DatabaseFullError:
        return DatabaseFullError(
            f"the disk holding {self.path} is full",
            hint="free some space on that file system; nothing was recorded",
        )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (a full disk): never leave a transaction open,
                # or every later write fails with "cannot start a transaction within a transaction".
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def _known(self, version: int) -> int:
        """Return the schema version, or refuse one from a newer cronctl."""
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the history database {self.path} was created by a newer cronctl"
                f" (schema {version}; this cronctl knows {SCHEMA_VERSION})",
                hint="upgrade cronctl; the database was not changed",
            )
        return version

    def _check_owner(self) -> int:
        """Refuse a SQLite file that belongs to another program (never migrate into it), or a
        schema from a newer cronctl; return the schema version."""
        with self._guard():
            # One statement, one snapshot: another process may be creating our schema now.
            app_id, version, tables = self._db.execute(
                "SELECT (SELECT application_id FROM pragma_application_id),"
                " (SELECT user_version FROM pragma_user_version),"
                " (SELECT COUNT(*) FROM sqlite_master)"
            ).fetchone()
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and version == 0 and tables):
            raise StoreError(
                f"{self.path} is a SQLite database of another program, not a cronctl history database",
                hint="choose another place with --db or CRONCTL_DB; the file was not changed",
            )
        return self._known(version)

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
        if version == SCHEMA_VERSION:
            return
        with self._write() as db:
            # Re-read under the write lock: two processes racing here migrate once.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for number in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        with self._guard():
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def quick_check(self) -> list[str]:
        """Return the problems `PRAGMA quick_check` finds (empty when the file is sound).

        O(size of the file), about 0.3 s per million runs when cached; the retention rules
        keep the history far smaller. Raises DamagedDatabaseError when SQLite cannot even
        read the file's structure."""
        with self._guard():
            rows = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        return [] if rows == ["ok"] else rows

    # -- writing runs --------------------------------------------------------------------

    def start_run(
        self,
        task: str,
        trigger: str,
        *,
        started_at: datetime,
        attempt: int = 1,
        scheduled_at: datetime | None = None,
        status: str = Status.RUNNING,
        pid: int | None = None,
        reason: str | None = None,
    ) -> int:
        """Insert a run and return its id; raise SlotTakenError when its slot already ran."""
        try:
            with self._write() as db:
                cursor = db.execute(
                    "INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, status, pid, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        task,
                        trigger,
                        attempt,
                        to_ms(scheduled_at),
                        to_ms(started_at),
                        status,
                        pid,
                        reason,
                    ),
                )
                return int(cursor.lastrowid)
        except sqlite3.IntegrityError:
            raise SlotTakenError(f"slot {scheduled_at} of task '{task}' has already run") from None

    def set_pid(self, run_id: int, pid: int) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        finished_at: datetime,
        duration_ms: int | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        reason: str | None = None,
        stdout: Output | None = None,
        stderr: Output | None = None,
        started_at: datetime | None = None,
    ) -> Run:
        """Record the end of a run and return the finished record (from the UPDATE's own
        RETURNING clause: no second read). When the disk is too full for the captured output,
        the end is recorded without it (with a note in `reason`) rather than not at all: the
        status is what health, notifications and retries need."""
        update = (
            "UPDATE runs SET status = ?, finished_at = ?, duration_ms = ?, exit_code = ?,"
            " signal = ?, reason = COALESCE(?, reason), started_at = COALESCE(?, started_at)"
            f" WHERE id = ? RETURNING {_RUN_COLUMNS}"
        )
        values = (
            status,
            to_ms(finished_at),
            duration_ms,
            exit_code,
            signal,
            reason,
            to_ms(started_at),
            run_id,
        )
        has_output = stdout is not None or stderr is not None
        out = stdout or Output(b"", 0)
        err = stderr or Output(b"", 0)
        try:
            with self._write() as db:
                row = db.execute(update, values).fetchone()
                if row is None:
                    raise UnknownRunError(f"no run with id {run_id}", hint="see `cronctl history`")
                if has_output:
                    db.execute(
                        "INSERT OR REPLACE INTO run_output VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (run_id, *_output_row(out, err)),
                    )
        except DatabaseFullError as exc:
            if not has_output:
                raise
            note = f"output not kept: {exc.message}"
            with self._write() as db:
                row = db.execute(
                    update, (*values[:5], f"{reason}; {note}" if reason else note, *values[6:])
                ).fetchone()
            return _run(row, (b"", b"", 0, 0, 0, 0))
        return _run(row, _output_row(out, err) if has_output else (b"", b"", 0, 0, 0, 0))

    def record_notify_error(self, run_id: int, message: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET notify_error = ? WHERE id = ?", (message, run_id))

    # -- reading runs --------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run:
        with self._guard():
            row = self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise UnknownRunError(f"no run with id {run_id}", hint="see `cronctl history`")
            output = self._db.execute(
                "SELECT stdout, stderr, stdout_bytes, stderr_bytes, stdout_dropped, stderr_dropped"
                " FROM run_output WHERE run_id = ?",
                (run_id,),
            ).fetchone()
        return _run(row, output or (b"", b"", 0, 0, 0, 0))

    def runs(
        self,
        task: str | None = None,
        *,
        statuses: Iterable[str] | None = None,
        since: datetime | None = None,
        limit: int | None = 50,
    ) -> list[Run]:
        """Return runs newest first, filtered by task, status and start time."""
        clauses, params = [], []
        if task is not None:
            clauses.append("task = ?")
            params.append(task)
        status_list = list(statuses) if statuses is not None else None
        if status_list is not None:
            if sorted(status_list) == sorted(FAILURE_STATUSES):
                # The exact predicate of the partial index runs_failures, so SQLite uses it.
                clauses.append(f"status IN ({_FAILURES_SQL})")
            else:
                clauses.append(f"status IN ({', '.join('?' * len(status_list))})")
                params.extend(status_list)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(to_ms(since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._guard():
            return [_run(row) for row in self._db.execute(sql, params).fetchall()]

    def last_run(self, task: str, *, statuses: Iterable[str] | None = None) -> Run | None:
        found = self.runs(task, statuses=statuses, limit=1)
        return found[0] if found else None

    def last_success_at(self, task: str) -> datetime | None:
        last = self.last_run(task, statuses=[Status.SUCCEEDED])
        return last.started_at if last else None

    def task_stats(self, task: str, window: int = 50) -> TaskStats:
        """Return health figures of `task` from its last `window` runs (two indexed queries)."""
        with self._guard():
            # From the covering index runs_task_recent: no table reads (building 50 Runs for
            # each of 100 tasks, or reading their rows, was most of `cronctl list`'s time).
            rows = self._db.execute(
                "SELECT status, duration_ms FROM runs WHERE task = ?"
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (task, window),
            ).fetchall()
        # The newest run is read whole, from the table: a damaged table is reported by `list`
        # (reliability s24), not hidden behind the index's copy of it.
        last = self.last_run(task) if rows else None
        statuses = tuple(status for status, _ in rows)
        finished = [(status, duration) for status, duration in rows if status in FINISHED_STATUSES]
        durations = sorted(duration for _, duration in finished if duration is not None)
        rate = None
        if finished:
            rate = sum(status == Status.SUCCEEDED for status, _ in finished) / len(finished)
        return TaskStats(
            task=task,
            last=last,
            recent=statuses,
            success_rate=rate,
            p50_ms=_percentile(durations, 0.5),
            p95_ms=_percentile(durations, 0.95),
        )

    def latest_slot(self, task: str) -> datetime | None:
        """Return the newest scheduled instant that has a run (the catch-up starting point)."""
        with self._guard():
            row = self._db.execute(
                f"SELECT MAX(scheduled_at) FROM runs WHERE task = ? AND attempt = 1"
                f" AND trigger IN ({_SLOT_TRIGGERS_SQL}) AND scheduled_at IS NOT NULL",
                (task,),
            ).fetchone()
        return from_ms(row[0]) if row else None

    def task_names(self) -> list[str]:
        with self._guard():
            return [r[0] for r in self._db.execute("SELECT DISTINCT task FROM runs ORDER BY task")]

    # -- retention -----------------------------------------------------------------------

    def prune(
        self,
        *,
        now: datetime,
        keep_days: int,
        keep_runs: dict[str, int] | None = None,
        default_keep_runs: int,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Delete runs older than `keep_days` or beyond each task's newest `keep_runs`.

        Returns the number of runs removed (or that would be) per task. Running runs stay.
        """
        keep_runs = keep_runs or {}
        cutoff = to_ms(now) - keep_days * 86_400_000
        removed: dict[str, int] = {}
        doomed: list[int] = []
        for task in self.task_names():
            limit = keep_runs.get(task, default_keep_runs)
            with self._guard():
                ids = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM runs WHERE task = ? AND status != 'running' AND (started_at < ? OR id IN ("
                        " SELECT id FROM runs WHERE task = ? ORDER BY started_at DESC, id DESC LIMIT -1 OFFSET ?))",
                        (task, cutoff, task, limit),
                    )
                ]
            if ids:
                removed[task] = len(ids)
                doomed.extend(ids)
        if dry_run or not doomed:
            return removed
        # Deleted in id order, across tasks: runs of many tasks interleave in the table, so
        # this touches each page once instead of once per task (measured with 100 tasks and
        # 900,000 runs to remove: 7 s instead of 31 s, at most ~20 ms per transaction
        # instead of ~100 ms). Each chunk is its own short write transaction, so serve's
        # writes get the lock in between.
        doomed.sort()
        for start in range(0, len(doomed), PRUNE_CHUNK):
            self._delete_runs(doomed[start : start + PRUNE_CHUNK])
        del doomed
        self._vacuum()
        return removed

    def _delete_runs(self, chunk: Sequence[int]) -> None:
        marks = ", ".join("?" * len(chunk))
        with self._write() as db:
            db.execute(f"DELETE FROM run_output WHERE run_id IN ({marks})", chunk)
            db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)

    def _vacuum(self) -> None:
        """Give free pages back to the file system, VACUUM_CHUNK pages per write transaction.

        `PRAGMA incremental_vacuum(N)` frees one page per step of the statement, and
        sqlite3's execute() steps a statement without result columns once: a plain execute
        freed a single page. executescript() steps each statement to its end."""
        previous = None
        while True:
            with self._guard():
                free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
            if not free or free == previous:  # done, or not an auto_vacuum=INCREMENTAL file
                return
            previous = free
            with self._guard():
                try:
                    self._db.executescript(
                        f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({VACUUM_CHUNK}); COMMIT;"
                    )
                except BaseException:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    raise

    def delete_task_runs(self, task: str) -> int:
        """Delete every run of `task` (`remove --purge`), PRUNE_CHUNK runs per transaction."""
        count = 0
        while True:
            with self._guard():
                ids = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM runs WHERE task = ? ORDER BY id LIMIT ?",
                        (task, PRUNE_CHUNK),
                    )
                ]
            if not ids:
                break
            self._delete_runs(ids)
            count += len(ids)
        if count:
            self._vacuum()
        return count

    def checkpoint(self) -> None:
        with self._guard():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- serve's heartbeat ---------------------------------------------------------------

    def serve_started(self, *, pid: int, hostname: str, version: str, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO serve_state VALUES (1, ?, ?, ?, ?, ?, NULL)",
                (pid, hostname, version, to_ms(now), to_ms(now)),
            )

    def heartbeat(self, now: datetime) -> None:
        with self._write() as db:
            db.execute("UPDATE serve_state SET heartbeat_at = ? WHERE id = 1", (to_ms(now),))

    def serve_stopped(self, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE serve_state SET stopped_at = ?, heartbeat_at = ? WHERE id = 1",
                (to_ms(now), to_ms(now)),
            )

    def serve_state(self) -> ServeState | None:
        with self._guard():
            row = self._db.execute(
                "SELECT pid, hostname, version, started_at, heartbeat_at, stopped_at FROM serve_state WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        return ServeState(row[0], row[1], row[2], from_ms(row[3]), from_ms(row[4]), from_ms(row[5]))

    # -- health, status and metrics (cronctl.health, cronctl.notify) -----------------------
    # Each query here is answered from an index (checked with EXPLAIN QUERY PLAN in
    # tests/test_health.py): they stay fast with a million runs.

    def running_tasks(self) -> set[str]:
        """Return the tasks that have a run in progress (index runs_running)."""
        with self._guard():
            return {
                r[0]
                for r in self._db.execute("SELECT DISTINCT task FROM runs WHERE status = 'running'")
            }

    def stderr_heads(self, run_ids: Iterable[int], size: int = 512) -> dict[int, bytes]:
        """Return the first `size` bytes of the stderr of each run (by primary key)."""
        ids = list(run_ids)
        heads: dict[int, bytes] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            with self._guard():
                for run_id, head in self._db.execute(
                    f"SELECT run_id, substr(stderr, 1, ?) FROM run_output WHERE run_id IN ({marks})",
                    (size, *chunk),
                ):
                    heads[run_id] = bytes(head or b"")
        return heads

    def missed_counts(self, since: datetime) -> list[tuple[str, int, datetime | None]]:
        """Return (task, runs recorded `missed` since `since`, latest missed slot) per task
        (a range of index runs_started)."""
        with self._guard():
            rows = self._db.execute(
                "SELECT task, COUNT(*), MAX(scheduled_at) FROM runs INDEXED BY runs_started"
                " WHERE started_at >= ? AND status = 'missed'"
                " GROUP BY task ORDER BY task",
                (to_ms(since),),
            ).fetchall()
        return [(task, count, from_ms(latest)) for task, count, latest in rows]

    def run_counts(self) -> dict[str, tuple[int, int]]:
        """Return (runs, failed runs) kept in the history per task.

        Runs are counted on the covering index runs_task_recent (no table reads), failures
        on the partial index runs_failures (one table read per failed run kept).
        """
        with self._guard():
            totals = self._db.execute("SELECT task, COUNT(*) FROM runs GROUP BY task").fetchall()
            failures = dict(
                self._db.execute(
                    f"SELECT task, COUNT(*) FROM runs INDEXED BY runs_failures WHERE status IN ({_FAILURES_SQL})"
                    " GROUP BY task"
                ).fetchall()
            )
        return {task: (count, failures.get(task, 0)) for task, count in totals}


def open_for_serve(
    path: str | os.PathLike[str], *, now: datetime
) -> tuple[HistoryStore, Path | None]:
    """Open the history for `serve`: writable, sound, else moved aside and started anew.

    Returns the store and, when the file was damaged, where it was moved
    (`history.db.corrupt-<UTC time>`, with its `-wal` and `-shm`); the caller logs that
    loudly. A read-only database, a full disk, a lock held past the busy timeout and a
    schema from a newer cronctl raise StoreError: moving those aside would lose history.
    The caller must hold the serve lock (no other serve uses the file).
    """
    path = os.fspath(path)
    try:
        store = HistoryStore(path)
        try:
            problems = store.quick_check()
            if problems:
                raise DamagedDatabaseError(
                    f"{path} is damaged: {'; '.join(problems[:3])}", hint=None
                )
        except BaseException:
            store.close()
            raise
    except DamagedDatabaseError:
        moved = move_aside(path, now)
        return HistoryStore(path), moved
    try:
        if store.read_only:
            raise store.read_only_cause or store._readonly_error()
        with store._write():  # an empty write transaction: can serve record runs at all?
            pass
    except BaseException:
        store.close()
        raise
    return store, None


def move_aside(path: str | os.PathLike[str], now: datetime) -> Path:
    """Rename a damaged database and its `-wal` and `-shm` files to `<name>.corrupt-<UTC>`
    (SQLite can still open the moved copy with its WAL, for whoever wants to rescue rows)."""
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


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _create_private(path: Path) -> None:
    """Create the database file 0600 in a 0700 folder before SQLite opens it."""
    ensure_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
