"""The connection to a PostgreSQL history: opening, the schema, transactions, errors.

`PgDatabase` is the base of every part of `PostgresStore` (cronctl/store/postgres/__init__.py),
as `Database` is of the SQLite store's: it owns the psycopg connection `_db` (autocommit: a
single statement is its own transaction, one round trip), `_guard` (a psycopg error becomes
one of the typed StoreErrors of cronctl.errors, with the server's address and never a
password), `_write` (one transaction, or the open `batch`) and `_write_one` (one statement,
alone or in the open `batch`).

A connection lost during a call is opened again at once: when that works the call raises
ConnectionLostError (the server restarted between two calls: reachable), else the
DatabaseUnavailableError of the failed connect, and the next connects wait for RECONNECT_BACKOFF:
until then a call fails at once with that same error, without trying (docs/reliability.md,
"The database unreachable").

`timeout` is libpq's `connect_timeout` (whole seconds, at least 2: libpq's own floor) and
the session's `lock_timeout`: a write that waits longer for a row another connection holds
raises DatabaseLockedError, as SQLite's busy timeout does.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any, Self

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.errors import (
    ConnectionLostError,
    DatabaseAccessError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    ReadOnlyDatabaseError,
    StoreError,
)
from cronctl.locations import host_name
from cronctl.store.database import BUSY_TIMEOUT, Batch
from cronctl.store.postgres import schema

Connection = psycopg.Connection[tuple[Any, ...]]

# SQLSTATE classes and codes (postgresql.org/docs/current/errcodes-appendix.html).
_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
_ACCESS = ("28", "3D000")
_READ_ONLY = ("25006", "42501")
_LOCKED = ("55P03", "57014", "40001", "40P01")
_FULL = ("53100",)
_ACCESS_WORDS = ("authentication failed", "no password supplied", "does not exist")

RECONNECT_BACKOFF = (0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts to connect again to a server that could not be reached. Capped at
5 s: serve is back within 5 s of the server's return, and an attempt costs a refused connect
(well under a millisecond) or, through a network split, `connect_timeout` on the one thread
that asked; every call in between fails at once, unless another connection of this process
to the same server opened meanwhile (the server is back: try now)."""

# Successful connects of this process, by URL: a connection waiting out its back-off tries at
# once when another connected since its failure (serve has several; the first one back ends
# the wait of the others, so no connection of it fails after the outage ended).
_CONNECTS: dict[str, int] = {}


def display_url(url: str) -> str:
    """`url` as messages show it: user, host, port and database, never a password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an invalid URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "")
    port = f":{parts['port']}" if parts.get("port") else ""
    database = f"/{parts['dbname']}" if parts.get("dbname") else ""
    return f"postgresql://{user}{host}{port}{database}"


def server_address(url: str) -> str:
    """host:port of `url` as libpq would use them (its defaults: the local socket, 5432)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an invalid URL)"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


# What psycopg and libpq put before the reason, which our message says already (the server's
# host:port): 'connection failed: connection to server at "h" (1.2.3.4), port 5 failed: FATAL:'.
_PREFIXES = re.compile(
    r'^(connection failed: )?(connection to server (at|on) "[^"]*"( \([^)]*\))?(, port \d+)?'
    r" failed: )?((FATAL|ERROR):  )?"
)


