"""runner.pipes.JobPipes: both pipes read into bounded captures, the exit noticed by a pidfd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from cronctl.runner import pipes as pipes_mod
from cronctl.runner.pipes import JobPipes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
LINUX = sys.platform.startswith("linux")


def start(command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        process_group=0,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if LINUX else set()


def test_pump_reads_both_pipes_to_their_end_and_passes_each_chunk_on():
    seen: list[tuple[str, bytes]] = []
    pipes = JobPipes(4, 4, lambda name, chunk: seen.append((name, chunk)))
    proc = start("printf 0123456789; printf err >&2")
    try:
        pipes.watch(proc)
        while pipes.open:
            pipes.pump(None)
        stdout, stderr = pipes.output()
    finally:
        pipes.close()
        proc.wait()
    assert stdout.data == b"0123\n[... 2 bytes dropped ...]\n6789" and stdout.total_bytes == 10
    assert stderr.data == b"err" and stderr.dropped_bytes == 0
    assert b"".join(c for n, c in seen if n == "stdout") == b"0123456789"
    assert b"".join(c for n, c in seen if n == "stderr") == b"err"


@pytest.mark.skipif(not LINUX, reason="pidfd is Linux only")
def test_the_pidfd_tells_the_exit_while_a_background_child_holds_the_pipes():
    before = open_fds()
    pipes = JobPipes(1024, 1024, None)
    proc = start("sleep 5 & exit 0")
    try:
        pipes.watch(proc)
        assert pipes.pidfd is not None
        exited = False
        for _ in range(100):
            if pipes.pump(0.1):
                exited = proc.poll() is not None
                if exited:
                    break
        assert exited and pipes.open  # the sleep still holds both pipes
        pipes.stop_watching_exit()
        assert pipes.pidfd is None
    finally:
        kill_group(proc)
        pipes.close()
        pipes.close()  # closing twice is harmless
        proc.wait()
    assert open_fds() == before


def test_without_a_pidfd_every_pump_may_be_the_exit(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pipes_mod, "_HAS_PIDFD", False)
    pipes = JobPipes(16, 16, None)
    proc = start("true")
    try:
        pipes.watch(proc)
        assert pipes.pidfd is None
        assert pipes.pump(0) is True
    finally:
        pipes.close()
        proc.wait()


@pytest.mark.parametrize("with_poll", [True, False], ids=["poll", "select"])
def test_the_poller_tells_readable_and_ended_descriptors(
    monkeypatch: pytest.MonkeyPatch, with_poll: bool
):
    poller = pipes_mod._Poller()
    if not with_poll:
        monkeypatch.setattr(poller, "_poll", None)  # as where select.poll does not exist
    quiet_r, quiet_w = os.pipe()
    data_r, data_w = os.pipe()
    ended_r, ended_w = os.pipe()
    try:
        for fd in (quiet_r, data_r, ended_r):
            poller.register(fd)
        assert poller.ready(0) == []  # nothing yet: a zero wait returns at once
        os.write(data_w, b"x")
        os.close(ended_w)  # end of file counts as readable
        assert sorted(poller.ready(5)) == sorted([data_r, ended_r])
        poller.unregister(ended_r)
        poller.unregister(ended_r)  # twice: nothing
        assert poller.ready(0.01) == [data_r]
        poller.close()
        assert poller.ready(0) == []
    finally:
        for fd in (quiet_r, quiet_w, data_r, data_w, ended_r):
            os.close(fd)
