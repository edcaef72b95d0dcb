"""Shared locks across the hosts of a PostgreSQL history (README.md#shared-locks): a `lock` is
also a session-level advisory lock, held on a connection of its own for the job's life.

Why an advisory lock on its own connection: like the flock beside it (cronctl/runner/locks.py),
it is released by the server when its holder is gone however it ended (the connection's end:
a killed serve, a lost network), with nothing stale to clean up. One connection serves every
run of one process (serve, or one `run-now`); a serve opens it at its first run that needs a
lock. Session locks stack on one connection (taken twice, held until unlocked twice), so two
runs of one serve exclude each other through their flocks, which are taken first.

The key is 64 bits of BLAKE2b over `cronctl:lock:` and the name: a fixed prefix keeps it
apart from the other advisory locks of the database (ours are one-argument `hashtext` keys of
`cronctl:task:` and of the schema; an application's own). The connection's application_name
says which host and process hold it (`cronctl: host web-2 (serve, pid 4242)`): a run that
finds the lock taken reads the holder from pg_locks joined with pg_stat_activity.

The connection lost while jobs hold locks (a server restart, a network cut): the server has
released them, so another host may start a job that shares one while ours goes on. It is
found at the next lock taken or freed (every run's end frees its locks), logged at error level
with the locks that were lost, and they are taken again on a new connection where they are
free (a lock another host took meanwhile is logged as overlapping). New runs fail closed: while
the database cannot be reached no lock is taken, and a run that needs one is refused as when
the lock is held (skipped, or waiting for it); a connection is tried again RETRY_PAUSE after a
failure, not at every run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from cronctl.clock import Clock
from cronctl.store.database import BUSY_TIMEOUT
from cronctl.store.postgres.connection import _first_line, server_address

# Under serve's log (cronctl/serve/log.py), where serve holds the locks; run-now's stderr.
log = logging.getLogger("cronctl.serve.locks")

KEY_PREFIX = b"cronctl:lock:"
APPLICATION_PREFIX = "cronctl: "
RETRY_PAUSE = 5.0
"""Seconds after a failed connection before the next try (the loop asks at every run)."""
_NAME_BYTES = 63  # PostgreSQL keeps the first 63 bytes of application_name

_HOLDER = (
    "SELECT a.application_name, l.pid FROM pg_locks l LEFT JOIN pg_stat_activity a"
    " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.pid <> pg_backend_pid()"
    " LIMIT 1"
)


def lock_key(name: str) -> int:
    """The advisory lock key of the shared lock `name` (a signed 64-bit integer)."""
    digest = hashlib.blake2b(KEY_PREFIX + name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def application_name(holder: str) -> str:
    """What the lock connection calls itself: `cronctl: ` and its holder, cut to what the
    server keeps (a multi-byte character is never split)."""
    data = (APPLICATION_PREFIX + holder).encode("utf-8")[:_NAME_BYTES]
    return data.decode("utf-8", "ignore")


def holder_from(app_name: str | None, pid: int | None) -> str:
    """The holder a lock's connection named, for a message: `host web-2 (serve, pid 4242)`."""
    if app_name and app_name.startswith(APPLICATION_PREFIX):
        return app_name.removeprefix(APPLICATION_PREFIX)
    if app_name:
        return f"another session ({app_name}, server pid {pid})"
    return f"another session (server pid {pid})" if pid else "another host"


