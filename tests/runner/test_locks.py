"""Shared locks (issue 16, item 3), the lock files themselves: exclusion within a process and
across processes, all or nothing, the holder named, released however the holder ends, and
kept by a job that outlives its holder."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from cronctl.clock import SYSTEM_CLOCK
from cronctl.errors import LockHeldError
from cronctl.runner.locks import HeldLocks, LockFolder, LockTaken, hold_for_manual_run

HOLD = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "os.write(fd, b'another process')\n"
    "print('held', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def folder(tmp_path):
    return LockFolder(tmp_path)


def held_elsewhere(path):
    path.parent.mkdir(mode=0o700, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"held\n"
    return proc


def test_j3_two_runs_of_one_process_exclude_each_other(folder):
    first = folder.try_acquire(["db"], "task 'a' (serve, pid 1)")
    assert isinstance(first, HeldLocks)
    second = folder.try_acquire(["db"], "task 'b' (serve, pid 1)")
    assert second == LockTaken("db", "task 'a' (serve, pid 1)")
    assert second.reason == "lock 'db' is held by task 'a' (serve, pid 1)"
    first.release()
    assert isinstance(folder.try_acquire(["db"], "task 'b'"), HeldLocks)


def test_j3_all_or_nothing_and_files_are_private(folder):
    blocker = folder.try_acquire(["net"], "task 'x'")
    assert isinstance(blocker, HeldLocks)
    taken = folder.try_acquire(["net", "db", "disk"], "task 'y'")
    assert isinstance(taken, LockTaken) and taken.name == "net"
    # db and disk were taken before net was found taken ("db" < "disk" < "net"): let go again
    assert isinstance(folder.try_acquire(["db", "disk"], "task 'z'"), HeldLocks)
    assert stat.S_IMODE(folder.folder.stat().st_mode) == 0o700
    for path in folder.folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_j3_a_lock_of_another_process_and_its_death(folder):
    proc = held_elsewhere(folder.folder / "db.lock")
    try:
        assert folder.try_acquire(["db"], "me") == LockTaken("db", "another process")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert isinstance(folder.try_acquire(["db"], "me"), HeldLocks)  # nothing stale


def test_j3_a_job_that_inherits_the_lock_keeps_it_after_its_holder_let_go(folder):
    held = folder.try_acquire(["db"], "task 'a' (serve, pid 1)")
    assert isinstance(held, HeldLocks)
    job = subprocess.Popen(["sleep", "60"], pass_fds=held.fds)
    try:
        held.release()  # the serve that started it is gone
        assert isinstance(folder.try_acquire(["db"], "task 'b'"), LockTaken)
    finally:
        job.kill()
        job.wait()
    assert isinstance(folder.try_acquire(["db"], "task 'b'"), HeldLocks)


def test_j3_run_now_refuses_or_waits(folder):
    held = folder.try_acquire(["db"], "task 'a' (serve, pid 1)")
    assert isinstance(held, HeldLocks)
    stop = threading.Event()
    with pytest.raises(LockHeldError) as caught:
        hold_for_manual_run(
            folder, "b", ["db"], wait=False, clock=SYSTEM_CLOCK, stop=stop, on_wait=print
        )
    assert caught.value.message == "task 'b' not run: lock 'db' is held by task 'a' (serve, pid 1)"
    assert caught.value.exit_code == 75
    heard: list[LockTaken] = []
    threading.Timer(0.5, held.release).start()
    started = time.monotonic()
    waited = hold_for_manual_run(
        folder, "b", ["db"], wait=True, clock=SYSTEM_CLOCK, stop=stop, on_wait=heard.append
    )
    assert isinstance(waited, HeldLocks) and 0.4 < time.monotonic() - started < 5
    assert [t.name for t in heard] == ["db"]
    waited.release()


def test_j3_waiting_ends_when_stopped(folder):
    held = folder.try_acquire(["db"], "task 'a'")
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    result = hold_for_manual_run(
        folder, "b", ["db"], wait=True, clock=SYSTEM_CLOCK, stop=stop, on_wait=lambda _: None
    )
    assert result is None
    assert isinstance(held, HeldLocks)
    assert os.path.exists(folder.folder / "db.lock")
