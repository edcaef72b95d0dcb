"""Shared locks under a real `cronctl serve` (issue 16, item 3): tasks sharing a lock never
overlap, a task without it runs alongside, `skip` names the holder, `run-now` refuses while
serve holds the lock, and a killed serve leaves no stale lock."""

from __future__ import annotations

import signal
import subprocess

import pytest

from cronctl.records import Status
from tests.serve.test_serve_process import serve_starter, task_text, wait_for


@pytest.fixture
def serve(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def intervals(runs):
    return sorted((r.started_at, r.finished_at, r.task) for r in runs if r.finished_at)


def test_j3_tasks_sharing_a_lock_never_overlap_and_others_run_alongside(serve, tasks_path):
    queue = 'lock = "db"\noverlap = "queue"'
    tasks_path.write_text(
        task_text("a", "@every 1s", "sleep 0.4", queue)
        + task_text("b", "@every 1s", "sleep 0.4", queue)
        + task_text("c", "@every 1s", "sleep 0.4")
    )
    process = serve("--grace", "0.5")
    process.wait_runs("a", 4, statuses=[Status.SUCCEEDED])
    process.wait_runs("b", 4, statuses=[Status.SUCCEEDED])
    process.stop()
    locked = intervals(process.runs("a") + process.runs("b"))
    assert len(locked) >= 8
    for (_, end, first), (start, _, second) in zip(locked, locked[1:], strict=False):
        assert end <= start, f"{first} ended at {end}, after {second} started at {start}"
    # c holds no lock: some run of c overlapped a run of a or b
    free = intervals(process.runs("c"))
    assert any(s < e2 and s2 < e for s, e, _ in free for s2, e2, _ in locked)
    assert not process.runs(statuses=[Status.SKIPPED])


def test_j3_skip_names_the_holder_and_run_now_refuses(serve, tasks_path, cronctl_exe):
    tasks_path.write_text(
        task_text("long", "@every 1s", "sleep 30", 'lock = "solo"')
        + task_text("short", "@every 1s", "true", 'lock = ["solo"]')
    )
    process = serve("--grace", "0.5", "--kill-grace", "1")
    process.wait_runs("long", 1, statuses=[Status.RUNNING])
    [skipped, *_] = process.wait_runs("short", 1, statuses=[Status.SKIPPED])
    assert skipped.reason == f"lock 'solo' is held by task 'long' (serve, pid {process.proc.pid})"
    refused = subprocess.run(
        [*cronctl_exe, "run-now", "short"], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 75
    assert refused.stderr.splitlines() == [
        f"error: task 'short' not run: lock 'solo' is held by task 'long'"
        f" (serve, pid {process.proc.pid})",
        "hint: --wait waits until it is free",
    ]
    assert process.stop() == 0


def test_j3_a_killed_serve_leaves_no_stale_lock(serve, tasks_path, cronctl_exe):
    tasks_path.write_text(task_text("long", "@every 1s", "sleep 30", 'lock = "solo"'))
    first = serve("--kill-grace", "1")
    # The row is claimed before the job is spawned: wait for its pid (set once the job exists,
    # holding the lock it inherited), or a kill in between leaves no job and so no lock.
    [running] = wait_for(
        lambda: [r for r in first.runs("long", statuses=[Status.RUNNING]) if r.pid],
        what="the job of long running",
    )
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(20)
    # The orphaned job still holds the lock it inherited: nothing sharing it starts beside it.
    tasks_path.write_text(task_text("long", "@every 1h", "true", 'lock = "solo"'))
    held = subprocess.run(
        [*cronctl_exe, "run-now", "long"], capture_output=True, text=True, timeout=30
    )
    assert held.returncode == 75, held.stderr
    # The next serve stops the orphan (its run becomes abandoned); the lock is free again.
    second = serve("--kill-grace", "1")
    wait_for(lambda: second.runs("long", statuses=[Status.ABANDONED]), what="the run abandoned")
    done = wait_for(
        lambda: (
            (
                subprocess.run(
                    [*cronctl_exe, "run-now", "long", "--no-retries"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    input="",
                ).returncode
                != 75
            )
            or None
        ),
        what="the lock free again",
    )
    assert done and running.pid
