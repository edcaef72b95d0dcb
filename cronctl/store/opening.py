"""Which store a database setting names, and opening it (README.md#more-than-one-machine).

A file path (or `:memory:`) is the SQLite history, `HistoryStore`. A `postgresql://` or
`postgres://` URL is a PostgreSQL history shared by several hosts (cronctl.store.postgres),
whose driver, psycopg 3, is the optional extra `cronctl[postgres]`: without it, opening says
which extra to install. Any other `scheme://` is refused before anything is created: a URL
cronctl does not know must never become a folder named `scheme:` with a SQLite file in it.

Each opener has the SQLite store's meaning: `open_store` for a command (and serve's second
connections), `open_store_for_serve` for serve's start (checked writable; a damaged SQLite
file moved aside), `open_read_only_store` for `top` and `upcoming`. The PostgreSQL package is
imported only when a URL names it: nothing else pays for the driver.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cronctl.errors import DatabaseSettingAtStartError, DatabaseSettingError
from cronctl.locations import POSTGRES_SCHEMES, is_url, masked

if TYPE_CHECKING:
    from cronctl.history import History, ReadOnlyReader, ServeHistory

EXTRA = "pip install 'cronctl[postgres]'"


def is_postgres(db: str) -> bool:
    """Whether the setting names a PostgreSQL history (refusing any other URL)."""
    if not is_url(db):
        return False
    scheme = db.partition("://")[0].lower()
    if scheme in POSTGRES_SCHEMES:
        if masked(db) != db:
            # A URL shows in `ps` (--db), in the task file ([defaults] db) and in a unit file:
            # the password comes from libpq's own sources only.
            raise DatabaseSettingError(
                f"history database {masked(db)}: the URL holds a password",
                hint="leave it out: libpq reads PGPASSWORD, ~/.pgpass or a service file",
            )
        return True
    raise DatabaseSettingError(
        f"history database {masked(db)}: cronctl keeps its history in a SQLite file (a path) or in"
        f" PostgreSQL (postgresql://USER@HOST/DB); {scheme}:// is not supported",
        hint="give a file path, or a postgresql:// URL",
    )


def _need_driver(db: str) -> None:
    # The driver is looked for before the package that imports it, so that its absence is
    # one line naming the extra, not an ImportError from inside cronctl.
    if importlib.util.find_spec("psycopg") is None:
        raise DatabaseSettingError(
            f"history database {masked(db)}: the PostgreSQL history needs psycopg,"
            " which is not installed",
            hint=EXTRA,
        )


def open_store(db: str | os.PathLike[str], *, tasks_file: Path | None = None) -> History:
    """The history named by `db`, for reading and writing."""
    db = os.fspath(db)
    if is_postgres(db):
        _need_driver(db)
        from cronctl.store.postgres import PostgresStore

        return PostgresStore(db)
    from cronctl.store import HistoryStore

    return HistoryStore(db, tasks_file=tasks_file)


def open_store_for_serve(
    db: str, *, now: datetime, tasks_file: Path | None = None
) -> tuple[ServeHistory, Path | None]:
    """The history for serve's start, and where a damaged SQLite file was moved (or None).
    A setting serve cannot use is EX_CONFIG (78): systemd must not restart it in a loop."""
    try:
        postgres = is_postgres(db)
        if postgres:
            _need_driver(db)
    except DatabaseSettingError as exc:
        raise DatabaseSettingAtStartError(exc.message, hint=exc.hint) from None
    if postgres:
        from cronctl.store.postgres import open_postgres_for_serve

        return open_postgres_for_serve(db, now=now)
    from cronctl.store import open_for_serve

    return open_for_serve(db, now=now, tasks_file=tasks_file)


def open_read_only_store(db: str) -> ReadOnlyReader:
    """The history for a viewer that only reads (`top`, `upcoming`); never created."""
    if is_postgres(db):
        _need_driver(db)
        from cronctl.store.postgres import open_postgres_read_only

        return open_postgres_read_only(db)
    from cronctl.store.recent import open_read_only

    return open_read_only(db)
