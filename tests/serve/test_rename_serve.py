"""`cronctl rename` while a real `cronctl serve` runs the task and its job is running: the run
ends recorded under the new name, and every slot of the task has one row, under one name or the
other, none twice and none missed (cronctl/serve/renames.py)."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from cronctl.records import Status, Trigger
from tests.serve.test_serve_process import LIMIT, first_attempt_slots, serve, task_text, wait_for

__all__ = ["serve"]  # the fixture, imported for pytest


def cronctl(exe, tasks_path, *args):
    return subprocess.run(
        [*exe, "--tasks-file", str(tasks_path), *args],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )


def test_rename_during_a_running_job_carries_the_task_over(serve, cronctl_exe, tasks_path):
    tasks_path.write_text(
        "# the job that runs while it is renamed\n"
        + task_text("job", "@every 2s", "sleep 3")
        + task_text("next", "@reboot", "true", 'after = ["job"]')
    )
    process = serve()
    running = process.wait_runs("job", 1, statuses=[Status.RUNNING])[0]

    result = cronctl(cronctl_exe, tasks_path, "rename", "job", "job2")
    assert result.returncode == 0, result.stderr
    assert "Renamed 'job' to 'job2': the task file and" in result.stderr
    assert "[tasks.job2]" in tasks_path.read_text()
    assert 'after = ["job2"]' in tasks_path.read_text()
    process.wait_log("task job: renamed to job2")

    # The running job ends recorded under the new name, by its id.
    ended = wait_for(
        lambda: (
            (r := process.runs("job2")) and [x for x in r if x.id == running.id and x.finished_at]
        ),
        what="the running run's end",
    )[0]
    assert ended.task == "job2" and ended.status == Status.SUCCEEDED
    # Then the task runs on under its new name: two more runs that started after the rename.
    wait_for(
        lambda: len([r for r in process.runs("job2", statuses=[Status.SUCCEEDED])]) >= 3,
        what="two more runs of job2",
    )
    assert process.stop() == 0

    runs = process.runs()
    assert not [r for r in runs if r.task == "job"], "a row left under the old name"
    slots = first_attempt_slots(runs)
    assert slots and max(slots.values()) == 1, "a slot ran twice"
    assert not [r for r in runs if r.status == Status.MISSED], "a slot was missed"
    # Every slot from the first to the last has its row: run, or skipped by the overlap rule.
    times = sorted(at for (task, at) in slots if task == "job2")
    gaps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {timedelta(seconds=2)}, times
    assert all(r.trigger in (Trigger.SCHEDULE, Trigger.AFTER, Trigger.REBOOT) for r in runs)
    # The overlap rule (skip) held across the rename: serve knew the running job was job2's.
    spans = sorted(
        (r.started_at, r.finished_at) for r in runs if r.task == "job2" and r.status != "skipped"
    )
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"two runs of job2 overlapped: {spans}"
    assert any(r.task == "job2" and r.status == Status.SKIPPED for r in runs)
