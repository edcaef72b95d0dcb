"""runner.supervisor.Supervisor: one thread watching many real jobs at once (issue 18, round 4).

Each job is spawned as serve's claimer spawns it (`start_process`) and handed over; the
supervisor must give every job what its own thread gave it: output read as it comes, within
the capture's bounds, timeouts (SIGTERM, then SIGKILL after the grace), stops, leftovers that
hold the pipes, and no job held up by another that prints fast.
"""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest

from cronctl.runner.outcome import NOTE_LEFTOVER, ProcessOutcome
from cronctl.runner.process import Supervision, start_process, supervised
from cronctl.runner.supervisor import Supervisor


class Ends:
    """Collects what the supervisor tells of each job's end, with when it was told."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, ProcessOutcome | BaseException, float]] = queue.Queue()
        self.t0 = time.monotonic()

    def ended(self, name: str):
        return lambda outcome: self._queue.put((name, outcome, time.monotonic() - self.t0))

    def wait(self, count: int, timeout: float = 30.0) -> dict[str, tuple[ProcessOutcome, float]]:
        got: dict[str, tuple[ProcessOutcome, float]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < count:
            name, outcome, at = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            assert isinstance(outcome, ProcessOutcome), outcome
            got[name] = (outcome, at)
        return got


def spawn(command: str, **options) -> Supervision:
    options.setdefault("kill_grace", 1.0)
    job = supervised(start_process(command, cwd=None, env=dict(os.environ), **options))
    assert isinstance(job, Supervision)
    return job


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_many_jobs_at_once_each_end_with_its_own_status_and_output():
    supervisor = Supervisor()
    ends = Ends()
    for i in range(40):
        supervisor.add(spawn(f"echo out{i}; echo err{i} >&2; exit {i % 4}"), ends.ended(f"j{i}"))
    got = ends.wait(40)
    for i in range(40):
        outcome, _ = got[f"j{i}"]
        assert outcome.exit_code == i % 4
        assert outcome.stdout.data == f"out{i}\n".encode()
        assert outcome.stderr.data == f"err{i}\n".encode()
        assert outcome.note is None and not outcome.timed_out
    assert wait_for_watching(supervisor, 0)


def wait_for_watching(supervisor: Supervisor, count: int) -> bool:
    deadline = time.monotonic() + 5
    while supervisor.watching != count and time.monotonic() < deadline:
        time.sleep(0.01)
    return supervisor.watching == count


def test_one_job_flooding_output_does_not_hold_up_the_others():
    supervisor = Supervisor()
    ends = Ends()
    seen = [0]

    def counted(_stream: str, chunk: bytes) -> None:
        seen[0] += len(chunk)

    flood = spawn("yes flood", timeout=3.0, on_output=counted, head_bytes=100, tail_bytes=100)
    supervisor.add(flood, ends.ended("flood"))
    for i in range(10):
        supervisor.add(spawn(f"sleep 0.2; echo quiet{i}"), ends.ended(f"q{i}"))
    got = ends.wait(11)
    for i in range(10):
        outcome, at = got[f"q{i}"]
        assert outcome.exit_code == 0 and outcome.stdout.data == f"quiet{i}\n".encode()
        assert at < 2.5  # not behind the flood, which runs until its 3 s timeout
    outcome, at = got["flood"]
    assert outcome.timed_out and at >= 2.5
    # The capture stays bounded however much the job printed; everything was read.
    assert len(outcome.stdout.data) < 300
    assert outcome.stdout.total_bytes == seen[0] > 1_000_000
    assert outcome.stdout.dropped_bytes == outcome.stdout.total_bytes - 200


@pytest.mark.parametrize(
    ("command", "kill_grace", "signal"),
    [
        ("sleep 30", 1.0, 15),  # SIGTERM ends it
        ("trap '' TERM; sleep 30 & wait", 0.3, 9),  # ignores SIGTERM: SIGKILL after the grace
    ],
    ids=["term", "kill-after-grace"],
)
def test_a_timeout_among_other_jobs(command, kill_grace, signal):
    supervisor = Supervisor()
    ends = Ends()
    slow = spawn(command, timeout=0.3, kill_grace=kill_grace)
    supervisor.add(slow, ends.ended("slow"))
    for i in range(5):
        supervisor.add(spawn(f"sleep 0.{i + 1}; exit 3"), ends.ended(f"j{i}"))
    got = ends.wait(6)
    assert all(got[f"j{i}"][0].exit_code == 3 for i in range(5))
    outcome, at = got["slow"]
    assert outcome.timed_out and outcome.signal == signal
    assert 0.3 <= outcome.duration < 5.0 and at < 10
    assert gone(slow.proc.pid)


def test_a_stop_while_jobs_run_ends_each_stopped_job():
    supervisor = Supervisor()
    ends = Ends()
    stops = [threading.Event() for _ in range(6)]
    jobs = [spawn("sleep 30", stop=stop) for stop in stops]
    for i, job in enumerate(jobs):
        supervisor.add(job, ends.ended(f"s{i}"))
    supervisor.add(spawn("echo still"), ends.ended("other"))
    time.sleep(0.2)
    for stop in stops:
        stop.set()
    got = ends.wait(7)
    for i in range(6):
        outcome, at = got[f"s{i}"]
        assert outcome.stopped and outcome.signal == 15 and at < 5
        assert gone(jobs[i].proc.pid)
    assert got["other"][0].stdout.data == b"still\n"


def test_leftovers_and_early_closed_pipes_beside_short_jobs():
    supervisor = Supervisor()
    ends = Ends()
    supervisor.add(spawn("sleep 30 & echo started"), ends.ended("leftover"))
    supervisor.add(spawn("exec >&- 2>&-; sleep 0.5; exit 4"), ends.ended("closed"))
    supervisor.add(spawn("echo quick"), ends.ended("quick"))
    got = ends.wait(3)
    leftover, at = got["leftover"]
    assert leftover.exit_code == 0 and leftover.stdout.data == b"started\n"
    assert leftover.note is not None and NOTE_LEFTOVER in leftover.note and at < 10
    closed, at = got["closed"]
    assert closed.exit_code == 4 and closed.duration >= 0.5  # watched to its exit
    assert got["quick"][0].stdout.data == b"quick\n" and got["quick"][1] < at


def test_a_callback_that_raises_ends_its_job_only():
    supervisor = Supervisor()
    ends = Ends()
    told: queue.Queue[object] = queue.Queue()

    def broken(_stream: str, _chunk: bytes) -> None:
        raise OSError("disk full")

    bad = spawn("echo x; sleep 30", on_output=broken)
    supervisor.add(bad, told.put)
    supervisor.add(spawn("sleep 0.2; echo fine"), ends.ended("fine"))
    error = told.get(timeout=10)
    assert isinstance(error, OSError) and str(error) == "disk full"
    assert bad.proc.returncode is not None and gone(bad.proc.pid)  # killed and reaped
    assert ends.wait(1)["fine"][0].stdout.data == b"fine\n"
    assert wait_for_watching(supervisor, 0)
