"""Helpers shared across the test packages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
):
    """Poll `condition` until it returns something truthy and return that value; fail with
    "<what> not met within <timeout>s" otherwise. Modules bind their own limit with
    functools.partial(wait_for, timeout=LIMIT)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")


def pid_alive(pid: int) -> bool:
    """True while `pid` is a process that is not a zombie (a zombie has exited: it waits for
    its parent, or PID 1, to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            return False
        return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")
    return True


def read_pty(leader: int, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Read all that `proc` writes to the pseudo-terminal whose leader side is `leader` until
    it closes its side, wait for it (killed if it outlives `timeout`); close `leader`."""
    chunks = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return b"".join(chunks)
