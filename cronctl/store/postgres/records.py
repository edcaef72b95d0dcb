"""The serves' rows (one per host, their heartbeats and leases), acknowledgements and the
journal of `cronctl rename` in PostgreSQL:
`ServeStateRecorder`, `Acknowledgements` and `Renames`, as cronctl/store/serve_state.py,
acks.py and renames.py record them.

A rename's journal row is settled by whoever opens the store next, by the task file, exactly
as renames.py says; and, since several hosts may share the database, the renamer also holds
a session advisory lock on the row from `begin_rename` to its end: a row whose renamer is
still connected is left alone by every host, not only by the one that holds the file's lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from cronctl.errors import StoreError
from cronctl.records import DEFAULT_LEASE, Ack, DeclaredDead, Heartbeat, Rename, ServeState
from cronctl.store.database import from_ms, to_ms
from cronctl.store.postgres.connection import Connection, PgDatabase
from cronctl.store.renames import DROPPED, RENAMED, file_was_renamed, lock_if_free
from cronctl.store.runs import RUN_COLUMNS, run_from_row
from cronctl.store.serve_state import SERVE_COLUMNS, newest_serve, serve_from_row

RENAME_LOCK = 0x72656E  # "ren": advisory locks (RENAME_LOCK, journal id) of open renames
_RENAME_ACKS = (
    "DELETE FROM acks WHERE task = %(new)s AND EXISTS (SELECT 1 FROM acks WHERE task = %(old)s)",
    "UPDATE acks SET task = %(new)s WHERE task = %(old)s",
)


# Milliseconds since the epoch on the database's clock: what heartbeats and leases use.
DB_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
# This host's heartbeat (at its own clock's time, which `status` shows) and its lease
# renewed (on the database's clock); returns when and by whom it had been declared dead
# (NULL: it was not), and puts it back among the live serves.
_RENEW = (
    "WITH old AS (SELECT host, declared_dead_at, declared_dead_by FROM serves"
    " WHERE host = %(me)s FOR UPDATE)"
    f" UPDATE serves s SET heartbeat_at = %(now)s, lease_until = {DB_NOW_MS} + s.lease_ms,"
    " declared_dead_at = NULL, declared_dead_by = NULL FROM old WHERE s.host = old.host"
    " RETURNING old.declared_dead_at, old.declared_dead_by,"
    f" {DB_NOW_MS}, s.lease_ms"
)
# The serves whose lease ran out and that did not stop cleanly: dead, declared by this one,
# provided this one has been beating for a whole lease of theirs (`beating`, in ms): after
# the whole database was out of reach, nobody could beat, and the first serve back must give
# the others the time to come back too (docs/reliability.md, "The database unreachable").
_DECLARE_DEAD = (
    f"UPDATE serves SET declared_dead_at = {DB_NOW_MS}, declared_dead_by = %(me)s"
    " WHERE host <> %(me)s AND stopped_at IS NULL AND declared_dead_at IS NULL"
    f" AND lease_until < {DB_NOW_MS} AND lease_ms <= %(beating)s"
    " RETURNING host, heartbeat_at, lease_ms, declared_dead_at"
)
# A dead serve's runs; not `run-now`'s (trigger manual): that process records its own end,
# as serve's start-up recovery leaves them (cronctl/serve/recovery.py).
_ABANDON = (
    "UPDATE runs SET status = 'abandoned', finished_at = %s, reason = %s"
    f" WHERE host = %s AND status = 'running' AND trigger <> 'manual' RETURNING {RUN_COLUMNS}"
)


class PgRecordsStore(PgDatabase):
    """serve's state row, the acks and the rename journal."""

    # This serve's unbroken run of heartbeats, on the database's clock (ms): since when, the
    # last one, and on which connection (a new connection breaks the run).
    _beating_since: int | None = None
    _last_beat = 0
    _beat_connection: object = None

    # -- serve state: one row per host, and the lease ------------------------------------

    def serve_started(
        self,
        *,
        pid: int,
        hostname: str,
        version: str,
        now: datetime,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        """This host's serve row, anew (a serve declared dead before is back); this store
        then speaks for `hostname`. Its lease runs on the database's clock."""
        self.host = hostname
        at, lease_ms = to_ms(now), round(lease * 1000)
        self._write_one(
            "INSERT INTO serves (host, pid, version, started_at, heartbeat_at, stopped_at,"
            f" tasks_loaded_at, lease_ms, lease_until) VALUES (%s, %s, %s, %s, %s, NULL, %s, %s,"
            f" {DB_NOW_MS} + %s) ON CONFLICT (host) DO UPDATE SET pid = EXCLUDED.pid,"
            " version = EXCLUDED.version, started_at = EXCLUDED.started_at,"
            " heartbeat_at = EXCLUDED.heartbeat_at, stopped_at = NULL,"
            " tasks_loaded_at = EXCLUDED.tasks_loaded_at, lease_ms = EXCLUDED.lease_ms,"
            " lease_until = EXCLUDED.lease_until, declared_dead_at = NULL,"
            " declared_dead_by = NULL",
            (hostname, pid, version, at, at, at, lease_ms, lease_ms),
        )

    def tasks_loaded(self, now: datetime) -> None:
        self._write_one(
            "UPDATE serves SET tasks_loaded_at = %s WHERE host = %s", (to_ms(now), self.host)
        )

    def heartbeat(self, now: datetime) -> Heartbeat:
        """Renew this host's lease and, in the same transaction, declare dead every serve
        whose lease ran out, recording its runs `abandoned` (docs/reliability.md, "A host
        dies"). Both are measured on the database's clock, never on two hosts' clocks. A row
        lock on the dead serve's row makes one survivor do it, once. Only a serve that has
        been beating without a break for a whole lease of the other's declares it dead:
        a failed heartbeat, a new connection or a gap longer than its own lease between two
        beats starts its run of beats anew."""
        try:
            with self._write() as db:
                mine = db.execute(_RENEW, {"me": self.host, "now": to_ms(now)}).fetchone()
                beating = 0 if mine is None else self._beating(db, mine[2], mine[3])
                dead = db.execute(_DECLARE_DEAD, {"me": self.host, "beating": beating})
                declared = tuple(self._abandon_runs_of(db, row) for row in dead.fetchall())
        except StoreError:
            self._beating_since = None
            raise
        if mine is None or mine[0] is None:
            return Heartbeat(declared=declared)
        return Heartbeat(from_ms(mine[0]), mine[1], declared)

    def _beating(self, db: Connection, now_ms: int, lease_ms: int) -> int:
        """How long (ms) this serve has been beating without a break, this beat included."""
        if (
            self._beating_since is None
            or db is not self._beat_connection
            or now_ms - self._last_beat > lease_ms
        ):
            self._beating_since = now_ms
        self._beat_connection = db
        self._last_beat = now_ms
        return now_ms - self._beating_since

    def _abandon_runs_of(self, db: Connection, row: tuple[Any, ...]) -> DeclaredDead:
        host, heartbeat_ms, lease_ms, dead_ms = row
        last = from_ms(heartbeat_ms)
        assert last is not None
        reason = (
            f"host {host} stopped heartbeating at {last.isoformat(timespec='seconds')}"
            f" (lease {lease_ms / 1000:g} s); declared dead by {self.host}"
        )
        runs = db.execute(_ABANDON, (dead_ms, reason, host)).fetchall()
        return DeclaredDead(host, last, tuple(run_from_row(run) for run in runs))

    def serve_stopped(self, now: datetime) -> None:
        self._write_one(
            "UPDATE serves SET stopped_at = %s, heartbeat_at = %s WHERE host = %s",
            (to_ms(now), to_ms(now), self.host),
        )

    def serves(self) -> list[ServeState]:
        with self._guard():
            rows = self._conn().execute(f"SELECT {SERVE_COLUMNS} FROM serves ORDER BY host")
            return [serve_from_row(row) for row in rows.fetchall()]

    def serve_state(self) -> ServeState | None:
        return newest_serve(self.serves(), self.host)

    # -- acknowledgements ------------------------------------------------------------------

    def acknowledge(
        self, task: str, *, at: datetime, by: str | None = None, note: str | None = None
    ) -> Ack:
        self._write_one(
            "INSERT INTO acks (task, acked_at, acked_by, note) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (task) DO UPDATE SET acked_at = EXCLUDED.acked_at,"
            " acked_by = EXCLUDED.acked_by, note = EXCLUDED.note",
            (task, to_ms(at), by, note),
        )
        return Ack(task, from_ms(to_ms(at)), by, note)

    def acks(self) -> dict[str, Ack]:
        rows = self._read("SELECT task, acked_at, acked_by, note FROM acks")
        return {task: Ack(task, from_ms(at), by, note) for task, at, by, note in rows}

    # -- renames ---------------------------------------------------------------------------

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
        row = self._write_one(
            "INSERT INTO renames (old, new, tasks_file, digest_before, digest_after,"
            " started_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id,"
            " pg_advisory_lock(%s, id::integer)",
            (old, new, tasks_file, digest_before, digest_after, to_ms(now), RENAME_LOCK),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _release(self, rename_id: int) -> None:
        self._read_one("SELECT pg_advisory_unlock(%s, %s::integer)", (RENAME_LOCK, rename_id))

    def finish_rename(self, rename_id: int) -> Rename:
        try:
            with self._write() as conn:
                row = conn.execute(
                    "SELECT old, new, outcome, runs FROM renames WHERE id = %s FOR UPDATE",
                    (rename_id,),
                ).fetchone()
                if row is None:
                    raise StoreError(f"no rename with id {rename_id} in the journal")
                old, new, outcome, runs = row
                if outcome is not None:
                    return Rename(rename_id, old, new, outcome, runs)
                runs = conn.execute(
                    "UPDATE runs SET task = %s WHERE task = %s", (new, old)
                ).rowcount
                for statement in _RENAME_ACKS:
                    conn.execute(statement, {"old": old, "new": new})
                conn.execute(
                    "UPDATE renames SET outcome = %s, runs = %s WHERE id = %s",
                    (RENAMED, runs, rename_id),
                )
                return Rename(rename_id, old, new, RENAMED, runs)
        except psycopg.IntegrityError:
            raise StoreError(
                f"cannot rename the history of rename {rename_id}: the new name has runs"
                " of the same slots",
                hint="see `cronctl history`",
            ) from None
        finally:
            self._release_quietly(rename_id)

    def _release_quietly(self, rename_id: int) -> None:
        try:
            self._release(rename_id)
        except StoreError:
            pass  # the connection is gone, and its session's locks with it

    def drop_rename(self, rename_id: int) -> None:
        self._write_one(
            "UPDATE renames SET outcome = %s WHERE id = %s AND outcome IS NULL",
            (DROPPED, rename_id),
        )
        self._release_quietly(rename_id)

    def history_rows(self, task: str) -> int:
        row = self._read_one(
            "SELECT (SELECT COUNT(*) FROM runs WHERE task = %s)"
            " + (SELECT COUNT(*) FROM acks WHERE task = %s)",
            (task, task),
        )
        assert row is not None
        return int(row[0])

    def renames_after(self, rename_id: int) -> list[Rename]:
        rows = self._read(
            "SELECT id, old, new, outcome, runs FROM renames WHERE id > %s ORDER BY id",
            (rename_id,),
        )
        return [Rename(*row) for row in rows]

    def rename_stragglers(self, old: str, new: str) -> int:
        with self._write() as conn:
            count = conn.execute("UPDATE runs SET task = %s WHERE task = %s", (new, old)).rowcount
            for statement in _RENAME_ACKS:
                conn.execute(statement, {"old": old, "new": new})
        return int(count)

    def settle_open_renames(self) -> list[Rename]:
        """Finish or drop the journal rows a killed `rename` left open (RenameStore's rule),
        skipping a row whose renamer still holds its advisory lock."""
        if self.read_only:
            return []
        rows = self._read(
            "SELECT id, old, new, tasks_file, digest_before, digest_after FROM renames"
            " WHERE outcome IS NULL ORDER BY id"
        )
        settled = []
        for rename_id, old, new, path, before, after in rows:
            taken = self._read_one(
                "SELECT pg_try_advisory_lock(%s, %s::integer)", (RENAME_LOCK, rename_id)
            )
            if not (taken and taken[0]):
                continue  # its renamer is still at work, on some host
            with lock_if_free(path) as free:
                if not free:
                    self._release_quietly(rename_id)
                    continue
                if file_was_renamed(path, before, after, old, new):
                    settled.append(self.finish_rename(rename_id))
                else:
                    self.drop_rename(rename_id)
                    settled.append(Rename(rename_id, old, new, DROPPED))
        return settled
