"""The runs a survivor records `abandoned` for a dead host are told to its run listeners
(README.md#notifications, docs/reliability.md "Several serves, one history"): only the serve
that declared the host dead tells them, so each is notified once across the fleet; the
notification names the run's host (the dead one) and the host that told it.

Real serve processes (tests/fleet/harness.py), the session's real PostgreSQL server, a real
webhook receiver on 127.0.0.1 (tests/notify/servers.py)."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.fleet.harness import fleet
from tests.notify.servers import http_server
from tests.support import wait_for

pytest.importorskip("psycopg")

LEASE = 3.0


def test_a_dead_hosts_abandoned_run_is_notified_once_by_the_survivor_naming_both(
    tmp_path, cronctl_exe, pg_url
):
    with http_server() as receiver, fleet(tmp_path, cronctl_exe, pg_url) as hosts:
        tasks = (
            '[tasks.sleeper]\nschedule = "@every 1s"\ncommand = "sleep 30"\noverlap = "skip"\n'
            f'[tasks.sleeper.notify]\non = ["failure"]\nwebhook = "{receiver.url}/hook"\n'
        )
        for name in ("host-a", "host-b"):
            hosts.start(name, tasks, "--lease", str(LEASE), "--grace", "1")
        for host in hosts.hosts.values():
            host.wait_started()
        found = wait_for(
            lambda: hosts.rows("SELECT host, id FROM runs WHERE status = 'running'"),
            timeout=30,
            what="a sleeper running",
        )
        victim, run_id = found[0]
        survivor = "host-b" if victim == "host-a" else "host-a"
        hosts.hosts[victim].kill(signal.SIGKILL)
        hosts.hosts[victim].proc.wait(timeout=10)
        requests = receiver.wait_for(1, timeout=LEASE + 20)
        time.sleep(1.5)  # a second notification of it, from anywhere, would arrive by now
        hosts.stop_all()
    bodies = [json.loads(request.body) for request in receiver.requests]
    told = [body for body in bodies if body["id"] == run_id]
    assert requests and len(told) == 1, bodies  # once across the fleet
    [body] = told
    assert body["status"] == "abandoned" and body["event"] == "failure", body
    assert body["host"] == victim and body["hostname"] == victim, body  # the run's own host
    assert body["reported_by"] == survivor, body  # and who declared it dead
    assert f"declared dead by {survivor}" in body["reason"], body