class PgFleetLocks:
    """The shared locks one process holds across the hosts of a PostgreSQL history.

    Called from serve's loop (whose runs take and free locks) as well as from `run-now`. The
    loop must not wait for a connection: only the first one is opened on the caller's thread
    (at the first run that needs a lock: the database answered that run's claim a moment
    ago); a connection found lost when a lock is to be taken is opened again at once (a
    restarted server: the run need not be refused); after that fails, or when a run's end
    finds it lost, on a thread of its own, every RETRY_PAUSE, and meanwhile every lock is
    refused (fail closed). A query on the connection is one round trip (~0.2 ms on a local
    server, measured); `tcp_user_timeout` bounds one to a server that vanished silently."""

    def __init__(
        self, url: str, *, holder: str, clock: Clock, timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.url = url
        self.holder = holder
        self.clock = clock
        self.timeout = timeout
        self.address = server_address(url)
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._held: Counter[str] = Counter()  # name -> times taken on this connection
        self._mutex = threading.Lock()  # the connection and `_held`: loop and reconnecting
        self._tried = False  # the first connection was tried (on the caller's thread)
        self._reconnecting: threading.Thread | None = None
        self._retry_at = -math.inf  # monotonic: no connection tried again before it
        self._failure = ""  # why the last connection failed
        self._closed = False

    # -- FleetLocks ----------------------------------------------------------------------

    def try_lock(self, names: Sequence[str]) -> str | None:
        """Take every lock of `names` (sorted: no two processes wait in a cycle), or none of
        them. None when they are taken; else why not, as a sentence: `lock 'db' is held by
        host web-2 (serve, pid 4242)`, or the database that cannot be reached (fail closed)."""
        wanted = sorted(set(names))
        if not wanted:
            return None
        with self._mutex:
            conn, why = self._connection()
            if conn is not None:
                try:
                    return self._take(conn, wanted)
                except psycopg.Error as exc:  # a connection the server ended, found now
                    self._lost(exc)
                    why = _reason(exc)
                conn = self._open_again()  # once: a restarted server, a dropped idle session
                if conn is None:
                    why = f"{why}; {self._failure}"
                else:
                    try:
                        return self._take(conn, wanted)
                    except psycopg.Error as exc:
                        self._lost(exc)
                        why = _reason(exc)
        return f"lock '{wanted[0]}' cannot be taken across hosts: {why}"

    def _take(self, conn: psycopg.Connection[tuple[Any, ...]], wanted: list[str]) -> str | None:
        taken: list[str] = []
        for name in wanted:
            if not _try(conn, name):
                holder = self._holder_of(conn, name)
                for done in taken:
                    _unlock(conn, done)
                return f"lock '{name}' is held by {holder}"
            taken.append(name)
        self._held.update(wanted)
        return None

    def unlock(self, names: Sequence[str]) -> None:
        """Free the locks of `names` taken by `try_lock` (never raises: a lock of a lost
        connection is free already, which is logged)."""
        wanted = sorted(set(names))
        with self._mutex:
            held = [name for name in wanted if self._held[name] > 0]
            for name in held:
                self._held[name] -= 1
            self._held += Counter()  # drops the names no longer held
            conn = self._conn
            if conn is None or not held:
                return
            try:
                for name in held:
                    _unlock(conn, name)
            except psycopg.Error as exc:
                self._lost(exc, also=held)
                self._reconnect()

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            if self._conn is not None:
                self._conn.close()  # the server frees what is still held
                self._conn = None
            self._held.clear()

    # -- the connection (under `_mutex`) -------------------------------------------------

    def _connection(self) -> tuple[psycopg.Connection[tuple[Any, ...]] | None, str]:
        """The lock connection; (None, why) while there is none: the first one is opened
        here, a lost one again on a thread of its own (`_reconnect`)."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn, ""
        if conn is not None:
            self._lost(None)
        if not self._tried:
            self._tried = True
            try:
                conn = self._open()
            except psycopg.Error as exc:
                self._failed(exc)
                return None, self._failure
            self._conn = conn
            return conn, ""
        self._reconnect()
        return None, self._failure or (
            f"the history database at {self.address} is being connected to again"
        )

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            make_conninfo(
                self.url,
                connect_timeout=max(2, math.ceil(self.timeout)),
                application_name=application_name(self.holder),
                tcp_user_timeout=round(self.timeout * 1000),
                # Idle between runs that need locks (a nightly job's): kept alive for the
                # firewalls and NATs that drop a silent session.
                keepalives=1,
                keepalives_idle=60,
            ),
            autocommit=True,
        )

    def _open_again(self) -> psycopg.Connection[tuple[Any, ...]] | None:
        """A connection found lost by a lock about to be taken is opened again here, once:
        the server restarted or dropped an idle session, and the run need not be refused
        (after a failure, `_reconnect` tries again off this thread)."""
        try:
            conn = self._open()
        except psycopg.Error as exc:
            self._failed(exc)
            return None
        self._take_again(conn)
        self._conn, self._failure = conn, ""
        return conn

    def _failed(self, exc: psycopg.Error) -> None:
        self._retry_at = self.clock.monotonic() + RETRY_PAUSE
        self._failure = f"cannot reach the history database at {self.address}: {_reason(exc)}"

    def _reconnect(self) -> None:
        """Open the connection again on a thread of its own, unless one is at it or the
        last try failed less than RETRY_PAUSE ago."""
        running = self._reconnecting is not None and self._reconnecting.is_alive()
        if running or self._closed or self.clock.monotonic() < self._retry_at:
            return
        self._reconnecting = threading.Thread(
            target=self._reconnect_now, name="cronctl-lock-connection", daemon=True
        )
        self._reconnecting.start()

    def _reconnect_now(self) -> None:
        try:
            conn = self._open()
        except psycopg.Error as exc:
            with self._mutex:
                self._failed(exc)
            return
        with self._mutex:
            if self._closed:
                conn.close()
                return
            self._take_again(conn)
            self._conn, self._failure = conn, ""

    def _lost(self, exc: BaseException | None, also: Sequence[str] = ()) -> None:
        """The connection is gone, and the server freed every lock it held: say so loudly."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        lost = sorted(set(self._held) | set(also))
        if lost:
            still = sorted(self._held)  # of runs still going: taken again
            log.error(
                "the connection to %s that held shared locks across hosts was lost%s: the"
                " server released %s, so a run on another host that needs one may have"
                " started beside ours%s",
                self.address,
                f" ({_reason(exc)})" if exc is not None else "",
                ", ".join(f"'{name}'" for name in lost),
                f"; {', '.join(repr(n) for n in still)} taken again when the database answers"
                if still
                else "",
            )

    def _take_again(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """On a new connection, the locks runs of this process still hold (lost with the old
        one), as many times as they were taken; one another host took meanwhile is logged."""
        for name, count in list(self._held.items()):
            try:
                for _ in range(count):
                    if not _try(conn, name):
                        log.error(
                            "shared lock '%s' was taken meanwhile by %s: runs that need it"
                            " overlap across hosts until ours end",
                            name,
                            self._holder_of(conn, name),
                        )
                        del self._held[name]
                        break
            except psycopg.Error:
                return  # lost again: the next call tries again

    def _holder_of(self, conn: psycopg.Connection[tuple[Any, ...]], name: str) -> str:
        key = lock_key(name)
        row = conn.execute(_HOLDER, ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
        if row is None:
            return "another host (it was freed meanwhile)"
        return holder_from(row[0], row[1])


def _try(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
    return bool(row and row[0])


def _unlock(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))


def _reason(exc: BaseException) -> str:
    return _first_line(exc, None)  # one line, without what the message says already


def fleet_holder(program: str, host: str, task: str | None = None) -> str:
    """How a lock connection names its holder: host, program and process."""
    of_task = f"task '{task}' on " if task else ""
    return f"{of_task}host {host} ({program}, pid {os.getpid()})"
