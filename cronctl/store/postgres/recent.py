"""A PostgreSQL history for a viewer that only reads: `cronctl top` and `cronctl upcoming`,
as cronctl/store/recent.py's `ReadOnlyHistory` is for SQLite.

The session is read-only (`default_transaction_read_only`) and never creates the schema: on
a database that has no history yet, the tables exist as temporary tables of the session (an
empty history) until the real ones appear (`appeared`). `data_version` is a cheap "anything
written since": a digest of figures every write moves, each read from an index.
"""

from __future__ import annotations

from collections.abc import Iterable

from cronctl.errors import ReadOnlyDatabaseError
from cronctl.records import Run, Status
from cronctl.store.postgres import PostgresStore
from cronctl.store.postgres import schema as pg_schema
from cronctl.store.runs import RUN_COLUMNS, STATUSES, run_from_row

# Every write moves one of these: a claim (max id, newest start), an end (the runs in
# progress), a condition skip folded (the newest start), a prune (min id), serve's heartbeat
# and reloads, an ack, a notification error kept (the newest run's).
_CHANGES = (
    "SELECT (SELECT max(id) FROM runs), (SELECT min(id) FROM runs),"
    " (SELECT max(started_at) FROM runs),"
    " (SELECT count(*) || ':' || coalesce(sum(id), 0) FROM runs WHERE status = 'running'),"
    " (SELECT string_agg(host || ':' || heartbeat_at || ':' || coalesce(stopped_at, 0) || ':'"
    "  || coalesce(tasks_loaded_at, 0) || ':' || pid || ':' || coalesce(declared_dead_at, 0),"
    "  ',' ORDER BY host) FROM serves),"
    " (SELECT count(*) || ':' || coalesce(max(acked_at), 0) FROM acks),"
    " (SELECT md5(coalesce(string_agg(coalesce(notify_error, ''), ','), '')) FROM"
    "  (SELECT notify_error FROM runs ORDER BY started_at DESC, id DESC LIMIT 50) AS newest)"
)


class ReadOnlyPostgres(PostgresStore):
    """Every reader of the history on a session that cannot write."""

    read_only_session = True

    def _prepare_schema(self) -> None:
        self.read_only = True
        self.read_only_cause = ReadOnlyDatabaseError(
            "`top` and `upcoming` only read it",
            hint="run `cronctl status` (or serve) once: it creates or upgrades the history",
        )
        with self._guard():
            version = pg_schema.read_version(self._db)
        self._refuse(version)
        self.absent = version == 0
        if self.absent:
            with self._guard(), self._db.transaction():
                self._db.execute("SET TRANSACTION READ WRITE")
                pg_schema.create_temporary(self._db)
        elif version is not None and version < pg_schema.SCHEMA_VERSION:
            raise ReadOnlyDatabaseError(
                f"the history database {self.path} needs an upgrade of its schema"
                f" (from {version} to {pg_schema.SCHEMA_VERSION}): `top` only reads it",
                hint="run `cronctl status` (or serve) once: it upgrades the history",
            )

    def appeared(self) -> bool:
        """Whether a history that did not exist when this was opened exists now."""
        if not self.absent:
            return False
        row = self._read_one(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename = 'cronctl_schema')"
        )
        return bool(row and row[0])

    def data_version(self) -> int:
        """A number that changes when anything was written since the last call (see
        _CHANGES); an unchanged number means nothing read from it before has changed."""
        row = self._read_one(_CHANGES)
        return hash(row) & 0x7FFF_FFFF_FFFF_FFFF

    def running_runs(self) -> list[Run]:
        """The runs in progress, oldest start first (the partial index runs_running)."""
        rows = self._read(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' ORDER BY started_at, id"
        )
        return [run_from_row(row) for row in rows]

    def recent_outcomes(
        self, tasks: Iterable[str], count: int
    ) -> dict[str, list[tuple[Status, int | None]]]:
        """Each task's latest `count` (status, duration in ms), newest first: one statement."""
        names = list(tasks)
        found: dict[str, list[tuple[Status, int | None]]] = {name: [] for name in names}
        rows = self._read(
            "SELECT n.task, r.status, r.duration_ms"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS n(task, k) CROSS JOIN LATERAL"
            " (SELECT status, duration_ms, started_at, id FROM runs WHERE task = n.task"
            "  ORDER BY started_at DESC, id DESC LIMIT %s) AS r"
            " ORDER BY n.k, r.started_at DESC, r.id DESC",
            (names, count),
        )
        for task, status, duration in rows:
            if status in STATUSES:
                found[task].append((STATUSES[status], duration))
        return found


def open_read_only(url: str) -> ReadOnlyPostgres:
    """The history at `url` for reading only; an empty one while it has no schema."""
    return ReadOnlyPostgres(url)
