"""The one source of time for core code: tests pass a fake clock and run days in milliseconds."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current wall-clock time, aware, in UTC."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes back (for timeouts and durations)."""

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait up to `seconds`; return True early when `wake` is set."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is not None:
            return wake.wait(max(0.0, seconds))
        time.sleep(max(0.0, seconds))
        return False


SYSTEM_CLOCK = SystemClock()
