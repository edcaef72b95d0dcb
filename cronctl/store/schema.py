"""The schema of the history database: tables, indexes, and the upgrade of an older file.

The file is marked as ours with `PRAGMA application_id` (APPLICATION_ID); `PRAGMA
user_version` says how many MIGRATIONS ran. A file of another program is never migrated into;
a file from a newer cronctl (a higher user_version) is refused before anything is written.
The partial indexes' predicates are spelled once here (SLOT_TRIGGERS_SQL, FAILURES_SQL): a
query uses such an index only when it repeats the predicate exactly.
"""

from __future__ import annotations

import sqlite3

from cronctl.records import FAILURE_STATUSES, SLOT_TRIGGERS

APPLICATION_ID = 0x63726F6E  # "cron": lets `file` and tools recognise the database

SLOT_TRIGGERS_SQL = ", ".join(f"'{t}'" for t in SLOT_TRIGGERS)
FAILURES_SQL = ", ".join(f"'{s}'" for s in FAILURE_STATUSES)

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
        WHERE scheduled_at IS NOT NULL AND attempt = 1 AND trigger IN ({SLOT_TRIGGERS_SQL});
    -- Runs of a task, newest first.
    CREATE INDEX runs_task_started ON runs(task, started_at DESC, id DESC);
    -- All runs newest first, and failures since T.
    CREATE INDEX runs_started ON runs(started_at DESC, id DESC);
    CREATE INDEX runs_failures ON runs(started_at) WHERE status IN ({FAILURES_SQL});
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
    # 4: when serve last put a valid task file in force (at start, then at each reload), so
    # that `status` can say which version of an invalid file's tasks serve keeps running.
    """
    ALTER TABLE serve_state ADD COLUMN tasks_loaded_at INTEGER;
    """,
    # 5: how many consecutive skips by a task's `when` condition a `skipped` row stands for,
    # and when the first of them started (cronctl.store.skips): one row for a run of them.
    """
    ALTER TABLE runs ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE runs ADD COLUMN skipped_since INTEGER;
    """,
    # 6: acknowledgements (`cronctl ack`: a task's failures up to `acked_at` are seen; one row
    # a task, the newest) and the journal of `cronctl rename` (cronctl.store.renames): a row
    # written before the task file is replaced, closed with the rename of the history rows in
    # one transaction; an open row is finished or dropped by whoever opens the store next.
    """
    CREATE TABLE acks (
        task TEXT PRIMARY KEY,
        acked_at INTEGER NOT NULL,
        acked_by TEXT,
        note TEXT
    );
    -- `status` reads every ack; from the index alone, as every query of `status` reads.
    CREATE INDEX acks_all ON acks(task, acked_at, acked_by, note);
    CREATE TABLE renames (
        id INTEGER PRIMARY KEY,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        tasks_file TEXT NOT NULL,
        digest_before TEXT NOT NULL,
        digest_after TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        outcome TEXT,
        runs INTEGER
    );
    CREATE INDEX renames_open ON renames(id) WHERE outcome IS NULL;
    """,
    # 7: the runs recorded `missed`, for `status` (each task's missed slots of the last day)
    # from the index alone: through runs_started it read every run of the day from the table
    # to find the few missed ones (55,000 rows at 5 million runs of 100 tasks: 6.7 ms of
    # status's 100). Partial: a run that is not `missed` is never written into it; status
    # is among its columns, or SQLite reads the table to test the WHERE of the query.
    # runs_failed_recent does the same for the failures `status` counts per task (the day's,
    # the hour's and the newest's id): through runs_failures it read every failed run of the
    # day from the table (3,300 rows at 5 million runs: 7.5 ms, against 1.3 ms from this index
    # and one read of each task's newest failure).
    f"""
    CREATE INDEX runs_missed ON runs(started_at, task, scheduled_at, status)
        WHERE status = 'missed';
    CREATE INDEX runs_failed_recent ON runs(started_at, task, id, status)
        WHERE status IN ({FAILURES_SQL});
    """,
    # 8: several serves on one history (README.md#more-than-one-machine). Each run carries
    # the host that ran it (NULL before 8); serve_state's single row becomes one row per host
    # in `serves`, with its lease (how long the others wait for its heartbeat; `lease_until`
    # on the database's clock, renewed by each heartbeat) and, once they declared it dead,
    # when and by whom. The version-7 row moves over, keyed by its hostname.
    """
    ALTER TABLE runs ADD COLUMN host TEXT;
    CREATE TABLE serves (
        host TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        version TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        stopped_at INTEGER,
        tasks_loaded_at INTEGER,
        lease_ms INTEGER NOT NULL DEFAULT 30000,
        lease_until INTEGER,
        declared_dead_at INTEGER,
        declared_dead_by TEXT
    );
    -- `status` reads every serve; from the index alone, as every query of `status` reads.
    CREATE INDEX serves_all ON serves(host, pid, version, started_at, heartbeat_at, stopped_at,
        tasks_loaded_at, lease_ms, declared_dead_at, declared_dead_by);
    INSERT INTO serves (host, pid, version, started_at, heartbeat_at, stopped_at,
        tasks_loaded_at) SELECT hostname, pid, version, started_at, heartbeat_at, stopped_at,
        tasks_loaded_at FROM serve_state;
    DROP TABLE serve_state;
    """,
    # 9: what each host's serve runs, as digests (README.md#task-files-that-differ): one row
    # per (host, task), its definition's digest and the digests of its keys that differ from
    # the default (JSON; cronctl/model/digest.py), never a value. A serve replaces its host's
    # rows at start and at each reload; `status` and `check` compare the live hosts' rows.
    # Keyed by host first: a serve reads and replaces its own rows.
    """
    CREATE TABLE task_definitions (
        host TEXT NOT NULL,
        task TEXT NOT NULL,
        digest TEXT NOT NULL,
        key_digests TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (host, task)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def read_header(db: sqlite3.Connection) -> tuple[int, int, int]:
    """Return (application id, schema version, number of schema objects) of the file."""
    # One statement, one snapshot: another process may be creating our schema now.
    app_id, version, tables = db.execute(
        "SELECT (SELECT application_id FROM pragma_application_id),"
        " (SELECT user_version FROM pragma_user_version),"
        " (SELECT COUNT(*) FROM sqlite_master)"
    ).fetchone()
    return int(app_id), int(version), int(tables)


def is_ours(app_id: int, version: int, tables: int) -> bool:
    """Whether a file with this header is a cronctl history, or empty (to become one)."""
    return app_id in (0, APPLICATION_ID) and not (app_id == 0 and version == 0 and tables)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION; the caller holds a write transaction."""
    # Re-read under the write lock: two processes racing here migrate once.
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for number in range(version, SCHEMA_VERSION):
        for statement in statements(MIGRATIONS[number]):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def statements(script: str) -> list[str]:
    """The statements of a migration script, without its `--` comment lines."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
