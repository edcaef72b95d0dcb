"""Shared locks across hosts on a PostgreSQL history (cronctl/store/postgres/locks.py,
README.md#shared-locks): session-level advisory locks on a connection of their own, the holder
named from its application_name, all or none, freed by the server when the connection dies,
fail closed when the database cannot be reached. Real server (tests/pgserver.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronctl.clock import SYSTEM_CLOCK
from cronctl.runner.locks import HeldLocks, LockFolder, LockTaken, fleet_locks_for
from tests.serve.fakes import FakeClock
from tests.support import wait_for

pytest.importorskip("psycopg")

from cronctl.store.postgres.locks import (  # noqa: E402
    RETRY_PAUSE,
    PgFleetLocks,
    application_name,
    holder_from,
    lock_key,
)


@pytest.fixture
def fleet_of(pg_url):
    opened: list[PgFleetLocks] = []

    def fleet(host: str, url: str = pg_url, clock=SYSTEM_CLOCK) -> PgFleetLocks:
        locks = PgFleetLocks(url, holder=f"host {host} (serve, pid 42)", clock=clock)
        opened.append(locks)
        return locks

    yield fleet
    for locks in opened:
        locks.close()


def test_a_lock_held_on_one_host_is_refused_on_another_naming_the_holder(fleet_of):
    a, b = fleet_of("host-a"), fleet_of("host-b")
    assert a.try_lock(["db"]) is None
    assert b.try_lock(["db"]) == "lock 'db' is held by host host-a (serve, pid 42)"
    assert b.try_lock(["other"]) is None  # another name is another lock
    a.unlock(["db"])
    assert b.try_lock(["db"]) is None
    assert a.try_lock(["db"]) == "lock 'db' is held by host host-b (serve, pid 42)"


def test_every_lock_or_none(fleet_of):
    a, b, c = fleet_of("host-a"), fleet_of("host-b"), fleet_of("host-c")
    assert a.try_lock(["x"]) is None
    assert b.try_lock(["w", "x"]) == "lock 'x' is held by host host-a (serve, pid 42)"
    assert c.try_lock(["w"]) is None  # b let go of `w` when `x` was refused


def test_taken_twice_by_one_process_it_is_held_until_freed_twice(fleet_of):
    """Session locks stack: two runs of one serve (their flocks keep them apart) each free
    their own hold."""
    a, b = fleet_of("host-a"), fleet_of("host-b")
    assert a.try_lock(["db"]) is None and a.try_lock(["db"]) is None
    a.unlock(["db"])
    assert b.try_lock(["db"]) is not None
    a.unlock(["db"])
    a.unlock(["db"])  # one too many: nothing held, nothing happens
    assert b.try_lock(["db"]) is None


def _cut(pg_url: str, holder: str) -> None:
    """End the lock connection of `holder` from outside, as a server restart would."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as admin:
        # With a timeout, pg_terminate_backend waits until the backend is gone (its locks
        # released), not only signalled.
        [(ended,)] = admin.execute(
            "SELECT bool_and(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application_name(holder),),
        ).fetchall()
        assert ended


def test_the_lock_dies_with_its_connection_which_is_said_loudly_and_taken_again(
    fleet_of, pg_url, caplog
):
    a, b = fleet_of("host-a"), fleet_of("host-b")
    assert a.try_lock(["db"]) is None
    _cut(pg_url, "host host-a (serve, pid 42)")
    assert b.try_lock(["db"]) is None  # the server released it: another host may start
    b.unlock(["db"])
    with caplog.at_level(logging.ERROR, logger="cronctl.serve.locks"):
        # The loss found by the next lock: connected again at once, that lock not refused
        assert a.try_lock(["other"]) is None
    [record] = [r for r in caplog.records if "was lost" in r.getMessage()]
    assert record.getMessage().endswith(
        "held shared locks across hosts was lost (terminating connection due to administrator"
        " command): the server released 'db', so a run on another host that needs one may have"
        " started beside ours; 'db' taken again when the database answers"
    )
    # `db`, still held by a run of a, was taken again on the new connection
    assert b.try_lock(["db"]) == "lock 'db' is held by host host-a (serve, pid 42)"


def test_a_lock_taken_by_another_host_while_the_connection_was_lost_is_logged(
    fleet_of, pg_url, caplog
):
    a, b = fleet_of("host-a"), fleet_of("host-b")
    assert a.try_lock(["db"]) is None
    _cut(pg_url, "host host-a (serve, pid 42)")
    assert b.try_lock(["db"]) is None
    with caplog.at_level(logging.ERROR, logger="cronctl.serve.locks"):
        a.unlock(["db"])  # the run's end finds the connection gone
        wait_for(
            lambda: a.try_lock(["db"]) == "lock 'db' is held by host host-b (serve, pid 42)",
            timeout=10,
            what="connected again",
        )
    messages = [r.getMessage() for r in caplog.records]
    [lost] = [m for m in messages if "was lost" in m]
    assert lost.endswith(
        "the server released 'db', so a run on another host that needs one"
        " may have started beside ours"
    ), lost  # that run ended: not taken again


