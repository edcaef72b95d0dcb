"""Hardening h1 of reliability.md: a broken task file does not blind the operator.

The commands that read the history (`history`, `logs`, `status`, `metrics`, `prune
--keep-runs`) answer from the database with one warning; `status` names the invalid file as a
problem and says which version serve keeps running; the commands that need the task
definitions refuse with exit 2. Every case drives the real `cronctl`
(README.md#health-status-prune-metrics).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.reliability.cfg_helpers import (
    LIMIT,
    Call,
    CfgServe,
    assert_one_error,
    cfg_run,
    cfg_run_many,
    environment,
    wait_for,
)

BLIND_TASKS = '[tasks.a]\nschedule = "@daily"\ncommand = "echo out-of-a"\n'
BROKEN_TAIL = "[tasks.broken\n"  # line 4 of the broken file

# (arguments, exit status, the end of the one warning line, or None: the file is not read)
HISTORY_READERS = [
    (["history"], 0, "; showing the history only"),
    (["history", "a", "--json"], 0, "; showing the history only"),
    (["logs", "--last", "a"], 0, None),
    (["logs", "1"], 0, None),
    (["status"], 1, "; showing the history only"),
    (["status", "--json"], 1, "; showing the history only"),
    (["metrics"], 0, "; exporting the history only"),
    (["prune", "--keep-runs", "5", "--dry-run"], 0, "; pruning with --keep-runs for every task"),
]
DEFINITION_READERS = [["list"], ["show", "a"], ["run-now", "a"], ["notify-test", "a"], ["prune"]]


@pytest.fixture
def blind_home(tmp_path, cronctl_exe) -> Path:
    """A home whose task `a` ran once (run 1), then whose task file broke."""
    home = tmp_path / "blind"
    home.mkdir()
    (home / "tasks.toml").write_text(BLIND_TASKS)
    ran = cfg_run(cronctl_exe, "run-now", "a", env={"CRONCTL_HOME": str(home)})
    assert ran.returncode == 0, ran.stderr
    return home


def _break(home: Path) -> Path:
    path = home / "tasks.toml"
    with path.open("a") as handle:
        handle.write(BROKEN_TAIL)
    return path


def test_h1_commands_that_read_the_history_work_whatever_the_task_file(blind_home, cronctl_exe):
    """Decided: with an invalid task file, `history`, `logs`, `status`, `metrics` and `prune
    --keep-runs` answer from the database, after one warning line naming the file, the line and
    the error; `status` is unhealthy (1). The commands that need the tasks' definitions (`list`,
    `show`, `run-now`, `notify-test`, and `prune` without --keep-runs: each task's keep_runs is
    in the file) still refuse with the one error line, exit 2. Before: every one of them exited
    2 with the TOML error (`logs RUN_ID` alone worked)."""
    path = _break(blind_home)
    env = {"CRONCTL_HOME": str(blind_home)}
    calls = [Call(args, env=env) for args, _, _ in HISTORY_READERS]
    outputs = {}
    for (args, code, warning), done in zip(
        HISTORY_READERS, cfg_run_many(cronctl_exe, calls), strict=True
    ):
        what = (args, done.returncode, done.stdout[:500], done.stderr)
        assert done.returncode == code and "Traceback" not in done.stderr, what
        warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
        if warning is None:
            assert warnings == [], what
        else:
            assert warnings == [
                f"warning: {path}:4: invalid TOML: Expected ']' at the end of a table"
                f" declaration{warning}"
            ], what
        outputs[tuple(args)] = done.stdout
    assert "\ta\tmanual\t" in outputs[("history",)]
    assert "out-of-a" in outputs[("logs", "--last", "a")]
    assert f"the task file is invalid: {path}:4: invalid TOML" in outputs[("status",)]
    assert 'cronctl_task_runs_total{task="a"} 1' in outputs[("metrics",)]
    for args in DEFINITION_READERS:
        done = cfg_run(cronctl_exe, *args, env=env)
        assert_one_error(done, 2, f"{path}:4: invalid TOML")
    unknown = cfg_run(cronctl_exe, "history", "nosuch", env=env)
    assert unknown.returncode == 2 and unknown.stderr.splitlines()[1:] == [
        "error: no task named 'nosuch' in the history"
    ], unknown.stderr


PROM_SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+]+$')


def _families(text: str) -> list[str]:
    return [line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")]


def test_h1_metrics_into_a_file_is_a_full_exposition_with_the_file_invalid(
    blind_home, tmp_path, cronctl_exe
):
    """Decided: `cronctl metrics > x.prom` with an invalid task file writes every family that a
    valid file gives (HELP and TYPE), `cronctl_task_file_valid 0`, and the history's series of
    each task in the history; only `enabled` and the next run, which need the task's definition,
    have no samples. Before: exit 2 and an empty x.prom."""
    env = environment({"CRONCTL_HOME": str(blind_home)})
    shell = " ".join(f"'{part}'" for part in cronctl_exe)
    valid = subprocess.run(
        ["sh", "-c", f"{shell} metrics > valid.prom"], cwd=tmp_path, env=env, timeout=LIMIT
    )
    assert valid.returncode == 0
    _break(blind_home)
    broken = subprocess.run(
        ["sh", "-c", f"{shell} metrics > x.prom"],
        cwd=tmp_path,
        env=env,
        timeout=LIMIT,
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 0 and broken.stderr.startswith("warning: "), broken.stderr
    before, after = (tmp_path / "valid.prom").read_text(), (tmp_path / "x.prom").read_text()
    assert "cronctl_task_file_valid 1\n" in before and "cronctl_task_file_valid 0\n" in after
    assert _families(after) == _families(before)
    assert "# TYPE cronctl_task_file_valid gauge\n" in after
    samples = [line for line in after.splitlines() if not line.startswith("#")]
    assert all(PROM_SAMPLE.match(line) for line in samples), samples
    missing = {line for line in before.splitlines() if not line.startswith("#")} - set(samples)
    assert {line.partition("{")[0].partition(" ")[0] for line in missing} == {
        "cronctl_task_enabled",
        "cronctl_task_next_run_timestamp_seconds",
        "cronctl_task_file_valid",
    }, missing


def test_h1_status_says_which_version_of_the_task_file_serve_keeps_running(tmp_path, cronctl_exe):
    """Decided: serve records when it put a valid task file in force (at start and at each
    reload: serve_state.tasks_loaded_at); when the file then breaks, `status` exits 1 and says
    that the file is invalid and that serve keeps running the version it loaded at that time;
    `status --json` carries both, `metrics` has serve up and the file invalid. Before: status
    exited 2 with the TOML error while serve ran on."""
    from cronctl import timefmt
    from cronctl.store import HistoryStore

    home = tmp_path / "home"
    home.mkdir()
    path = home / "tasks.toml"
    path.write_text(BLIND_TASKS)
    env = {"CRONCTL_HOME": str(home)}

    def serve_row():
        if not (home / "history.db").exists():
            return None
        with HistoryStore(str(home / "history.db")) as store:
            return store.serve_state()

    serve = CfgServe(cronctl_exe, home)
    try:
        started = wait_for(serve_row, what="serve's row")
        assert started.tasks_loaded_at == started.started_at
        edited = home / "tasks.new"
        edited.write_text(BLIND_TASKS + '[tasks.b]\nschedule = "@daily"\ncommand = "true"\n')
        os.replace(edited, path)  # as editors save
        reloaded = wait_for(
            lambda: (row := serve_row()) and row.tasks_loaded_at > started.started_at and row,
            what="the reload recorded",
        )
        _break(home)
        wait_for(lambda: "not reloaded" in serve.log, what="the reload error in serve's log")
        told = cfg_run(cronctl_exe, "status", env=env)
        assert told.returncode == 1, (told.stdout, told.stderr)
        # #14, item 4: ISO 8601 to the second, no relative time.
        loaded_at = timefmt.iso_seconds(reloaded.tasks_loaded_at)
        assert "health  UNHEALTHY" in told.stdout and "serve   running (pid" in told.stdout
        assert f"  - the task file is invalid: {path}:7: invalid TOML" in told.stdout, told.stdout
        assert (
            f"  - serve keeps running the version of the task file it loaded at {loaded_at}\n"
            in told.stdout
        ), told.stdout
        as_json = json.loads(cfg_run(cronctl_exe, "status", "--json", env=env).stdout)
        assert as_json["task_file"]["valid"] is False
        assert as_json["serve"]["tasks_loaded_at"] == timefmt.iso(reloaded.tasks_loaded_at)
        exposition = cfg_run(cronctl_exe, "metrics", env=env).stdout
        assert "cronctl_serve_up 1\n" in exposition
        assert "cronctl_task_file_valid 0\n" in exposition
        assert serve.stop() == 0, serve.log
    finally:
        serve.kill()
