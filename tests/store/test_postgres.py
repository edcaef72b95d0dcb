"""The PostgreSQL store's own behaviour (cronctl/store/postgres/), on the session's real server
(tests/pgserver.py): the schema created once by openers racing on an empty database, a newer
schema refused, a server that is down or refuses us, claims racing from two connections, whole
batches, the read-only store of `top`, and what is never shown (a password).

The answers it shares with the SQLite store are tested by every other module of tests/store,
which runs on both (conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from cronctl.errors import (
    DatabaseAccessAtStartError,
    DatabaseAccessError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    ExitCode,
    ReadOnlyDatabaseError,
    StoreError,
    UnknownRunError,
)
from cronctl.records import Output, Status, Trigger
from cronctl.store.schema import SCHEMA_VERSION

from .support import T0, add_run

psycopg = pytest.importorskip("psycopg")

from cronctl.store.postgres import (  # noqa: E402 (after the skip: it imports psycopg)
    PostgresStore,
    open_postgres_for_serve,
    open_postgres_read_only,
)
from cronctl.store.postgres.connection import RECONNECT_BACKOFF, display_url  # noqa: E402

T1 = T0 + timedelta(minutes=1)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns


# ------------------------------------------------------------------------- the schema


def test_three_openers_at_once_create_the_schema_once(pg_server, pg_url):
    """Three serves starting together on an empty database: one creates the schema under the
    advisory lock, the others wait and find it made (no duplicate-table error, one version
    row)."""
    barrier = threading.Barrier(3)

    def open_one(_: int) -> int:
        barrier.wait()
        with PostgresStore(pg_url) as store:
            return store.start_run("a", Trigger.MANUAL, started_at=T0)

    with ThreadPoolExecutor(3) as pool:
        ids = list(pool.map(open_one, range(3)))
    assert len(set(ids)) == 3
    database = pg_url.rsplit("/", 1)[1]
    assert pg_server.psql("SELECT version FROM cronctl_schema", database).split() == [
        str(SCHEMA_VERSION)
    ]


def test_a_schema_from_a_newer_cronctl_is_refused_and_left_alone(pg_server, pg_url):
    PostgresStore(pg_url).close()
    database = pg_url.rsplit("/", 1)[1]
    pg_server.psql(f"UPDATE cronctl_schema SET version = {SCHEMA_VERSION + 1}", database)
    with pytest.raises(StoreError, match=r"newer cronctl \(schema 10; this cronctl knows 9\)"):
        PostgresStore(pg_url)
    with pytest.raises(StoreError, match="newer cronctl"):
        open_postgres_read_only(pg_url)
    assert pg_server.psql("SELECT count(*) FROM runs", database).strip() == "0"


def test_a_runs_table_of_another_program_is_never_written_into(pg_server, pg_url):
    database = pg_url.rsplit("/", 1)[1]
    pg_server.psql("CREATE TABLE runs (x integer)", database)
    with pytest.raises(StoreError, match="not cronctl's"):
        PostgresStore(pg_url)
    assert pg_server.psql("SELECT to_regclass('cronctl_schema')", database).strip() == ""


# --------------------------------------------------------------------- the server away


def test_a_server_that_is_not_there_is_a_temporary_failure_without_the_password():
    url = f"postgresql://someone:sekrit-pw@127.0.0.1:{_closed_port()}/history"
    with pytest.raises(DatabaseUnavailableError) as caught:
        PostgresStore(url, timeout=2)
    error = caught.value
    assert error.exit_code == ExitCode.TEMPFAIL == 75
    assert "127.0.0.1:" in error.message and "sekrit" not in f"{error.message} {error.hint}"
    assert "\n" not in error.message
    with pytest.raises(DatabaseUnavailableError):
        open_postgres_for_serve(url, now=T0)


def test_a_database_or_user_that_does_not_exist_is_a_setting_to_fix(pg_server):
    for url in (pg_server.url("no_such_database"), pg_server.url().replace("@", "x@", 1)):
        with pytest.raises(DatabaseAccessError) as caught:
            PostgresStore(url)
        assert caught.value.exit_code == ExitCode.USAGE
        assert "does not exist" in caught.value.message
        with pytest.raises(DatabaseAccessAtStartError) as at_start:
            open_postgres_for_serve(url, now=T0)
        assert at_start.value.exit_code == ExitCode.CONFIG


def test_the_url_is_shown_without_its_password():
    shown = display_url("postgresql://ops:sekrit@db.example:6543/cron?sslmode=require")
    assert shown == "postgresql://ops@db.example:6543/cron"
    assert display_url("host=db user=ops password=sekrit dbname=cron") == (
        "postgresql://ops@db/cron"
    )


def test_a_server_stopped_and_started_again():
    """A server of the test's own: stopped under an open store, every call raises
    DatabaseUnavailableError (exit 75), and once it is back the same store goes on (the
    connection is opened again)."""
    from tests.pgserver import find_bindir, started_server

    if find_bindir() is None:
        pytest.skip("needs a PostgreSQL server")
    with started_server("cronctl-pg-own-") as server:
        url = server.create_database()
        with PostgresStore(url) as store:
            first = add_run(store)
            server.stop()
            for _ in range(2):
                with pytest.raises(DatabaseUnavailableError) as caught:
                    store.get_run(first)
                assert caught.value.exit_code == 75
            server.resume()
            # The next connect waits out the back-off's first step after a failed one
            # (connection.py RECONNECT_BACKOFF): calls in between fail at once.
            time.sleep(RECONNECT_BACKOFF[0])
            assert store.get_run(first).status == Status.SUCCEEDED
            assert add_run(store, task="b") > first


# --------------------------------------------------------------------- claims racing


def test_claims_racing_from_two_connections_win_each_slot_once(pg_url):
    """Two serves (two connections) claim the same 40 slots at once, one by one and in
    batches: each slot has exactly one winner, and the winners' ids are the rows."""
    slots = [T0 + timedelta(seconds=s) for s in range(40)]
    PostgresStore(pg_url).close()
    barrier = threading.Barrier(2)

    def claim(batched: bool) -> list[int | None]:
        with PostgresStore(pg_url) as store:
            barrier.wait()
            if batched:
                return store.start_runs(
                    [("a", Trigger.SCHEDULE, 1, slot) for slot in slots], started_at=T0
                )
            won: list[int | None] = []
            for slot in slots:
                try:
                    won.append(
                        store.start_run("a", Trigger.SCHEDULE, started_at=T0, scheduled_at=slot)
                    )
                except StoreError:
                    won.append(None)
            return won

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(claim, (True, False))
    assert all((a is None) != (b is None) for a, b in zip(first, second, strict=True))
    with PostgresStore(pg_url) as store:
        runs = store.runs("a", limit=None)
    assert sorted(run.scheduled_at for run in runs) == slots
    assert {run.id for run in runs} == {i for i in first + second if i is not None}


