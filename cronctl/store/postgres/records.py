"""serve's row, acknowledgements and the journal of `cronctl rename` in PostgreSQL:
`ServeStateRecorder`, `Acknowledgements` and `Renames`, as cronctl/store/serve_state.py,
acks.py and renames.py record them.

A rename's journal row is settled by whoever opens the store next, by the task file, exactly
as renames.py says; and, since several hosts may share the database, the renamer also holds
a session advisory lock on the row from `begin_rename` to its end: a row whose renamer is
still connected is left alone by every host, not only by the one that holds the file's lock.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from cronctl.errors import StoreError
from cronctl.records import Ack, Rename, ServeState
from cronctl.store.database import from_ms, to_ms
from cronctl.store.postgres.connection import PgDatabase
from cronctl.store.renames import DROPPED, RENAMED, file_was_renamed, lock_if_free

RENAME_LOCK = 0x72656E  # "ren": advisory locks (RENAME_LOCK, journal id) of open renames
_RENAME_ACKS = (
    "DELETE FROM acks WHERE task = %(new)s AND EXISTS (SELECT 1 FROM acks WHERE task = %(old)s)",
    "UPDATE acks SET task = %(new)s WHERE task = %(old)s",
)


class PgRecordsStore(PgDatabase):
    """serve's state row, the acks and the rename journal."""

    # -- serve state -----------------------------------------------------------------------

    def serve_started(self, *, pid: int, hostname: str, version: str, now: datetime) -> None:
        at = to_ms(now)
        self._write_one(
            "INSERT INTO serve_state (id, pid, hostname, version, started_at, heartbeat_at,"
            " stopped_at, tasks_loaded_at) VALUES (1, %s, %s, %s, %s, %s, NULL, %s)"
            " ON CONFLICT (id) DO UPDATE SET pid = EXCLUDED.pid, hostname = EXCLUDED.hostname,"
            " version = EXCLUDED.version, started_at = EXCLUDED.started_at,"
            " heartbeat_at = EXCLUDED.heartbeat_at, stopped_at = NULL,"
            " tasks_loaded_at = EXCLUDED.tasks_loaded_at",
            (pid, hostname, version, at, at, at),
        )

    def tasks_loaded(self, now: datetime) -> None:
        self._write_one("UPDATE serve_state SET tasks_loaded_at = %s WHERE id = 1", (to_ms(now),))

    def heartbeat(self, now: datetime) -> None:
        self._write_one("UPDATE serve_state SET heartbeat_at = %s WHERE id = 1", (to_ms(now),))

    def serve_stopped(self, now: datetime) -> None:
        self._write_one(
            "UPDATE serve_state SET stopped_at = %s, heartbeat_at = %s WHERE id = 1",
            (to_ms(now), to_ms(now)),
        )

    def serve_state(self) -> ServeState | None:
        row = self._read_one(
            "SELECT pid, hostname, version, started_at, heartbeat_at, stopped_at,"
            " tasks_loaded_at FROM serve_state WHERE id = 1"
        )
        if row is None:
            return None
        return ServeState(
            row[0],
            row[1],
            row[2],
            from_ms(row[3]),
            from_ms(row[4]),
            from_ms(row[5]),
            from_ms(row[6]),
        )

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
