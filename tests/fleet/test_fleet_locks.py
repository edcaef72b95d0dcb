"""Shared locks across hosts on one PostgreSQL history (README.md#shared-locks, docs/reliability.md
"Several serves, one history"): tasks that name one lock never run at the same time, whichever
hosts run them, serve or `cronctl run-now`; a run refused for a lock held on another host
names that host.

Real serve processes (tests/fleet/harness.py), real `cronctl run-now` through the CLI, on the
session's real PostgreSQL server."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from tests.fleet.harness import fleet
from tests.support import wait_for

pytest.importorskip("psycopg")

HELD_BY = re.compile(r"lock 'db' is held by host (host-[ab]) \(serve, pid \d+\)")


@pytest.fixture
def hosts(tmp_path, cronctl_exe, pg_url):
    with fleet(tmp_path, cronctl_exe, pg_url) as started:
        yield started


def _task(name: str, command: str) -> str:
    return f'[tasks.{name}]\nschedule = "@every 1s"\ncommand = "{command}"\nlock = "db"\n'


def test_two_tasks_sharing_a_lock_on_two_hosts_never_overlap(hosts):
    """host-a runs `dump`, host-b `load` (each only in its own task file), both every second
    for 3 s: without the lock across hosts they would run side by side all along. Every
    other second both find the lock free and race for it (a `queue` task, which waits for the
    lock, would take it first every time: both are `skip` here, so each gets turns)."""
    # Runs of 3 s: longer than the 2 s a run waits for a lock held on another host (the host
    # losing a slot's claim holds it a moment), so some are refused for it.
    # --grace 1: at the end, the runs still going are stopped, not waited for.
    hosts.start("host-a", _task("dump", "sleep 3"), "--grace", "1").wait_started()
    hosts.start("host-b", _task("load", "sleep 3"), "--grace", "1").wait_started()

    def both_ran() -> bool:
        rows = hosts.rows("SELECT task FROM runs WHERE status = 'succeeded'")
        return {task for (task,) in rows} == {"dump", "load"} and len(rows) >= 4

    wait_for(both_ran, timeout=60, what="runs of both tasks")
    logs = hosts.stop_all()
    for name, log in logs.items():
        assert "Traceback" not in log, (name, log)
    rows = hosts.rows(
        "SELECT started_at, finished_at, task, host, status, reason FROM runs ORDER BY started_at"
    )
    ran = [row for row in rows if row[4] not in ("skipped", "missed")]
    assert {row[2] for row in ran} == {"dump", "load"}, rows  # both got their turns
    for earlier, later in zip(ran, ran[1:], strict=False):
        assert later[0] >= earlier[1], "\n".join(map(str, rows))  # never two at once
    skipped = [row for row in rows if row[4] == "skipped" and row[5].startswith("lock ")]
    assert skipped, rows  # a run found the lock held on the other host
    for _start, _end, task, host, _status, reason in skipped:
        found = HELD_BY.fullmatch(reason)
        assert found and (task, host) in (("dump", "host-a"), ("load", "host-b")), rows
        assert found.group(1) != host, rows  # the holder named: the other host


def test_run_now_takes_the_lock_across_hosts_too(hosts, cronctl_exe, pg_url):
    """`cronctl run-now` of a task with a lock, on another host than the serve holding it:
    refused with exit 75 naming the serve's host; and while a run-now holds it, the serve's
    run is skipped naming the run-now."""
    serve_task = _task("dump", "sleep 3")
    hosts.start("host-a", serve_task, "--grace", "1").wait_started()  # a run at the end: stopped
    wait_for(
        lambda: hosts.rows("SELECT 1 FROM runs WHERE task = 'dump' AND status = 'running'"),
        timeout=30,
        what="dump running on host-a",
    )
    home = hosts.root / "host-b"
    home.mkdir()
    (home / "tasks.toml").write_text(_task("load", "sleep 4"))
    env = {**os.environ, "CRONCTL_HOME": str(home), "CRONCTL_DB": pg_url, "CRONCTL_HOST": "host-b"}
    refused = subprocess.run(
        [*cronctl_exe, "run-now", "load"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 75, refused
    assert re.fullmatch(
        r"error: task 'load' not run: lock 'db' is held by host host-a \(serve, pid \d+\)\n"
        r"hint: --wait waits until it is free\n",
        refused.stderr,
    ), refused.stderr
    waited = subprocess.Popen(
        [*cronctl_exe, "run-now", "--wait", "load"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: hosts.rows("SELECT 1 FROM runs WHERE task = 'load' AND status = 'running'"),
        timeout=30,
        what="load running on host-b",
    )
    since = int(time.time() * 1000)
    time.sleep(2.5)  # host-a's slots meanwhile find the lock held by the run-now
    _out, err = waited.communicate(timeout=60)
    assert waited.returncode == 0, err
    hosts.stop_all()
    rows = hosts.rows(
        "SELECT started_at, finished_at, task, status, reason FROM runs ORDER BY started_at"
    )
    ran = [row for row in rows if row[3] not in ("skipped", "missed")]
    for earlier, later in zip(ran, ran[1:], strict=False):
        assert later[0] >= earlier[1], "\n".join(map(str, rows))  # never two at once
    reasons = {
        row[4] for row in rows if row[2] == "dump" and row[3] == "skipped" and row[0] > since
    }
    assert any(
        re.fullmatch(r"lock 'db' is held by task 'load' on host host-b \(run-now, pid \d+\)", r)
        for r in reasons
    ), rows


def test_the_same_task_with_a_lock_on_two_hosts_is_never_skipped_for_its_own_slot(hosts):
    """Both hosts run the same `skip` task with a lock, every second. Each serve takes a run's
    locks before its claim, so the host that loses a slot's claim held the lock for a moment:
    the winner must not take that for a conflict (before: a third of the slots were recorded
    `skipped`, "lock 'db' is held by host ...", and ran nowhere)."""
    tasks = _task("report", "true")
    for name in ("host-a", "host-b"):
        hosts.start(name, tasks)
    for host in hosts.hosts.values():
        host.wait_started()
    time.sleep(8)
    hosts.stop_all()
    rows = hosts.rows("SELECT scheduled_at, status, host, reason FROM runs ORDER BY scheduled_at")
    assert len(rows) >= 6, rows
    assert [row for row in rows if row[1] != "succeeded"] == [], "\n".join(map(str, rows))