def test_start_runs_writes_all_or_none_when_a_slot_is_held(pg_url):
    """Another connection holds one of the slots in an open transaction: the batch waits up
    to the timeout, then raises DatabaseLockedError and writes none of its claims."""
    with PostgresStore(pg_url, timeout=0.2) as store, psycopg.connect(pg_url) as other:
        other.execute(
            "INSERT INTO runs (task, trigger, scheduled_at, started_at, status)"
            " VALUES ('a', 'schedule', %s, 0, 'running')",
            (int(T0.timestamp() * 1000),),
        )
        claims = [("b", Trigger.SCHEDULE, 1, T0), ("a", Trigger.SCHEDULE, 1, T0)]
        with pytest.raises(DatabaseLockedError):
            store.start_runs(claims, started_at=T0)
        other.rollback()
        assert store.runs(limit=None) == []
        assert None not in store.start_runs(claims, started_at=T0)


# --------------------------------------------------------------------------- batches


def test_a_batch_is_one_transaction_seen_whole_or_not_at_all(pg_url):
    with PostgresStore(pg_url) as store, PostgresStore(pg_url) as reader:
        first = store.start_run("a", Trigger.MANUAL, started_at=T0)
        second = store.start_run("b", Trigger.MANUAL, started_at=T0)
        with store.batch():
            store.set_pid(first, 11)
            store.finish_run(second, status=Status.SUCCEEDED, finished_at=T1, exit_code=0)
            assert reader.get_run(first).pid is None
            assert reader.get_run(second).status == Status.RUNNING
        assert reader.get_run(first).pid == 11
        assert reader.get_run(second).status == Status.SUCCEEDED
        with pytest.raises(UnknownRunError), store.batch():
            store.set_pid(first, 12)
            store.finish_run(second, status=Status.FAILED, finished_at=T1, exit_code=1)
            store.finish_run(second + 99, status=Status.FAILED, finished_at=T1)
        assert reader.get_run(first).pid == 11
        assert reader.get_run(second).status == Status.SUCCEEDED


# ------------------------------------------------------------------- permissions, top


def test_a_user_that_may_only_read_gets_a_read_only_error(pg_server, pg_url):
    PostgresStore(pg_url).close()
    database = pg_url.rsplit("/", 1)[1]
    role = f"reader_{database}"
    pg_server.psql(
        f"CREATE ROLE {role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        database,
    )
    url = pg_url.replace(f"{pg_server.user}@", f"{role}@", 1)
    with pytest.raises(ReadOnlyDatabaseError, match="permission denied"):
        open_postgres_for_serve(url, now=T0)
    with PostgresStore(url) as store:
        assert store.runs() == []
        with pytest.raises(ReadOnlyDatabaseError):
            store.start_run("a", Trigger.MANUAL, started_at=T0)


