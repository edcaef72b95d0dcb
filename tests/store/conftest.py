"""The history store's tests, run against both stores.

`store` is a fresh, empty history of each kind in turn (ids `sqlite`, `postgresql`): the
SQLite store in memory, and the PostgreSQL store on one database of the session's server
(tests/pgserver.py), emptied before each test (TRUNCATE ... RESTART IDENTITY: a database per
test costs several times as much). `sqlite_store` is for the tests about SQLite itself (its
PRAGMAs, files, query plans, its error codes): they say so by asking for it.

`histories` opens the same fresh stores for tests that need several in one test, such as the
hypothesis tests (one store an example, on a fixture that lives for the session).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from cronctl.store import HistoryStore

BACKENDS = ("sqlite", "postgresql")
TABLES = "runs, run_output, serves, acks, renames, task_definitions"


class Histories:
    """Fresh, empty histories of either store (see the module docstring)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._url: str | None = None

    def url(self) -> str:
        """The session's PostgreSQL history database (skips without a server or psycopg)."""
        if self._url is None:
            server = self._request.getfixturevalue("pg_server")
            url = server.create_database("store")
            from cronctl.store.postgres import PostgresStore

            PostgresStore(url).close()  # creates the schema once
            self._url = url
        return self._url

    @contextlib.contextmanager
    def fresh(self, backend: str, **options: Any) -> Iterator[Any]:
        if backend == "sqlite":
            with HistoryStore(":memory:", **options) as opened:
                yield opened
            return
        url = self.url()
        import psycopg

        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        from cronctl.store.postgres import PostgresStore

        with PostgresStore(url, **options) as opened:
            yield opened


@pytest.fixture(scope="session")
def histories(request: pytest.FixtureRequest) -> Histories:
    return Histories(request)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, histories: Histories) -> Iterator[Any]:
    with histories.fresh(request.param) as opened:
        yield opened


@pytest.fixture
def sqlite_store() -> Iterator[HistoryStore]:
    """The SQLite store in memory, for tests of SQLite itself."""
    with HistoryStore(":memory:") as opened:
        yield opened
