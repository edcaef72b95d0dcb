"""The run history in PostgreSQL: the second implementation of `cronctl.history` (issue 17),
for a history that several hosts share.

`PostgresStore` answers every call as the SQLite `HistoryStore` does (cronctl/store/
__init__.py): the same `Run`, `TaskStats`, `ServeState`, `Ack` and `Rename` records, in the
same order, with times rounded to the millisecond, and the same typed errors. It is assembled
the same way, one class per reader over one base that owns the connection:

    PgDatabase          connection.py  psycopg connection, schema, `_guard`/`_write`/`batch`,
    |                                  psycopg errors -> typed StoreErrors (no password shown)
    +-- PgRunStore      runs.py        RunRecorder, RunReader, condition skips; claims
    |   +-- PgHealthStore     stats.py      HealthReader
    |   +-- PgRetentionStore  retention.py  Retention
    +-- PgRecordsStore        records.py    serves and their leases, acks, rename journal
    +-- PgDefinitionStore     definitions.py  what each host's serve runs, as digests
    schema.py: the tables and indexes (version 9, as SQLite's), created under an advisory lock
    recent.py: `ReadOnlyPostgres` for `top` and `upcoming` (ReadOnlyHistory's equivalent)

What is shared with the SQLite store, not copied: rows become records through store/runs.py's
`run_from_row`, the figures of a task are store/stats.py's `task_figures`, a folded skip's
reason is store/skips.py's, a rename is settled by store/renames.py's reading of the task file,
and the partial indexes' predicates are store/schema.py's.

Several hosts share it (README.md#several-serves-one-history): each run records its host,
each host's serve has a row with a lease on the database's clock, and a heartbeat declares
dead the serves whose lease ran out, abandoning their runs (records.py).

What differs, by nature: there is no file, so nothing is ever moved aside (`quick_check`
finds nothing: the server checks its own pages) and `open_postgres_for_serve` returns no
moved path; `prune` deletes by the same rule but leaves the space to autovacuum and
`checkpoint` does nothing (the server owns its write-ahead log); a connection that is lost
is opened again by the next call; and a server that cannot be reached raises
DatabaseUnavailableError (exit 75), a refused login or database DatabaseAccessError (exit 2;
78 when serve starts).

Importing this package imports psycopg (about 40 ms): only a command given a postgresql URL
does (the wiring in cronctl/locations.py and the CLI's store opener).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cronctl.errors import (
    DatabaseAccessAtStartError,
    DatabaseAccessError,
    DatabaseUnavailableAtStartError,
    DatabaseUnavailableError,
)
from cronctl.store.database import BUSY_TIMEOUT
from cronctl.store.postgres.definitions import PgDefinitionStore
from cronctl.store.postgres.records import PgRecordsStore
from cronctl.store.postgres.retention import PgRetentionStore
from cronctl.store.postgres.stats import PgHealthStore

if TYPE_CHECKING:
    from cronctl.history import History, ServeHistory
    from cronctl.store.postgres.recent import ReadOnlyPostgres


class PostgresStore(PgHealthStore, PgRetentionStore, PgRecordsStore, PgDefinitionStore):
    """Runs recorded in PostgreSQL: every reader's part, one connection. Connects, creates or
    migrates the schema, and settles a rename a killed `cronctl rename` left half done."""

    def __init__(self, url: str, *, timeout: float = BUSY_TIMEOUT) -> None:
        super().__init__(url, timeout=timeout)
        try:
            self.settle_open_renames()
        except BaseException:
            self.close()
            raise


if TYPE_CHECKING:

    def _implements_history(store: PostgresStore) -> History:
        return store  # mypy checks here that PostgresStore satisfies every protocol

    def _implements_serve_history(store: PostgresStore) -> ServeHistory:
        return store  # and what serve needs beyond them


def open_postgres_for_serve(url: str, *, now: datetime) -> tuple[PostgresStore, None]:
    """Open the history for `serve`: writable, else a StoreError (`open_for_serve` of the
    SQLite store, without its moving aside: a database is never moved). `now` is kept for
    the same signature. A refused login or database raises DatabaseAccessAtStartError (78),
    a server out of reach DatabaseUnavailableAtStartError (serve waits for it)."""
    del now
    try:
        store = PostgresStore(url)
    except DatabaseAccessError as exc:
        raise DatabaseAccessAtStartError(exc.message, hint=exc.hint) from None
    except DatabaseUnavailableError as exc:
        raise DatabaseUnavailableAtStartError(exc.message, hint=exc.hint) from None
    try:
        store.check_writable()
    except BaseException:
        store.close()
        raise
    return store, None


def open_postgres_read_only(url: str) -> ReadOnlyPostgres:
    """The history at `url` for `top` and `upcoming`, reading only."""
    from cronctl.store.postgres.recent import open_read_only

    return open_read_only(url)


__all__ = [
    "PostgresStore",
    "open_postgres_for_serve",
    "open_postgres_read_only",
]
