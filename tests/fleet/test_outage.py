"""The database stopped for 10 s under three serves (issue 17, items 4 and 6;
docs/reliability.md "The database unreachable"): nothing runs that could not be claimed, no
slot runs twice, the slots of the outage go through each task's catch_up policy once the
database is back (`skip`: recorded `missed`, `once`: the newest runs, `all`: each runs), a job
running when the database went away has its end recorded when it returns, nobody is declared
dead for an outage that cut everyone off, and each serve says it once.

A PostgreSQL server of the test's own (tests/pgserver.py), stopped (fast shutdown: the serves'
connections are cut) and started again on the same port; three real serve processes
(tests/fleet/harness.py), lease 3 s.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.harness import Fleet, fleet
from tests.pgserver import PostgresServer, started_server
from tests.serve.test_serve_process import notify_socket  # noqa: F401 (a fixture)
from tests.support import wait_for

pytest.importorskip("psycopg")

LEASE = 3.0
HOSTS = ("host-a", "host-b", "host-c")
OUTAGE = 10.0
# Generous for a loaded machine: a serve is back within RECONNECT_BACKOFF's 5 s step of the
# server's return; the figure measured is printed.
BACK_LIMIT = 30.0
LOST = "the history database is out of reach from host"  # serve's one line when it starts
BACK = "the history database is back after"  # and when it ends


@pytest.fixture
def own_server(pg_server: PostgresServer) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own: the test stops it (never the session's)."""
    with started_server("cronctl-pg-outage-") as server:
        yield server


def _task(name: str, command: str, **keys: str) -> str:
    extra = "".join(f'{key} = "{value}"\n' for key, value in keys.items())
    return f'[tasks.{name}]\nschedule = "@every 1s"\ncommand = "{command}"\n{extra}'


def _tasks(marks: Path) -> str:
    # Each run appends a line to the file of its slot: a slot run twice has two lines.
    mark = f"echo $CRONCTL_HOST >> {marks}/$CRONCTL_TASK.$CRONCTL_SCHEDULED_AT"
    return (
        _task("skipper", mark, catch_up="skip")
        + _task("oncer", mark, catch_up="once", overlap="allow")
        + _task("aller", mark, catch_up="all", overlap="allow")
        + _task("sleeper", f"sleep 3; {mark}", overlap="skip")
    )


def _runs(hosts: Fleet) -> list[tuple[str, int, str, str, str, str | None]]:
    return hosts.rows(  # type: ignore[return-value]
        "SELECT task, scheduled_at, status, trigger, host, reason FROM runs"
        " WHERE scheduled_at IS NOT NULL ORDER BY task, scheduled_at"
    )


def _no_gaps(slots: list[int]) -> list[int]:
    return sorted({later - earlier for earlier, later in zip(slots, slots[1:], strict=False)})


