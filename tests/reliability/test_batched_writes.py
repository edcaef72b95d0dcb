"""The guarantees across serve's batched writes (issue 18): the claims of one instant are one
transaction and the pids and ends of the jobs that ran are committed in groups, so `kill -9`
can now land between a batch's commit and its spawns (made by the claimer itself, in slot
order, before the batch's threads start), or between a job's exit and the group that records
its end. Whatever the moment: no job runs without its row, no (task, slot) runs
twice, and a row a dead serve left `running` becomes `abandoned` at the next start."""

from __future__ import annotations

import time

import pytest

from cronctl.records import Status
from tests.reliability.test_serve_faults import first_attempts, wait_started
from tests.serve.test_serve_process import serve_starter, task_text, wait_for

TASKS = 20
# Moments after a whole second, when the instant's batch is being claimed, spawned and its
# first ends recorded (a tick of 20 runs took about 15-30 ms on the 2-core test machine).
KILL_AFTER = (0.003, 0.008, 0.015, 0.025, 0.045)


@pytest.fixture
def serve_proc(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def test_kill_9_inside_a_tick_of_batched_claims_and_ends(serve_proc, tasks_path, cronctl_home):
    marks = cronctl_home / "marks"
    marks.mkdir()
    # Each job leaves its run id under its task: proof of what actually ran.
    command = f"echo $CRONCTL_RUN_ID >> {marks}/$CRONCTL_TASK"
    tasks_path.write_text("".join(task_text(f"t{i:02}", command=command) for i in range(TASKS)))
    for offset in KILL_AFTER:
        serve = serve_proc()
        wait_started(serve)
        wait_for(lambda: len(serve.runs()) >= TASKS, what="a first tick")  # noqa: B023
        now = time.time()
        time.sleep(1 - now % 1 + offset)
        serve.kill()
    last = serve_proc("--grace", "0", "--kill-grace", "1")
    wait_started(last)
    wait_for(lambda: not last.runs(statuses=[Status.RUNNING]) or None, what="leftovers closed")
    assert last.stop() == 0

    runs = {run.id: run for run in last.runs()}
    assert max(first_attempts(runs.values()).values()) == 1  # no slot ran twice
    assert not [r for r in runs.values() if r.status == Status.RUNNING]
    for mark in marks.iterdir():
        for line in mark.read_text().split():
            run = runs.get(int(line))
            assert run is not None, f"job of {mark.name} ran without its row (run {line})"
            assert run.task == mark.name
    ran = {int(line) for mark in marks.iterdir() for line in mark.read_text().split()}
    succeeded = {i for i, r in runs.items() if r.status == Status.SUCCEEDED}
    assert succeeded <= ran  # a row says succeeded only for a job that ran