def test_a_database_that_cannot_be_reached_refuses_every_lock_and_waits_before_trying_again(
    fleet_of,
):
    from tests.notify.servers import free_port

    clock = FakeClock(datetime(2026, 12, 6, tzinfo=UTC))
    locks = fleet_of("host-a", url=f"postgresql://nobody@127.0.0.1:{free_port()}/x", clock=clock)
    first = locks.try_lock(["db"])  # the first connection: on the caller's thread
    assert first is not None
    assert first.startswith("lock 'db' cannot be taken across hosts: cannot reach the history")
    assert locks.try_lock(["db"]) == first  # within RETRY_PAUSE: not even tried
    assert locks._reconnecting is None
    clock.advance(RETRY_PAUSE)
    assert locks.try_lock(["db"]) == first  # tried again, off the caller's thread
    reconnecting = locks._reconnecting
    assert reconnecting is not None
    reconnecting.join(timeout=10)
    assert locks.try_lock(["db"]) == first and locks._reconnecting is reconnecting


@given(st.text(max_size=40), st.text(max_size=40))
def test_lock_keys_are_signed_64_bit_and_one_per_name(first, second):
    assert -(2**63) <= lock_key(first) < 2**63
    assert lock_key(first) == lock_key(first)
    if first != second:
        assert lock_key(first) != lock_key(second)  # 64 bits: no collision in a test's names


@pytest.mark.parametrize(
    ("holder", "expected"),
    [
        ("host web-2 (serve, pid 4242)", "cronctl: host web-2 (serve, pid 4242)"),
        ("host " + "h" * 80, "cronctl: host " + "h" * 49),  # what the server keeps: 63 bytes
        ("host " + "é" * 40, "cronctl: host " + "é" * 24),  # never half a character
    ],
)
def test_application_name_is_cut_to_what_the_server_keeps(holder, expected):
    assert application_name(holder) == expected
    assert len(application_name(holder).encode()) <= 63


@pytest.mark.parametrize(
    ("app_name", "pid", "expected"),
    [
        ("cronctl: host web-2 (serve, pid 7)", 99, "host web-2 (serve, pid 7)"),
        ("psql", 99, "another session (psql, server pid 99)"),
        ("", 99, "another session (server pid 99)"),
        (None, None, "another host"),
    ],
)
def test_the_holder_as_messages_name_it(app_name, pid, expected):
    assert holder_from(app_name, pid) == expected


def test_a_lock_folder_takes_its_flock_then_the_fleets_and_frees_both(tmp_path, fleet_of):
    """The runner's view (cronctl/runner/locks.py): a lock of another host is refused as one
    of this host, naming that host, and the flock taken first is let go."""
    here = LockFolder(tmp_path / "a", fleet=fleet_of("host-a"))
    there = LockFolder(tmp_path / "b", fleet=fleet_of("host-b"))
    held = here.try_acquire(["db"], "task 'dump' (serve, pid 1)")
    assert isinstance(held, HeldLocks) and held.fleet_names == ("db",)
    refused = there.try_acquire(["db"], "task 'load' (serve, pid 2)")
    assert isinstance(refused, LockTaken)
    assert refused.reason == "lock 'db' is held by host host-a (serve, pid 42)"
    local = LockFolder(tmp_path / "b").try_acquire(["db"], "x")  # b's flock was let go
    assert isinstance(local, HeldLocks)
    local.release()
    held.release()
    assert held.fleet_names == ()
    again = there.try_acquire(["db"], "task 'load' (serve, pid 2)")
    assert isinstance(again, HeldLocks)
    again.release()


def test_only_a_postgresql_history_has_locks_across_hosts(tmp_path, pg_url):
    assert fleet_locks_for(str(tmp_path / "history.db"), SYSTEM_CLOCK, "serve") is None
    assert fleet_locks_for(":memory:", SYSTEM_CLOCK, "serve") is None
    locks = fleet_locks_for(pg_url, SYSTEM_CLOCK, "run-now", "dump")
    assert isinstance(locks, PgFleetLocks)
    assert locks.holder.startswith("task 'dump' on host ") and "(run-now, pid " in locks.holder


def test_a_lost_connection_that_cannot_be_opened_again_is_tried_off_the_callers_thread(
    fleet_of, pg_url, monkeypatch
):
    """The server gone for longer: the lock found lost is refused (fail closed), and the
    connection is tried again every RETRY_PAUSE on a thread of its own, its locks with it."""
    import psycopg

    clock = FakeClock(datetime(2026, 12, 6, tzinfo=UTC))
    a, b = fleet_of("host-a", clock=clock), fleet_of("host-b")
    assert a.try_lock(["db"]) is None
    _cut(pg_url, "host host-a (serve, pid 42)")

    def unreachable():
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(a, "_open", unreachable)
    refused = a.try_lock(["other"])
    assert refused == (
        "lock 'other' cannot be taken across hosts: terminating connection due to administrator"
        f" command; cannot reach the history database at {a.address}: connection refused"
    )
    assert a.try_lock(["other"]) is not None and a._reconnecting is None  # not before the pause
    monkeypatch.undo()  # the server is back
    clock.advance(RETRY_PAUSE)
    assert a.try_lock(["other"]) is not None  # tried again, off this thread
    assert a._reconnecting is not None
    a._reconnecting.join(timeout=10)
    assert a.try_lock(["other"]) is None
    assert b.try_lock(["db"]) == "lock 'db' is held by host host-a (serve, pid 42)"
