"""A PostgreSQL history's connection lost (cronctl/store/postgres/connection.py): opened again
at once when the server is there (the call raises ConnectionLostError: reachable), else the
next connects wait RECONNECT_BACKOFF and the calls in between fail at once; another connection
of the process that opened meanwhile ends the wait."""

from __future__ import annotations

import pytest

from cronctl.errors import ConnectionLostError, DatabaseUnavailableError

pytest.importorskip("psycopg")

from cronctl.store.postgres import PostgresStore  # noqa: E402
from cronctl.store.postgres.connection import RECONNECT_BACKOFF  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
def store(pg_url):
    with PostgresStore(pg_url) as opened:
        opened.clock = Clock()  # type: ignore[assignment]
        yield opened


def _server_away(store, monkeypatch) -> list[int]:
    """The server refuses every connect of `store` from now on; returns the list of attempts."""
    attempts: list[int] = []
    real = store._connect

    def refused():
        attempts.append(1)
        raise DatabaseUnavailableError("cannot reach the history database at x: refused")

    monkeypatch.setattr(store, "_connect", refused)
    store._db.close()
    store.real_connect = real
    return attempts


def test_connects_wait_the_back_off_and_calls_between_fail_at_once(store, monkeypatch):
    attempts = _server_away(store, monkeypatch)
    waited = []
    for step in [*RECONNECT_BACKOFF, RECONNECT_BACKOFF[-1]]:
        with pytest.raises(DatabaseUnavailableError):
            store.task_names()
        tried = len(attempts)
        for _ in range(5):  # within the step: at once, without trying
            with pytest.raises(DatabaseUnavailableError):
                store.task_names()
        assert len(attempts) == tried
        store.clock.mono += step
        waited.append(step)
    assert len(attempts) == len(waited)
    monkeypatch.setattr(store, "_connect", store.real_connect)  # the server is back
    assert store.task_names() == []
    store._db.close()
    store.task_names()  # a connect that works forgets the back-off: no wait after it


def test_another_connection_back_ends_the_wait(store, pg_url, monkeypatch):
    attempts = _server_away(store, monkeypatch)
    with pytest.raises(DatabaseUnavailableError):
        store.task_names()
    with pytest.raises(DatabaseUnavailableError):
        store.task_names()
    assert len(attempts) == 1
    PostgresStore(pg_url).close()  # another connection of this process got through
    with pytest.raises(DatabaseUnavailableError):
        store.task_names()  # tried at once (still refused here, by the fake)
    assert len(attempts) == 2


def test_a_connection_lost_between_calls_is_opened_again_at_once(store, pg_server, pg_url):
    pid = store._read_one("SELECT pg_backend_pid()")[0]
    pg_server.psql(f"SELECT pg_terminate_backend({pid})", pg_url.rsplit("/", 1)[1])
    with pytest.raises(ConnectionLostError) as lost:
        store.task_names()
    assert "cannot reach the history database" in lost.value.message
    assert store.task_names() == []  # the new connection, opened by the failed call