def test_the_database_stopped_for_ten_seconds_under_three_serves(own_server, tmp_path, cronctl_exe):
    url = own_server.create_database()
    marks = tmp_path / "marks"
    marks.mkdir()
    with fleet(tmp_path / "hosts", cronctl_exe, url) as hosts:
        for name in HOSTS:
            # --grace 1: a sleeper going at the end is stopped (its mark unwritten, its row
            # `interrupted`), not waited for.
            hosts.start(name, _tasks(marks), "--lease", str(LEASE), "--grace", "1")
        for host in hosts.hosts.values():
            host.wait_started()

        def sleeper_running() -> list[tuple[int]]:
            return hosts.rows(
                "SELECT id FROM runs WHERE task = 'sleeper' AND status = 'running'"
                " AND started_at < (extract(epoch FROM now()) * 1000 - 500)::bigint"
            )

        # A sleeper half a second into its 3 s: it ends while the database is down.
        running = [row[0] for row in wait_for(sleeper_running, timeout=30, what="a sleeper")]
        own_server.stop()
        stopped_at = time.time()
        time.sleep(OUTAGE)
        own_server.resume()
        resumed = time.monotonic()
        wait_for(
            lambda: all(
                "the history database is back after" in host.log for host in hosts.hosts.values()
            ),
            timeout=BACK_LIMIT,
            what="every serve back",
        )
        back_after = time.monotonic() - resumed

        def ends_recorded() -> list[tuple[str]] | None:
            rows = hosts.rows("SELECT status FROM runs WHERE id = ANY(%s)", (running,))
            return rows if all(status != "running" for (status,) in rows) else None

        ended = wait_for(ends_recorded, timeout=BACK_LIMIT, what="the sleepers' ends recorded")
        time.sleep(2.0)  # the catch-up runs end
        logs = hosts.stop_all()
        serves = hosts.rows("SELECT host, declared_dead_at FROM serves ORDER BY host")

    for name, log in logs.items():
        assert "Traceback" not in log, (name, log)
        assert log.count(LOST) == 1, (name, log)
        assert log.count(BACK) == 1, (name, log)
        assert "declared dead" not in log, (name, log)
    assert serves == [(name, None) for name in HOSTS]  # nobody declared dead
    assert {status for (status,) in ended} == {"succeeded"}, ended  # ended during the outage

    rows = _runs(hosts)
    slots: dict[str, list[int]] = defaultdict(list)
    for task, slot, _status, _trigger, _host, _reason in rows:
        slots[task].append(slot)
    for task, taken in slots.items():
        assert len(taken) == len(set(taken)), task  # once per slot (the unique index too)
    # The job-written marks: one line per run, so no slot ran twice, on any host; and every
    # run that succeeded wrote its mark.
    lines = {path.name: path.read_text().split() for path in marks.iterdir()}
    assert all(len(hosts_of) == 1 for hosts_of in lines.values()), lines
    succeeded = Counter(task for task, _s, status, *_ in rows if status == "succeeded")
    marked = Counter(name.split(".", 1)[0] for name in lines)
    assert marked == succeeded, (marked, succeeded)

    outage_ms = (int(stopped_at * 1000), int((stopped_at + OUTAGE) * 1000))
    in_outage = [row for row in rows if outage_ms[0] + 1000 <= row[1] <= outage_ms[1] - 1000]
    by_task: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
    for task, _slot, status, trigger, _host, reason in in_outage:
        by_task[task].append((status, trigger, reason))
    # skip: every slot of the outage recorded `missed`, saying why; no slot left out
    assert _no_gaps(slots["skipper"]) == [1000], slots["skipper"]
    assert len(by_task["skipper"]) >= OUTAGE - 3, by_task["skipper"]
    for status, trigger, reason in by_task["skipper"]:
        assert (status, trigger) == ("missed", "catch-up"), by_task["skipper"]
        assert reason is not None and "history database was unreachable from host" in reason
    # all: every slot of the outage ran, after it
    assert _no_gaps(slots["aller"]) == [1000], slots["aller"]
    assert len(by_task["aller"]) >= OUTAGE - 3, by_task["aller"]
    assert {(s, t) for s, t, _ in by_task["aller"]} == {("succeeded", "catch-up")}
    # once: the newest slot the outage left unclaimed ran (the newest each host had lost, so
    # one or two), the older ones were left without a row
    caught = [
        (slot, status)
        for task, slot, status, trigger, _host, _reason in rows
        if task == "oncer" and trigger == "catch-up"
    ]
    assert 1 <= len(caught) <= 2 and {s for _, s in caught} == {"succeeded"}, caught
    assert all(slot >= outage_ms[0] for slot, _ in caught), caught
    assert len(by_task["oncer"]) <= 2, by_task["oncer"]
    print(f"\nthe serves back {back_after:.1f} s after the server (outage {OUTAGE:g} s)")


def test_serve_started_while_its_database_is_down_waits_for_it(
    own_server,
    tmp_path,
    cronctl_exe,
    notify_socket,  # noqa: F811
    monkeypatch,
):
    """docs/reliability.md "The database unreachable": serve waits in the process (retrying
    with back-off, said once, STATUS= and EXTEND_TIMEOUT_USEC to systemd), says READY=1 once
    it can fire; stopped meanwhile, it exits 0."""
    path, messages = notify_socket
    url = own_server.create_database()
    own_server.stop()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    with fleet(tmp_path / "hosts", cronctl_exe, url) as hosts:
        waiting = "serve waits for it, retrying with back-off"
        quitter = hosts.start("host-b", _task("skipper", "true"))
        wait_for(lambda: waiting in quitter.log, timeout=30, what="host-b waiting")
        quitter.proc.terminate()
        assert quitter.proc.wait(timeout=30) == 0, quitter.log
        assert "stopped before its history database could be reached" in quitter.log

        host = hosts.start("host-a", _task("skipper", "true"))
        wait_for(lambda: waiting in host.log, timeout=30, what="host-a waiting")
        time.sleep(3)  # a few attempts, said once
        assert host.proc.poll() is None, host.log
        assert host.log.count("cannot reach the history database") == 1, host.log
        said = messages()
        assert not [m for m in said if "READY=1" in m], said
        told = [m for m in said if m.startswith("STATUS=waiting for the history database")]
        assert told and all("\nEXTEND_TIMEOUT_USEC=" in m for m in told), said
        own_server.resume()
        host.wait_started()
        assert "is reachable: starting (waited " in host.log, host.log
        wait_for(lambda: hosts.rows("SELECT 1 FROM runs"), timeout=30, what="a run")
        assert any("READY=1" in m for m in messages())
        logs = hosts.stop_all()
    assert "Traceback" not in logs["host-a"] + logs["host-b"]
