"""The history store: the one module that speaks SQL.

SQLite in WAL mode so that `serve` writes while the CLI reads. Every write is one short
`BEGIN IMMEDIATE` transaction (a deferred transaction that reads and then writes fails at
once with "database is locked" instead of waiting for the busy timeout). Times are stored as
integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cronctl.errors import StoreError, UnknownRunError
from cronctl.locations import MEMORY, ensure_private_dir
from cronctl.records import FAILURE_STATUSES, FINISHED_STATUSES, SLOT_TRIGGERS, Output, Run, Status

APPLICATION_ID = 0x63726F6E  # "cron": lets `file` and tools recognise the database
BUSY_TIMEOUT = 5.0

_SLOT_TRIGGERS_SQL = ", ".join(f"'{t}'" for t in SLOT_TRIGGERS)
_FAILURES_SQL = ", ".join(f"'{s}'" for s in FAILURE_STATUSES)
_FINISHED_SQL = ", ".join(f"'{s}'" for s in FINISHED_STATUSES)

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
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


class SlotTakenError(StoreError):
    """The (task, scheduled instant) slot already has a run: it must not run again."""


@dataclass(frozen=True)
class ServeState:
    pid: int
    hostname: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True)
class TaskStats:
    task: str
    last: Run | None
    recent: tuple[str, ...]  # statuses of the last runs, newest first
    success_rate: float | None  # over the last 50 finished runs
    p50_ms: int | None
    p95_ms: int | None


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


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class HistoryStore:
    """Runs recorded in SQLite. `HistoryStore(":memory:")` for tests."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = BUSY_TIMEOUT) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        try:
            if self.path != MEMORY:
                _create_private(Path(self.path))
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the history database {self.path}: {exc}") from None
        try:
            self._configure()
            self._migrate()
        except StoreError:
            self._db.close()
            raise

    # -- connection ------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"the history database {self.path} is locked by another process (waited {self.timeout:g}s)",
                hint="try again; if it persists, look for a stuck cronctl process",
            )
        if "not a database" in text or "malformed" in text:
            return StoreError(
                f"{self.path} is not a cronctl history database (or it is damaged)",
                hint="move it aside; cronctl creates a new one",
            )
        if "readonly" in text:
            return StoreError(f"the history database {self.path} is read-only")
        if "full" in text:
            return StoreError(f"the disk holding {self.path} is full")
        return StoreError(f"history database error ({self.path}): {text}")

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
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _configure(self) -> None:
        with self._guard():
            self._db.execute("PRAGMA foreign_keys = ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and self.path != MEMORY:
                # auto_vacuum must be chosen before the first table exists.
                self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if self.path != MEMORY:
                mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA journal_size_limit = 8388608")

    def _migrate(self) -> None:
        with self._guard():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the history database {self.path} was created by a newer cronctl (schema {version})",
                hint="upgrade cronctl",
            )
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
                    (task, trigger, attempt, to_ms(scheduled_at), to_ms(started_at), status, pid, reason),
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
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, duration_ms = ?, exit_code = ?, signal = ?,"
                " reason = COALESCE(?, reason), started_at = COALESCE(?, started_at) WHERE id = ?",
                (status, to_ms(finished_at), duration_ms, exit_code, signal, reason, to_ms(started_at), run_id),
            )
            if stdout is not None or stderr is not None:
                out = stdout or Output(b"", 0)
                err = stderr or Output(b"", 0)
                db.execute(
                    "INSERT OR REPLACE INTO run_output VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, out.data, err.data, out.total_bytes, err.total_bytes, out.dropped_bytes, err.dropped_bytes),
                )

    def record_notify_error(self, run_id: int, message: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET notify_error = ? WHERE id = ?", (message, run_id))

    def mark_abandoned(self, now: datetime) -> list[Run]:
        """Mark runs left `running` (serve died under them) as `abandoned`; return them."""
        with self._write() as db:
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running'"
            ).fetchall()
            db.execute(
                "UPDATE runs SET status = 'abandoned', finished_at = ?,"
                " reason = 'serve stopped unexpectedly while the run was running' WHERE status = 'running'",
                (to_ms(now),),
            )
        return [_run(row) for row in rows]

    # -- reading runs --------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run:
        with self._guard():
            row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
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
        """Return health figures of `task` from its last `window` runs (one indexed query)."""
        with self._guard():
            rows = self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE task = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (task, window),
            ).fetchall()
        runs = [_run(row) for row in rows]
        finished = [r for r in runs if r.status in FINISHED_STATUSES]
        durations = sorted(r.duration_ms for r in finished if r.duration_ms is not None)
        rate = None
        if finished:
            rate = sum(r.status == Status.SUCCEEDED for r in finished) / len(finished)
        return TaskStats(
            task=task,
            last=runs[0] if runs else None,
            recent=tuple(r.status for r in runs),
            success_rate=rate,
            p50_ms=_percentile(durations, 0.5),
            p95_ms=_percentile(durations, 0.95),
        )

    def consecutive_failures(self, task: str, limit: int = 1000) -> int:
        """Return how many of the task's latest finished runs failed in a row."""
        with self._guard():
            rows = self._db.execute(
                f"SELECT status FROM runs WHERE task = ? AND status IN ({_FINISHED_SQL})"
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (task, limit),
            ).fetchall()
        count = 0
        for (status,) in rows:
            if status not in FAILURE_STATUSES:
                break
            count += 1
        return count

    def slot_taken(self, task: str, scheduled_at: datetime) -> bool:
        with self._guard():
            row = self._db.execute(
                f"SELECT 1 FROM runs WHERE task = ? AND scheduled_at = ? AND attempt = 1"
                f" AND trigger IN ({_SLOT_TRIGGERS_SQL}) AND scheduled_at IS NOT NULL",
                (task, to_ms(scheduled_at)),
            ).fetchone()
        return row is not None

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
            if dry_run:
                continue
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                marks = ", ".join("?" * len(chunk))
                with self._write() as db:
                    db.execute(f"DELETE FROM run_output WHERE run_id IN ({marks})", chunk)
                    db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        if removed and not dry_run:
            with self._guard():
                self._db.execute("PRAGMA incremental_vacuum")
        return removed

    def delete_task_runs(self, task: str) -> int:
        with self._write() as db:
            db.execute("DELETE FROM run_output WHERE run_id IN (SELECT id FROM runs WHERE task = ?)", (task,))
            return db.execute("DELETE FROM runs WHERE task = ?", (task,)).rowcount

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
            db.execute("UPDATE serve_state SET stopped_at = ?, heartbeat_at = ? WHERE id = 1", (to_ms(now), to_ms(now)))

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
            return {r[0] for r in self._db.execute("SELECT DISTINCT task FROM runs WHERE status = 'running'")}

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

        Runs are counted on the covering index runs_task_started (no table reads), failures
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


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _create_private(path: Path) -> None:
    """Create the database file 0600 in a 0700 folder before SQLite opens it."""
    ensure_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
