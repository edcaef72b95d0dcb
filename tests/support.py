"""Helpers shared across the test packages."""

from __future__ import annotations

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
