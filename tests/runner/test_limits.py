"""Resource limits on real jobs (issue 16, item 2): each limit holds, a job it ends is recorded
`killed` with the limit named, and a job within its limits is untouched."""

from __future__ import annotations

import sys
import time

import pytest

from cronctl.model import Defaults, parse_task
from cronctl.records import Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.limits import group_use
from cronctl.runner.requests import RunRequest
from cronctl.store import HistoryStore

PY = sys.executable
HOLD = (
    "import time; x = bytearray({mb} * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep({s})"
)


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened


def run(store, command: str, **keys):
    task = parse_task("job", {"schedule": "@daily", "command": command, **keys}, Defaults(), "UTC")
    started = time.monotonic()
    finished = Executor(store).execute(RunRequest(task, Trigger.MANUAL))
    return store.get_run(finished.id), time.monotonic() - started


def hold(mb: int, seconds: float) -> str:
    return f'{PY} -c "{HOLD.format(mb=mb, s=seconds)}"'


def test_j2_a_job_over_its_memory_is_killed_naming_the_limit(store):
    recorded, took = run(store, hold(300, 20), limits={"memory": "64M"})
    assert recorded.status == "killed" and recorded.signal == 9
    assert recorded.reason == "memory limit 64M reached"
    assert took < 10  # seen in a quarter of a second; not the 20 s the job would hold


def test_j2_memory_counts_the_whole_process_group(store):
    """Two processes of 40 MiB each: each is under 64M, together they are over."""
    both = f"{hold(40, 20)} & {hold(40, 20)} & wait"
    recorded, _ = run(store, both, limits={"memory": "64M"})
    assert recorded.reason == "memory limit 64M reached"
    alone, _ = run(store, hold(40, 1), limits={"memory": "64M"})
    assert alone.status == "succeeded", alone.reason


def test_j2_cpu_time_is_limited_per_process_not_wall_time(store):
    recorded, took = run(store, f"{PY} -c 'while True: pass'", limits={"cpu": "1s"})
    assert recorded.status == "killed" and recorded.reason == "cpu limit 1s reached"
    assert took < 15
    # The shell's child got SIGXCPU and the shell exited 152: still the limit, named.
    compound, _ = run(store, f"{PY} -c 'while True: pass'; exit $?", limits={"cpu": "1s"})
    assert compound.status == "killed" and compound.reason == "cpu limit 1s reached"
    sleeper, _ = run(store, "sleep 1.5", limits={"cpu": "1s"})
    assert sleeper.status == "succeeded"


def test_j2_processes_are_counted_in_the_group(store):
    ten = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait"
    recorded, took = run(store, ten, limits={"processes": 5})
    assert recorded.status == "killed" and recorded.reason == "processes limit 5 reached"
    assert took < 5
    three, _ = run(store, "sleep 0.6 & sleep 0.6 & wait", limits={"processes": 5})
    assert three.status == "succeeded"


def test_j2_open_files_and_nice_reach_every_process(store):
    recorded, _ = run(
        store, "ulimit -Sn; ulimit -Hn; sh -c 'ulimit -n'; nice", limits={"open_files": 64}, nice=7
    )
    assert recorded.stdout.data.split() == [b"64", b"64", b"64", b"7"]
    over, _ = run(
        store,
        f"{PY} -c \"[open('/dev/null') for _ in range(100)]\"",
        limits={"open_files": 64},
    )
    assert over.status == "failed" and b"Too many open files" in over.stderr.data


def test_j2_a_job_without_limits_runs_as_its_caller_does(store):
    import os
    import resource

    recorded, _ = run(store, "nice; ulimit -n")
    niceness, files = recorded.stdout.data.split()
    assert int(niceness) == os.getpriority(os.PRIO_PROCESS, 0)
    assert int(files) == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_j2_group_use_reads_the_group_of_a_real_job():
    import subprocess

    proc = subprocess.Popen(["sh", "-c", "sleep 3 & sleep 3 & wait"], process_group=0)
    try:
        deadline = time.monotonic() + 5
        use = group_use(proc.pid)
        while use.processes < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            use = group_use(proc.pid)
        assert use.processes == 3 and use.resident_bytes > 0
    finally:
        proc.kill()
        subprocess.run(["pkill", "-g", str(proc.pid)], check=False)
        proc.wait()