def test_top_reads_an_empty_history_until_one_appears(pg_url):
    with open_postgres_read_only(pg_url) as viewer:
        assert viewer.runs() == [] and viewer.running_runs() == []
        assert viewer.serve_state() is None and not viewer.appeared()
        with PostgresStore(pg_url) as store:
            add_run(store)
        assert viewer.appeared()
    with open_postgres_read_only(pg_url) as viewer, PostgresStore(pg_url) as store:
        assert not viewer.appeared() and len(viewer.runs()) == 1
        with pytest.raises(ReadOnlyDatabaseError, match="only read"):
            viewer.start_run("a", Trigger.MANUAL, started_at=T0)
        version = viewer.data_version()
        assert viewer.data_version() == version  # nothing written: the same number
        writes = [
            lambda: store.start_run("b", Trigger.MANUAL, started_at=T1),
            lambda: store.finish_run(
                viewer.running_runs()[0].id, status=Status.FAILED, finished_at=T1
            ),
            lambda: store.acknowledge("b", at=T1),
            lambda: store.serve_started(pid=1, hostname="h", version="v", now=T1),
            lambda: store.heartbeat(T1 + timedelta(seconds=5)),
            lambda: store.record_notify_error(1, "smtp down"),
        ]
        for write in writes:
            write()
            assert viewer.data_version() != version
            version = viewer.data_version()
        assert viewer.recent_outcomes(["a", "b", "zz"], 5) == {
            "a": [(Status.SUCCEEDED, 100)],
            "b": [(Status.FAILED, None)],
            "zz": [],
        }


# -------------------------------------------------------------------------- start-up


def test_the_sqlite_store_does_not_import_psycopg():
    """Commands that use SQLite must not pay for the driver (start-up: docs/architecture.md)."""
    code = (
        "import sys, cronctl.store, cronctl.store.recent, cronctl.history;"
        " print('psycopg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------- beyond the protocols


@pytest.mark.parametrize(
    "name",
    [
        "start_runs",
        "batch",
        "finish_condition_skip",
        "quick_check",
        "check_writable",
        "latest_slots",
        "__enter__",
        "__exit__",
    ],
)
def test_what_serve_uses_beyond_the_protocols_has_the_sqlite_stores_shape(name):
    from cronctl.store import HistoryStore

    from .test_history_store import shape

    assert shape(getattr(PostgresStore, name)) == shape(getattr(HistoryStore, name))


@pytest.mark.parametrize("name", ["data_version", "running_runs", "recent_outcomes", "appeared"])
def test_tops_reader_has_the_sqlite_readers_shape(name):
    from cronctl.store.postgres.recent import ReadOnlyPostgres
    from cronctl.store.recent import ReadOnlyHistory

    from .test_history_store import shape

    assert shape(getattr(ReadOnlyPostgres, name)) == shape(getattr(ReadOnlyHistory, name))


def test_only_the_postgres_package_imports_psycopg():
    """The layering rule of docs/architecture.md (only the store speaks SQL), for the driver."""
    from tests.test_layering import PACKAGE, imports_of, module_files

    importers = {
        str(path.relative_to(PACKAGE)) for path in module_files() if "psycopg" in imports_of(path)
    }
    assert importers and all(name.startswith("store/postgres/") for name in importers), importers


def test_finish_run_on_a_full_disk_returns_what_was_recorded(pg_server, pg_url):
    """As the SQLite store: without room for the output, the end is recorded without it. The
    server raises its real disk_full error (SQLSTATE 53100) from a trigger that stands for the
    full disk, for output bigger than 1,000 bytes."""
    PostgresStore(pg_url).close()
    pg_server.psql(
        "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF length(NEW.stdout) > 1000 THEN RAISE EXCEPTION 'could not extend file'"
        " USING ERRCODE = 'disk_full'; END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER full_disk BEFORE INSERT OR UPDATE ON run_output"
        " FOR EACH ROW EXECUTE FUNCTION disk_full()",
        pg_url.rsplit("/", 1)[1],
    )
    with PostgresStore(pg_url) as store:
        run_id = store.start_run("a", Trigger.MANUAL, started_at=T0)
        finished = store.finish_run(
            run_id,
            status=Status.SUCCEEDED,
            finished_at=T1,
            duration_ms=60_000,
            exit_code=0,
            reason="exit status 0",
            stdout=Output(b"x" * 4096, 300_000, 300_000 - 4096),
        )
        assert finished == store.get_run(run_id)
        assert finished.reason.startswith("exit status 0; output not kept: ")
        assert finished.stdout == Output(b"", 0) and finished.status is Status.SUCCEEDED
        with pytest.raises(DatabaseFullError), store.batch():
            store.finish_run(run_id, status=Status.FAILED, finished_at=T1, stdout=finished.stdout)
            store.finish_run(
                run_id, status=Status.FAILED, finished_at=T1, stdout=Output(b"y" * 2000, 2000)
            )
        assert store.get_run(run_id) == finished  # the batch rolled back whole
