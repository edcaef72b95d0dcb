"""Schema 8 in both stores: the host of each run, one serve row per host, and the lease
(cronctl/store/serve_state.py, cronctl/store/postgres/records.py, README.md#more-than-one-machine).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta

import pytest

from cronctl.locations import host_name
from cronctl.records import Heartbeat, Status, Trigger
from cronctl.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore
from cronctl.store.schema import statements

from .support import T0, execute, schema_version


def test_each_run_carries_the_host_that_started_it(store):
    assert store.host == host_name()
    one = store.start_run("a", Trigger.MANUAL, started_at=T0)
    [claimed] = store.start_runs([("b", Trigger.SCHEDULE, 1, T0)], started_at=T0)
    store.serve_started(pid=1, hostname="host-a", version="0.1", now=T0)
    after = store.start_run("c", Trigger.MANUAL, started_at=T0)  # the store speaks for host-a
    hosts = {run.id: run.host for run in store.runs(limit=None)}
    assert hosts == {one: host_name(), claimed: host_name(), after: "host-a"}
    assert store.get_run(after).host == "host-a"


def test_host_name_is_cronctl_host_else_the_hostname():
    import socket

    assert host_name({"CRONCTL_HOST": "web-1"}) == "web-1"
    assert host_name({"CRONCTL_HOST": "  "}) == socket.gethostname()
    assert host_name({}) == socket.gethostname()


def test_an_abandoned_run_is_final_its_end_is_not_recorded_over(store):
    run_id = store.start_run("a", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
    abandoned = store.finish_run(
        run_id, status=Status.ABANDONED, finished_at=T0, reason="declared dead by b"
    )
    late = store.finish_run(
        run_id, status=Status.SUCCEEDED, finished_at=T0 + timedelta(seconds=5), exit_code=0
    )
    assert late == store.get_run(run_id)
    assert (late.status, late.reason, late.finished_at) == (
        Status.ABANDONED,
        "declared dead by b",
        abandoned.finished_at,
    )


def test_every_serve_of_the_history_is_listed_by_host(store):
    assert store.serves() == [] and store.serve_state() is None
    store.serve_started(pid=1, hostname="b", version="0.1", now=T0, lease=5)
    store.serve_started(pid=2, hostname="a", version="0.2", now=T0 + timedelta(seconds=1))
    assert [(s.hostname, s.pid, s.lease_seconds) for s in store.serves()] == [
        ("a", 2, 30.0),
        ("b", 1, 5.0),
    ]
    assert store.serve_state().hostname == "a"  # this store's host (the last started)
    assert store.heartbeat(T0 + timedelta(seconds=2)) == Heartbeat()
    assert store.serve_state().heartbeat_at == T0 + timedelta(seconds=2)


def test_migration_from_schema_7_moves_the_serve_row_and_leaves_old_runs_without_host(
    tmp_path, monkeypatch
):
    """A real version-7 file: its serve_state row becomes the `serves` row of its host, its
    runs have no host (shown "-"), and new runs carry one."""
    monkeypatch.setenv("CRONCTL_HOST", "old-host")
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:7]):
        for statement in statements(script):
            old.execute(statement)
        old.execute(f"PRAGMA user_version = {number + 1}")
    old.execute("INSERT INTO serve_state VALUES (1, 7, 'old-host', '0.9', 1000, 2000, 3000, 1500)")
    old.execute(
        "INSERT INTO runs (task, trigger, started_at, status) VALUES ('a', 'manual', 1, 'failed')"
    )
    old.close()
    with HistoryStore(path) as opened:
        assert schema_version(path) == SCHEMA_VERSION == 9
        [state] = opened.serves()
        assert (state.hostname, state.pid, state.version, state.lease_seconds) == (
            "old-host",
            7,
            "0.9",
            30.0,
        )
        assert state.stopped_at is not None and state.tasks_loaded_at is not None
        [legacy] = opened.runs()
        assert legacy.host is None
        opened.heartbeat(T0)
        assert opened.serve_state().heartbeat_at == T0
        tables = {row[0] for row in execute(opened, "SELECT name FROM sqlite_master")}
        assert "serve_state" not in tables and "serves" in tables


def test_postgres_migration_from_schema_7_moves_the_serve_row(pg_server, monkeypatch):
    """A PostgreSQL history of version 7 (its serve_state table and no runs.host, as item 1
    created it) is upgraded in place: UPGRADES[7]."""
    pytest.importorskip("psycopg")
    from cronctl.store.postgres import PostgresStore

    url = pg_server.create_database("v7")
    PostgresStore(url).close()
    database = url.rsplit("/", 1)[1]
    pg_server.psql(
        "ALTER TABLE runs DROP COLUMN host; DROP TABLE serves; DROP TABLE task_definitions;"
        " CREATE TABLE serve_state (id integer PRIMARY KEY CHECK (id = 1), pid integer NOT NULL,"
        " hostname text NOT NULL, version text NOT NULL, started_at bigint NOT NULL,"
        " heartbeat_at bigint NOT NULL, stopped_at bigint, tasks_loaded_at bigint);"
        " INSERT INTO serve_state VALUES (1, 7, 'old-host', '0.9', 1000, 2000, NULL, 1500);"
        " INSERT INTO runs (task, trigger, started_at, status) VALUES ('a', 'manual', 1, 'failed');"
        " UPDATE cronctl_schema SET version = 7",
        database,
    )
    monkeypatch.setenv("CRONCTL_HOST", "old-host")
    with PostgresStore(url) as store:
        [state] = store.serves()
        assert (state.hostname, state.pid, state.version, state.stopped_at) == (
            "old-host",
            7,
            "0.9",
            None,
        )
        assert [run.host for run in store.runs()] == [None]
        store.heartbeat(T0)
        assert store.serve_state().heartbeat_at == T0
    assert pg_server.psql("SELECT version FROM cronctl_schema", database).split() == ["9"]


# -- the lease, on a PostgreSQL history several hosts share ----------------------------------


@pytest.fixture
def pg_hosts(histories, monkeypatch):
    """Open stores on one fresh PostgreSQL history, each for a host of its own."""
    histories.fresh("postgresql").__enter__().close()  # emptied
    url = histories.url()
    from cronctl.store.postgres import PostgresStore

    opened = []

    def open_host(host: str, lease: float = 1.0):
        monkeypatch.setenv("CRONCTL_HOST", host)
        store = PostgresStore(url)
        store.serve_started(pid=len(opened) + 1, hostname=host, version="0.1", now=T0, lease=lease)
        opened.append(store)
        return store

    yield open_host
    for store in opened:
        store.close()


def test_a_serve_whose_lease_ran_out_is_declared_dead_and_its_runs_abandoned(pg_hosts):
    a, b, c = pg_hosts("a"), pg_hosts("b"), pg_hosts("c")
    [mine] = a.start_runs([("job", Trigger.SCHEDULE, 1, T0)], started_at=T0)
    manual = a.start_run("job", Trigger.MANUAL, started_at=T0)  # run-now's: its own end
    [theirs] = b.start_runs(
        [("job", Trigger.SCHEDULE, 1, T0 + timedelta(minutes=1))], started_at=T0
    )
    time.sleep(0.6)
    assert b.heartbeat(T0).declared == ()  # a's lease (1 s) has not run out yet
    c.heartbeat(T0)
    time.sleep(0.6)
    # a's lease ran out, but b has beaten for 0.6 s only: a survivor declares a serve dead
    # once it has itself beaten without a break for a whole lease of that serve's
    assert b.heartbeat(T0).declared == ()
    c.heartbeat(T0)
    time.sleep(0.5)
    beat = b.heartbeat(T0)
    assert [dead.host for dead in beat.declared] == ["a"]
    assert [run.id for run in beat.declared[0].runs] == [mine]
    assert c.heartbeat(T0).declared == ()  # once, by one survivor
    run = b.get_run(mine)
    assert run.status is Status.ABANDONED and run.finished_at is not None
    assert run.reason.startswith("host a stopped heartbeating at ")
    assert run.reason.endswith("(lease 1 s); declared dead by b")
    assert b.get_run(manual).status is Status.RUNNING
    assert b.get_run(theirs).status is Status.RUNNING
    [state] = [s for s in c.serves() if s.hostname == "a"]
    assert state.declared_dead_by == "b" and state.declared_dead_at is not None
    # a comes back: its heartbeat says so, once; the end of its run is not recorded over
    back = a.heartbeat(T0)
    assert back.declared_dead_by == "b" and back.declared_dead_at == state.declared_dead_at
    assert a.heartbeat(T0).declared_dead_at is None
    late = a.finish_run(mine, status=Status.SUCCEEDED, finished_at=T0, exit_code=0)
    assert late.status is Status.ABANDONED and late == run


def test_a_serve_that_stopped_cleanly_is_never_declared_dead(pg_hosts):
    a, b = pg_hosts("a"), pg_hosts("b")
    a.serve_stopped(T0)
    time.sleep(1.2)
    assert b.heartbeat(T0).declared == ()
    assert [s.declared_dead_at for s in b.serves()] == [None, None]


def test_each_serve_is_judged_by_its_own_lease(pg_hosts):
    a, b = pg_hosts("a", lease=30), pg_hosts("b", lease=1)
    a.heartbeat(T0)  # a's run of beats starts: it may declare b after b's lease of 1 s
    time.sleep(1.2)
    assert a.heartbeat(T0).declared[0].host == "b"
    assert b.heartbeat(T0).declared == ()  # a's 30 s lease holds


def test_after_the_database_was_out_of_reach_the_first_serve_back_waits_a_lease(pg_hosts):
    """Issue 17 item 4: when every serve was cut off, nobody could beat; the first serve back
    must not declare the others dead before they had a lease to come back themselves."""
    a, b = pg_hosts("a"), pg_hosts("b", lease=5)
    for _ in range(3):  # both beating for over a's lease
        a.heartbeat(T0), b.heartbeat(T0)
        time.sleep(0.4)
    b._db.close()  # the server restarted: b's connection is gone, as a's would be
    time.sleep(1.2)  # no beat from either for longer than a's lease (within b's own)
    assert b.heartbeat(T0).declared == ()  # b is back first: a's lease ran out, b waits
    time.sleep(0.5)
    assert b.heartbeat(T0).declared == ()
    a.heartbeat(T0)  # a is back within b's wait: alive
    time.sleep(0.6)
    assert b.heartbeat(T0).declared == ()
    assert [s.declared_dead_at for s in b.serves()] == [None, None]
    # a does not come back this time: b declares it once it beat for a whole lease of a's
    for _ in range(4):
        time.sleep(0.4)
        beat = b.heartbeat(T0)
        if beat.declared:
            break
    assert [dead.host for dead in beat.declared] == ["a"]


def test_a_serve_whose_own_beats_stopped_for_longer_than_its_lease_waits_a_lease(pg_hosts):
    """A serve paused (SIGSTOP, a suspended machine) or whose heartbeat failed starts its run
    of beats anew: it does not declare dead the serves that could not beat either."""
    a, b = pg_hosts("a"), pg_hosts("b")
    for _ in range(3):
        a.heartbeat(T0), b.heartbeat(T0)
        time.sleep(0.4)
    time.sleep(1.2)  # nobody beats: b's own gap is longer than its lease
    assert b.heartbeat(T0).declared == ()