def _first_line(exc: BaseException, secret: str | None) -> str:
    """psycopg's reason in one line, without what our message says already, nor a password."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return _PREFIXES.sub("", text) or text


class PgDatabase:
    """One connection to a PostgreSQL history; creates or migrates its schema on open."""

    read_only_session = False  # ReadOnlyPostgres: the session refuses every write
    clock: Clock = SYSTEM_CLOCK  # the back-off's time (tests give a fake one)

    def __init__(self, url: str, *, timeout: float = BUSY_TIMEOUT) -> None:
        self.url = url
        self.path = display_url(url)  # what callers print as "the history database"
        self.address = server_address(url)
        self.timeout = timeout
        self.host = host_name()  # written into each run row this store starts
        self.read_only = False
        self.read_only_cause: StoreError | None = None
        self._secret = self._password()
        self._batch: Batch[Connection] | None = None
        self._closed = False
        self._unreachable: DatabaseUnavailableError | None = None  # the last connect's failure
        self._failed_connects = 0
        self._retry_at = 0.0  # monotonic: no connect before (RECONNECT_BACKOFF)
        self._connects_seen = 0  # _CONNECTS of the URL at the last failed connect
        self._db = self._connect()
        try:
            self._prepare_schema()
        except BaseException:
            self._db.close()
            raise

    def _password(self) -> str | None:
        with contextlib.suppress(psycopg.ProgrammingError):
            return str(conninfo_to_dict(self.url).get("password") or "") or None
        return None

    # -- connection ------------------------------------------------------------------------

    def _conninfo(self) -> str:
        lock_ms = max(1, round(self.timeout * 1000))
        try:
            options = str(conninfo_to_dict(self.url).get("options") or "")
        except psycopg.ProgrammingError as exc:
            raise DatabaseAccessError(
                f"the history database URL is invalid: {_first_line(exc, self._secret)}",
                hint="give --db postgresql://USER@HOST[:PORT]/DATABASE",
            ) from None
        options = f"{options} -c lock_timeout={lock_ms}".strip()
        if self.read_only_session:
            options += " -c default_transaction_read_only=on"
        return make_conninfo(
            self.url,
            connect_timeout=max(2, math.ceil(self.timeout)),
            options=options,
            application_name="cronctl",
        )

    def _connect(self) -> Connection:
        try:
            conn = psycopg.connect(self._conninfo(), autocommit=True)
        except psycopg.Error as exc:
            raise self._translate(exc, connecting=True) from None
        _CONNECTS[self.url] = _CONNECTS.get(self.url, 0) + 1
        return conn

    def _conn(self) -> Connection:
        """The connection, opened again when the last one was lost (a server restart), at
        most once per RECONNECT_BACKOFF step while the server cannot be reached."""
        if self._db.closed and not self._closed:
            self._reconnect()
        return self._db

    def _reconnect(self) -> None:
        """Open the connection again, or raise DatabaseUnavailableError (at once, without
        trying, while the back-off after a failed attempt runs)."""
        now = self.clock.monotonic()
        waiting = self._unreachable is not None and now < self._retry_at
        if waiting and _CONNECTS.get(self.url, 0) == self._connects_seen:
            assert self._unreachable is not None
            raise self._unreachable
        try:
            self._db = self._connect()
        except DatabaseUnavailableError as exc:
            step = RECONNECT_BACKOFF[min(self._failed_connects, len(RECONNECT_BACKOFF) - 1)]
            self._failed_connects += 1
            self._connects_seen = _CONNECTS.get(self.url, 0)
            self._unreachable = exc
            self._retry_at = now + step
            raise
        self._unreachable = None
        self._failed_connects = 0

    def _lost(self, error: DatabaseUnavailableError) -> StoreError:
        """The error of a call whose connection was lost: ConnectionLostError when a new
        connection opens at once (the server is there), else the failed connect's error."""
        if self._closed or not self._db.closed or self._batch is not None:
            return error  # a batch's failure is the batch's; the next call reconnects
        try:
            self._reconnect()
        except DatabaseUnavailableError as exc:
            return exc
        except StoreError:
            return error
        return ConnectionLostError(error.message, hint=error.hint)

    def close(self) -> None:
        self._closed = True
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- errors ----------------------------------------------------------------------------

    def _translate(self, exc: psycopg.Error, *, connecting: bool = False) -> StoreError:
        """The typed StoreError of a psycopg error (cronctl/errors.py): one line, no password."""
        state = exc.sqlstate or ""
        reason = _first_line(exc, self._secret)
        if state.startswith(_ACCESS) or (
            connecting and not state and any(w in reason for w in _ACCESS_WORDS)
        ):
            return DatabaseAccessError(
                f"the PostgreSQL server at {self.address} refused the history database"
                f" {self.path}: {reason}",
                hint="check the user, the database and the password (PGPASSWORD, ~/.pgpass"
                " or a service file)",
            )
        if (
            state.startswith(_UNAVAILABLE)
            or isinstance(exc, psycopg.InterfaceError)
            or (isinstance(exc, psycopg.OperationalError) and (connecting or self._db.closed))
        ):
            return DatabaseUnavailableError(
                f"cannot reach the history database at {self.address}: {reason}",
                hint="is the PostgreSQL server running and reachable? try again later",
            )
        if state.startswith(_READ_ONLY):
            return self._readonly_error(reason)
        if state.startswith(_FULL):
            return DatabaseFullError(
                f"the PostgreSQL server at {self.address} is out of disk space",
                hint="free some space on the server; nothing was recorded",
            )
        if state.startswith(_LOCKED):
            return DatabaseLockedError(
                f"the history database {self.path} is locked by another connection"
                f" (waited {self.timeout:g}s)",
                hint="try again; if it persists, look for a stuck session (pg_stat_activity)",
            )
        return StoreError(f"history database error ({self.path}): {reason}")

    def _readonly_error(self, reason: str = "") -> ReadOnlyDatabaseError:
        cause = self.read_only_cause
        if self.read_only and cause is not None:
            return ReadOnlyDatabaseError(cause.message, hint=cause.hint)
        return ReadOnlyDatabaseError(
            f"the history database {self.path} is read-only" + (f" ({reason})" if reason else ""),
            hint="connect as a user that may write its tables, to the primary server,"
            " or choose another database with --db or CRONCTL_DB",
        )

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except psycopg.IntegrityError:
            raise
        except psycopg.Error as exc:
            error = self._translate(exc)
            if isinstance(error, DatabaseUnavailableError):
                error = self._lost(error)
            raise error from None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write made inside (serve's group commit), all or
        nothing, as `Database.batch` of the SQLite store: when a write inside fails, every
        later write inside raises and the whole batch is rolled back.

        Not in psycopg's pipeline mode, which would save the round trips of BEGIN and of the
        writes that return nothing: on a loopback connection its bookkeeping cost more than
        the round trips (a set_pid and an end: 0.28 ms pipelined, 0.19 ms plain, medians of
        3; tests/benchmarks/bench_pg_store.py)."""
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
    def _write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN ... COMMIT), or the open batch's."""
        if self.read_only:
            raise self._readonly_error()
        batch = self._batch
        if batch is not None and batch.open:
            with batch.join(self._guard, self._db) as db:
                yield db
            return
        with self._guard():
            conn = self._conn()
            with conn.transaction():
                yield conn

    def _write_one(self, sql: str, params: Any = None) -> psycopg.Cursor[tuple[Any, ...]]:
        """One statement that writes: its own transaction (one round trip), or the batch's."""
        if self.read_only or (self._batch is not None and self._batch.open):
            with self._write() as conn:
                return conn.execute(sql, params)
        with self._guard():
            return self._conn().execute(sql, params)

    def _read(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._guard():
            return self._conn().execute(sql, params).fetchall()

    def _read_one(self, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        with self._guard():
            return self._conn().execute(sql, params).fetchone()

    def check_writable(self) -> None:
        """Raise the StoreError that keeps this database from recording runs, if any: a
        read-only session or server (a standby), or a user without the right to write."""
        if self.read_only:
            raise self.read_only_cause or self._readonly_error()
        row = self._read_one(
            "SELECT current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery(),"
            " has_table_privilege('runs', 'INSERT, UPDATE, DELETE')"
            " AND has_table_privilege('run_output', 'INSERT, UPDATE, DELETE')"
        )
        assert row is not None
        if row[0]:
            raise self._readonly_error("a read-only session or a standby server")
        if not row[1]:
            raise self._readonly_error("permission denied for the tables of the history")

    def quick_check(self) -> list[str]:
        """No problems to report: PostgreSQL checks its own pages (there is no file of ours
        to move aside)."""
        return []

    # -- schema ----------------------------------------------------------------------------

    def _prepare_schema(self) -> None:
        """Refuse a newer schema or another program's tables; create or migrate ours."""
        with self._guard():
            version = schema.read_version(self._db)
        self._refuse(version)
        if version == schema.SCHEMA_VERSION:
            return
        with self._write() as conn:
            schema.migrate(conn)

    def _refuse(self, version: int | None) -> None:
        if version is None:
            raise StoreError(
                f"the database {self.path} has a table `runs` that is not cronctl's",
                hint="choose another database with --db or CRONCTL_DB; nothing was changed",
            )
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"the history database {self.path} was created by a newer cronctl"
                f" (schema {version}; this cronctl knows {schema.SCHEMA_VERSION})",
                hint="upgrade cronctl; the database was not changed",
            )
