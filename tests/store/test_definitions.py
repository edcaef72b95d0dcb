"""Schema 9 in both stores: each host's task definitions as digests (cronctl/store/definitions.py,
cronctl/store/postgres/definitions.py, README.md#task-files-that-differ), and the upgrade of a
real version-8 history on both."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.model.digest import TaskDigest
from cronctl.records import TaskDefinition
from cronctl.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore
from cronctl.store.definitions import key_digests_text
from cronctl.store.schema import statements

from .support import T0, execute, schema_version

A = TaskDigest("aaaaaaaaaaaaaaaa", {"command": "1111111111111111", "schedule": "2222222222222222"})
B = TaskDigest("bbbbbbbbbbbbbbbb", {"command": "3333333333333333", "schedule": "2222222222222222"})
C = TaskDigest("cccccccccccccccc", {"schedule": "4444444444444444", "timeout": "5555555555555555"})
T1 = T0 + timedelta(minutes=5)


def as_host(store, host: str):
    store.host = host  # what serve_started does: the store then speaks for `host`
    return store


def test_a_host_s_definitions_are_recorded_and_read_back(store):
    as_host(store, "host-a")
    assert store.record_definitions({"backup": A, "report": C}, now=T0) == 2
    assert store.task_definitions(["host-a"]) == [
        TaskDefinition("host-a", "backup", A.digest, A.keys, T0),
        TaskDefinition("host-a", "report", C.digest, C.keys, T0),
    ]
    assert store.task_definitions([]) == [] and store.task_definitions(["host-b"]) == []


def test_a_reload_replaces_the_host_s_rows_and_touches_only_what_changed(store):
    as_host(store, "host-a").record_definitions({"backup": A, "report": C, "gone": C}, now=T0)
    as_host(store, "host-b").record_definitions({"backup": A}, now=T0)
    # host-a reloads: `gone` left the file, `backup` changed, `report` did not, `new` came
    changed = as_host(store, "host-a").record_definitions(
        {"backup": B, "report": C, "new": A}, now=T1
    )
    assert changed == 3  # one deleted, two written
    rows = {(d.task, d.digest, d.seen_at) for d in store.task_definitions(["host-a"])}
    assert rows == {("backup", B.digest, T1), ("report", C.digest, T0), ("new", A.digest, T1)}
    assert [(d.host, d.task) for d in store.task_definitions(["host-b"])] == [("host-b", "backup")]
    assert store.record_definitions({"backup": B, "report": C, "new": A}, now=T1) == 0
    assert store.record_definitions({}, now=T1) == 3
    assert store.task_definitions(["host-a"]) == []


def test_rows_come_by_task_then_host_and_divergent_keeps_the_tasks_hosts_disagree_on(store):
    as_host(store, "host-b").record_definitions({"same": A, "differs": B, "b-only": C}, now=T0)
    as_host(store, "host-a").record_definitions({"same": A, "differs": A, "a-only": C}, now=T0)
    as_host(store, "host-c").record_definitions({"same": A, "differs": A}, now=T0)
    every = store.task_definitions(["host-a", "host-b", "host-c"])
    assert [(d.task, d.host) for d in every] == sorted((d.task, d.host) for d in every)
    assert len(every) == 8
    divergent = store.task_definitions(["host-a", "host-b", "host-c"], divergent=True)
    assert [(d.task, d.host) for d in divergent] == [
        ("a-only", "host-a"),
        ("b-only", "host-b"),
        ("differs", "host-a"),
        ("differs", "host-b"),
        ("differs", "host-c"),
    ]
    # between host-a and host-c alone, only a-only differs (c lacks it)
    assert [
        (d.task, d.host) for d in store.task_definitions(["host-a", "host-c"], divergent=True)
    ] == [("a-only", "host-a")]
    assert store.task_definitions(["host-a"], divergent=True) == []


def test_only_digests_and_key_names_are_stored(store):
    as_host(store, "h").record_definitions({"t": C}, now=T0)
    [(digest, keys)] = execute(store, "SELECT digest, key_digests FROM task_definitions")
    assert digest == C.digest
    assert (
        keys
        == key_digests_text(C.keys)
        == ('{"schedule":"4444444444444444","timeout":"5555555555555555"}')
    )


def test_the_write_is_one_transaction_all_or_nothing(store):
    as_host(store, "h").record_definitions({"t": A}, now=T0)

    class Broken:
        digest = "dddddddddddddddd"

        @property
        def keys(self):
            raise RuntimeError("digest failed halfway")

    with pytest.raises(RuntimeError):
        store.record_definitions({"u": A, "v": Broken()}, now=T1)
    assert [(d.task, d.digest) for d in store.task_definitions(["h"])] == [("t", A.digest)]


# -- the upgrade from version 8 -----------------------------------------------------------------


def test_migration_from_schema_8_adds_the_task_definitions(tmp_path, monkeypatch):
    """A real version-8 file: its runs and serves kept, the table added empty, written after."""
    monkeypatch.setenv("CRONCTL_HOST", "old-host")
    path = tmp_path / "history.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:8]):
        for statement in statements(script):
            old.execute(statement)
        old.execute(f"PRAGMA user_version = {number + 1}")
    old.execute(
        "INSERT INTO serves (host, pid, version, started_at, heartbeat_at) VALUES"
        " ('old-host', 7, '0.9', 1000, 2000)"
    )
    old.execute(
        "INSERT INTO runs (task, trigger, started_at, status, host)"
        " VALUES ('a', 'manual', 1, 'failed', 'old-host')"
    )
    old.close()
    with HistoryStore(path) as opened:
        assert schema_version(path) == SCHEMA_VERSION == 9
        assert [s.pid for s in opened.serves()] == [7]
        assert [r.host for r in opened.runs()] == ["old-host"]
        assert opened.task_definitions(["old-host"]) == []
        assert opened.record_definitions({"a": A}, now=T0) == 1
        assert [d.host for d in opened.task_definitions(["old-host"])] == ["old-host"]


def test_postgres_migration_from_schema_8_adds_the_task_definitions(pg_server, monkeypatch):
    pytest.importorskip("psycopg")
    from cronctl.store.postgres import PostgresStore

    url = pg_server.create_database("v8")
    PostgresStore(url).close()
    database = url.rsplit("/", 1)[1]
    pg_server.psql(
        "DROP TABLE task_definitions;"
        " INSERT INTO serves (host, pid, version, started_at, heartbeat_at)"
        " VALUES ('old-host', 7, '0.9', 1000, 2000);"
        " INSERT INTO runs (task, trigger, started_at, status, host)"
        " VALUES ('a', 'manual', 1, 'failed', 'old-host');"
        " UPDATE cronctl_schema SET version = 8",
        database,
    )
    monkeypatch.setenv("CRONCTL_HOST", "old-host")
    with PostgresStore(url) as store:
        assert [s.pid for s in store.serves()] == [7]
        assert [r.host for r in store.runs()] == ["old-host"]
        assert store.record_definitions({"a": A}, now=T0) == 1
        assert [(d.host, d.task) for d in store.task_definitions(["old-host"])] == [
            ("old-host", "a")
        ]
    assert pg_server.psql("SELECT version FROM cronctl_schema", database).split() == ["9"]


# -- a property: both stores answer as the rule says ---------------------------------------

HOSTS = ("host-a", "host-b", "host-c")
DIGESTS = (A, B, C)
FILES = st.dictionaries(
    st.sampled_from(HOSTS),
    st.dictionaries(st.sampled_from(("t1", "t2", "t3", "t4")), st.sampled_from(DIGESTS)),
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_divergent_rows_are_those_of_tasks_whose_digests_differ_or_that_a_host_lacks(
    histories, backend
):
    @settings(max_examples=25, deadline=None)
    @given(FILES, st.lists(st.sampled_from(HOSTS), min_size=1, unique=True))
    def check(files, asked):
        with histories.fresh(backend) as store:
            for host, digests in files.items():
                as_host(store, host).record_definitions(digests, now=T0)
            expected = []
            tasks = {task for host in asked for task in files.get(host, {})}
            for task in sorted(tasks):
                found = {host: files[host][task] for host in asked if task in files.get(host, {})}
                if len(found) < len(asked) or len({d.digest for d in found.values()}) > 1:
                    expected += [(task, host, found[host].digest) for host in sorted(found)]
            rows = store.task_definitions(asked, divergent=True)
            assert [(d.task, d.host, d.digest) for d in rows] == expected
            every = store.task_definitions(asked)
            assert {(d.host, d.task): dict(d.keys) for d in every} == {
                (host, task): dict(found.keys)
                for host in asked
                for task, found in files.get(host, {}).items()
            }

    check()
