"""What other threads hand the scheduling loop.

Job threads hand in their completions, signal handlers their requests (stop, reload, report);
each sets `wake`, which the loop sleeps on. Nothing else of the loop's state is touched from
another thread: the loop reads these in its own time.
"""

from __future__ import annotations

import threading
from collections import deque

from cronctl.serve.workers import Completion


class Inbox:
    def __init__(self) -> None:
        self.wake = threading.Event()
        self.completions: deque[Completion] = deque()
        self.stop_requested = False
        self.hurry = False  # a second stop request: skip the grace
        self._reload_requested = False
        self._report_requested = False

    def done(self, completion: Completion) -> None:
        """A run ended, or was never started (the launcher's `done`)."""
        self.completions.append(completion)
        self.wake.set()

    def request_stop(self) -> None:
        """First call: shut down gracefully. Second call: skip the grace."""
        if self.stop_requested:
            self.hurry = True
        self.stop_requested = True
        self.wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self.wake.set()

    def request_report(self) -> None:
        self._report_requested = True
        self.wake.set()

    def take_reload(self) -> bool:
        """Whether a reload was requested since the last call."""
        requested, self._reload_requested = self._reload_requested, False
        return requested

    def take_report(self) -> bool:
        """Whether a report was requested since the last call."""
        requested, self._report_requested = self._report_requested, False
        return requested
