"""Helpers shared across the test packages."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable


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
