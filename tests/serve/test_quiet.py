"""Quiet by design (issue 14, item 11), through a real `cronctl serve`: a task its `when`
condition keeps skipping writes one row, not one a slot; an `after` cycle is logged once per
load of the task file, not at every run; serve without tasks says how to add one and waits for
them (item 12)."""

from __future__ import annotations

import re
from functools import partial

import pytest

from cronctl.records import Status
from tests import support
from tests.serve.test_serve_process import LIMIT, serve_starter, task_text

wait_for = partial(support.wait_for, timeout=LIMIT)


@pytest.fixture
def serve(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def skip_count(run) -> int:
    match = re.search(r"\((\d+) times since ", run.reason or "")
    return int(match[1]) if match else 1


def test_c11_a_task_its_condition_skips_writes_one_row_and_keeps_its_runs(
    serve, tasks_path, tmp_path
):
    """`@every 1s` gated by a flag file, with keep_runs = 3: while the flag is missing the
    skips fold into one row; the runs in between stay in the history."""
    flag = tmp_path / "go"
    tasks_path.write_text(
        task_text("gated", "@every 1s", "true", f'when = "test -e {flag}"\nkeep_runs = 3\n')
    )
    process = serve()
    first = wait_for(
        lambda: [r for r in process.runs("gated") if skip_count(r) >= 4],
        what="one row for 4 skips",
    )
    assert len(process.runs("gated")) == 1, process.runs("gated")
    assert first[0].status == Status.SKIPPED and first[0].reason.startswith("the when condition `")
    flag.touch()
    process.wait_runs("gated", 2, statuses=[Status.SUCCEEDED])
    flag.unlink()
    wait_for(lambda: skip_count(process.runs("gated")[0]) >= 3, what="a new row of 3 skips")
    process.stop()
    statuses = [r.status for r in process.runs("gated")]
    # keep_runs = 3 keeps the runs that ran: the newest row stands for all the skips since.
    assert statuses[0] == Status.SKIPPED and Status.SUCCEEDED in statuses, statuses
    assert len(statuses) <= 4  # serve prunes hourly; no more than one row a kind of stretch


def test_c11_an_after_cycle_is_logged_once_per_load(serve, tasks_path):
    tasks_path.write_text(
        task_text("a", "@every 1s", "true", 'after = ["b"]\n')
        + task_text("b", "0 0 1 1 *", "true", 'after = ["a"]\n')
    )
    process = serve()
    process.wait_runs("b", 4, statuses=[Status.SUCCEEDED])
    assert process.log.count("forms a cycle") == 1, process.log
    tasks_path.write_text(tasks_path.read_text() + "# reloaded\n")
    wait_for(lambda: process.log.count("forms a cycle") == 2, what="the warning after a reload")
    count = len(process.runs("b"))
    process.wait_runs("b", count + 3, statuses=[Status.SUCCEEDED])
    assert process.log.count("forms a cycle") == 2, process.log


@pytest.mark.parametrize("file", ["missing", "empty"])
def test_c12_serve_without_tasks_says_how_to_add_one_and_waits_for_them(
    serve, cronctl_exe, tasks_path, file
):
    import subprocess

    if file == "empty":
        tasks_path.write_text("")
    process = serve()
    process.wait_log("no tasks yet: add one with `cronctl add NAME SCHEDULE COMMAND`")
    added = subprocess.run(
        [*cronctl_exe, "add", "tick", "@every 1s", "true"], capture_output=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    process.wait_runs("tick", 2, statuses=[Status.SUCCEEDED])
    assert process.proc.poll() is None
