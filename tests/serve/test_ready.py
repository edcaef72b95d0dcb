"""READY=1 means able to fire (README, "Running serve under systemd"): serve says it only once
catch-up is decided and every task's first slot is planned, so `systemctl start` returns when
serve can fire, not while it still plans thousands of tasks."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

from cronctl.records import Status, Trigger
from cronctl.store import HistoryStore
from tests.serve.test_serve_process import (  # noqa: F401 (fixtures)
    LIMIT,
    notify_socket,
    serve,
    task_text,
    wait_for,
)

QUIET = 20_000  # tasks not due for a year, planned before the last ones


def test_ready_comes_after_catch_up_and_planning(serve, tasks_path, tmp_path):  # noqa: F811
    """The catch-up decision of the last task of a large file is logged before READY=1 is
    sent, and a task due each second runs within seconds of READY=1. Before, READY=1 was
    sent before the tasks were planned: with 100,000 tasks serve planned for 2.3 s more."""
    path = tmp_path / "ready.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(LIMIT)
    quiet = "".join(task_text(f"quiet-{n}", f"{n % 60} {n // 60 % 24} 1 1 *") for n in range(QUIET))
    tasks_path.write_text(
        quiet
        + task_text("tick", "@every 1s", "true")
        + task_text("behind", "*/5 * * * *", "true", 'catch_up = "once"\n')
    )
    then = datetime.now(UTC) - timedelta(days=1)
    with HistoryStore(tasks_path.parent / "history.db") as store:
        run = store.start_run("behind", Trigger.SCHEDULE, started_at=then, scheduled_at=then)
        store.finish_run(run, status=Status.SUCCEEDED, finished_at=then, duration_ms=0)
    process = serve(env={"NOTIFY_SOCKET": str(path)})
    while "READY=1" not in sock.recv(4096).decode():
        pass
    # Read at once: the last task's catch-up is decided (and logged) before READY=1 is sent.
    log_at_ready = process.log
    ready = datetime.now(UTC)
    sock.close()
    assert "task behind: catching up 1 slot" in log_at_ready
    first = process.wait_runs("tick", 1)[-1]
    assert first.scheduled_at is not None
    late = (first.scheduled_at - ready).total_seconds()
    assert late < 5.0, f"the first slot of tick was {late:.2f}s after READY=1"
    process.stop()


def test_ready_is_said_without_tasks_too(serve, tasks_path, notify_socket):  # noqa: F811
    path, messages = notify_socket
    tasks_path.write_text("")
    began = time.monotonic()
    process = serve(env={"NOTIFY_SOCKET": str(path)})
    wait_for(lambda: any("READY=1" in m for m in messages()), what="READY=1")
    assert time.monotonic() - began < 20
    assert "no tasks yet" in process.log
    assert process.stop() == 0
