"""runner.spawn: the plain spawn (`os.posix_spawn`) of a job that needs nothing `Popen` adds,
and `Popen` for the others (issue 18, round 4)."""

from __future__ import annotations

import os
import subprocess

import pytest

from cronctl.model.limits import Limits
from cronctl.runner import spawn
from cronctl.runner.process import Supervision, run_process, start_process, supervised
from cronctl.runner.spawn import SpawnedJob

pytestmark = pytest.mark.skipif(not spawn.PLAIN_SPAWN, reason="posix_spawn is Linux's here")


def spawned(command: str, **options) -> Supervision:
    job = supervised(
        start_process(command, cwd=options.pop("cwd", None), env=dict(os.environ), **options)
    )
    assert isinstance(job, Supervision)
    return job


@pytest.mark.parametrize(
    ("options", "plain"),
    [
        ({}, True),
        ({"cwd": "{here}"}, True),  # the folder serve runs in already (home, as a task's)
        ({"cwd": "/"}, False),  # elsewhere: posix_spawn cannot change the folder
        ({"nice": 5}, False),  # set between fork and exec
        ({"limits": Limits(open_files=64)}, False),
        ({"shell": "sh"}, False),  # found on the job's PATH, as Popen finds it
    ],
    ids=["plain", "here", "elsewhere", "nice", "limits", "shell-on-path"],
)
def test_which_jobs_take_the_plain_spawn(options, plain):
    if options.get("cwd") == "{here}":
        options = {"cwd": os.getcwd()}
    job = spawned("echo hi; exit 3", **options)
    assert isinstance(job.proc, SpawnedJob) is plain
    assert isinstance(job.proc, subprocess.Popen) is not plain
    outcome = job.run(None)
    assert outcome.exit_code == 3 and outcome.stdout.data == b"hi\n"


def test_inherited_descriptors_pass_only_through_popen(tmp_path):
    read_end, write_end = os.pipe()
    try:
        held = spawned("sleep 0", pass_fds=(write_end,))  # a shared lock, as serve passes it
        assert isinstance(held.proc, subprocess.Popen)
        held.run(None)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_plain_job_sees_stdin_empty_its_own_group_and_no_stray_descriptor(monkeypatch):
    stray = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(stray, True)  # as a descriptor serve inherited from its parent
    monkeypatch.setattr(spawn, "_swept_done", False)
    try:
        job = spawned(
            f"cat; echo pgid=$(ps -o pgid= -p $$ | tr -d ' ') pid=$$;"
            f" if [ -e /proc/$$/fd/{stray} ]; then echo leaked; else echo closed; fi"
        )
        assert isinstance(job.proc, SpawnedJob)
        outcome = job.run(None)
        assert not os.get_inheritable(stray)  # marked close-on-exec before the first spawn
    finally:
        os.close(stray)
    lines = outcome.stdout.data.decode().split()
    assert lines[0] == f"pgid={job.proc.pid}" and lines[1] == f"pid={job.proc.pid}"
    assert lines[2] == "closed"


def test_a_plain_job_has_the_signal_dispositions_of_a_popen_job():
    # Python ignores SIGPIPE: without restoring it, `yes | head -1` in a job said "yes:
    # standard output: Broken pipe" (found by hand in a real serve, round 4).
    command = "grep SigIgn /proc/self/status; yes | head -1"
    plain = spawned(command)
    assert isinstance(plain.proc, SpawnedJob)
    through_popen = spawned(command, nice=5)  # nice: through Popen
    assert not isinstance(through_popen.proc, SpawnedJob)
    outcomes = [plain.run(None), through_popen.run(None)]
    for outcome in outcomes:
        assert outcome.stderr.data == b""
        assert outcome.stdout.data.decode().split("\n")[1] == "y"
    # The standard signals (1-31); 32 and 33 are glibc's own, not the job's business.
    ignored = [int(o.stdout.data.decode().split()[1], 16) & 0x7FFFFFFF for o in outcomes]
    assert ignored[0] == ignored[1]
    assert not ignored[0] & (1 << (13 - 1))  # SIGPIPE (13) not ignored


@pytest.mark.parametrize(
    ("command", "exit_code", "signal"),
    [("exit 0", 0, None), ("exit 7", 7, None), ("kill -TERM $$", None, 15)],
)
def test_a_plain_job_reports_its_exit_or_signal(command, exit_code, signal):
    outcome = run_process(command, cwd=None, env=dict(os.environ))
    assert (outcome.exit_code, outcome.signal) == (exit_code, signal)


@pytest.mark.parametrize(
    ("shell", "error"),
    [
        ("/nonexistent/sh", "shell /nonexistent/sh not found"),
        ("{tmp}/sh", "shell {tmp}/sh is not executable"),
    ],
)
def test_a_shell_that_cannot_run_is_said_as_before(tmp_path, shell, error):
    (tmp_path / "sh").write_text("#!/bin/sh\n")
    (tmp_path / "sh").chmod(0o644)
    shell, error = shell.format(tmp=tmp_path), error.format(tmp=tmp_path)
    outcome = run_process("true", shell=shell, cwd=None, env=dict(os.environ))
    assert outcome.start_error == error and outcome.exit_code is None
