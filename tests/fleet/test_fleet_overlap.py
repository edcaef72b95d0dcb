"""`overlap = "queue"` and `"replace"` across three serves on one PostgreSQL history
(README.md#several-serves-one-history, docs/reliability.md "Several serves, one history"):
the host whose run of the task goes on sees the next slot too and queues or replaces it there;
the other hosts leave the claim to it (no row) and try again until no run of the task goes on
anywhere. Never two runs of the task at once, whichever hosts claim.

Real serve processes (tests/fleet/harness.py) on the session's real PostgreSQL server.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.fleet.harness import Fleet, fleet
from tests.support import wait_for

pytest.importorskip("psycopg")

HOSTS = ("host-a", "host-b", "host-c")


@pytest.fixture
def hosts(tmp_path, cronctl_exe, pg_url):
    with fleet(tmp_path, cronctl_exe, pg_url) as started:
        yield started


def _start_all(hosts: Fleet, tasks: str) -> None:
    for name in HOSTS:
        # The default lease: a serve stopping slowly stays alive. --grace 1: at the end, a run
        # still going is stopped (recorded `interrupted`), not waited for.
        hosts.start(name, tasks, "--grace", "1")
    for host in hosts.hosts.values():
        host.wait_started()


def _never_two_at_once(rows: list[tuple[int, int | None, str, str]]) -> None:
    ran = sorted(
        (start, end)
        for start, end, status, _host in rows
        if end is not None and status not in ("skipped", "missed")
    )
    for (_start, end), (later, _end) in zip(ran, ran[1:], strict=False):
        assert later >= end, "\n".join(map(str, rows))


def test_queue_across_three_hosts_runs_every_slot_in_order_never_two_at_once(hosts):
    """A task slower than its period (2.4 s every 2 s): each slot waits for the run before
    it, on whichever host that run goes, then runs; never beside it."""
    tasks = '[tasks.slow]\nschedule = "@every 2s"\ncommand = "sleep 2.4"\noverlap = "queue"\n'
    _start_all(hosts, tasks)
    wait_for(
        lambda: (
            len(hosts.rows("SELECT 1 FROM runs WHERE task = 'slow' AND status = 'succeeded'")) >= 3
        ),
        timeout=40,
        what="three runs of slow",
    )
    logs = hosts.stop_all()
    for name, log in logs.items():
        assert "Traceback" not in log, (name, log)
    rows = hosts.rows(
        "SELECT started_at, finished_at, status, host, scheduled_at, reason FROM runs"
        " WHERE task = 'slow' ORDER BY started_at"
    )
    _never_two_at_once([row[:4] for row in rows])
    succeeded = [row for row in rows if row[2] == "succeeded"]
    slots = [row[4] for row in succeeded]
    assert slots == sorted(slots), rows  # in slot order
    gaps = {later - earlier for earlier, later in zip(slots, slots[1:], strict=False)}
    assert gaps == {2000}, rows  # every slot ran, none skipped
    late = [row[0] - row[4] for row in succeeded]
    assert late[-1] > 0, rows  # the later slots waited for the runs before them
    assert any(
        f"waits: a run of it goes on host {other}" in log
        for log in logs.values()
        for other in HOSTS
    ), logs


def test_replace_across_three_hosts_stops_the_running_one_on_its_host(hosts):
    """A task that never ends in its period: each new slot stops the running run on the
    host that runs it (recorded `interrupted`, replaced), then runs, on some host."""
    tasks = '[tasks.long]\nschedule = "@every 2s"\ncommand = "sleep 4"\noverlap = "replace"\n'
    _start_all(hosts, tasks)
    wait_for(
        lambda: (
            len(
                hosts.rows(
                    "SELECT 1 FROM runs WHERE task = 'long' AND status = 'interrupted'"
                    " AND reason LIKE 'replaced by a newer run%%'"
                )
            )
            >= 2
        ),
        timeout=40,
        what="two runs of long replaced",
    )
    time.sleep(0.5)
    logs = hosts.stop_all()
    for name, log in logs.items():
        assert "Traceback" not in log, (name, log)
    rows = hosts.rows(
        "SELECT started_at, finished_at, status, host, scheduled_at, reason, id FROM runs"
        " WHERE task = 'long' ORDER BY started_at"
    )
    _never_two_at_once([row[:4] for row in rows])
    replaced = [row for row in rows if (row[5] or "").startswith("replaced by a newer run")]
    assert len(replaced) >= 2, rows
    for _start, _end, status, host, _slot, _reason, run_id in replaced:
        assert status == "interrupted", rows
        # Stopped by the serve of its own host, the only one that can.
        assert f"task long: stopping run {run_id}, replaced" in logs[host], (host, logs)
    # The slot that replaced it ran (its row follows, on some host).
    slots = [row[4] for row in rows if row[4] is not None and row[2] != "skipped"]
    assert slots == sorted(slots), rows


def test_queue_when_the_running_host_dies_a_survivor_runs_the_waiting_slot_after_the_lease(
    hosts,
):
    """The host running a `queue` task is killed: the other hosts' claims wait until a
    survivor declares it dead (its run recorded `abandoned`), then one of them runs the task;
    never while the dead host's run was still `running`."""
    tasks = '[tasks.slow]\nschedule = "@every 1s"\ncommand = "sleep 20"\noverlap = "queue"\n'
    for name in HOSTS:
        hosts.start(name, tasks, "--lease", "3", "--grace", "1")
    for host in hosts.hosts.values():
        host.wait_started()
    [(victim, run_id)] = wait_for(
        lambda: hosts.rows("SELECT host, id FROM runs WHERE task = 'slow'"),
        timeout=30,
        what="slow running",
    )
    hosts.hosts[victim].kill(signal.SIGKILL)
    hosts.hosts[victim].proc.wait(timeout=10)
    wait_for(
        lambda: hosts.rows(
            "SELECT 1 FROM runs WHERE task = 'slow' AND id <> %s AND status = 'running'",
            (run_id,),
        ),
        timeout=30,
        what="slow running on a survivor",
    )
    logs = hosts.stop_all()
    rows = hosts.rows(
        "SELECT id, host, status, started_at, finished_at, reason, scheduled_at FROM runs"
        " WHERE task = 'slow' ORDER BY id"
    )
    [dead] = [row for row in rows if row[0] == run_id]
    assert dead[2] == "abandoned" and f"host {victim} stopped heartbeating" in dead[5], rows
    later = [row for row in rows if row[0] != run_id and row[2] not in ("skipped", "missed")]
    assert later and all(row[1] != victim for row in later), rows
    assert min(row[3] for row in later) >= dead[4], rows  # only once it was abandoned
    # The slot that came while the dead host's run went on waited, and ran: not lost.
    assert min(row[6] for row in later) < dead[4], rows
    took = (min(row[3] for row in later) - dead[4]) / 1000
    print(f"\nabandoned to the waiting slot started on a survivor: {took:.3f} s")
    survivors = [logs[name] for name in HOSTS if name != victim]
    assert any(f"a run of it goes on host {victim}" in log for log in survivors), survivors
