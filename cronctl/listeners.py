"""What happens to runs, for whoever listens (notifications, serve's log lines).

The runner reports; listeners must return quickly and never raise: a slow or failing listener
must not fail a run or stall serve.
"""

from __future__ import annotations

import logging
from typing import Protocol

from cronctl.model import Task
from cronctl.records import Run


class RunEvents(Protocol):
    def run_started(self, task: Task, run: Run) -> None:
        """A job's process is about to start (after its `when` condition passed)."""

    def run_finished(self, task: Task, run: Run, *, final: bool) -> None:
        """A run reached its end status; `final` is False when a retry will follow.

        Also called for runs that never started: `skipped`, `missed`, `error`.
        """


class NoEvents:
    def run_started(self, task: Task, run: Run) -> None:
        pass

    def run_finished(self, task: Task, run: Run, *, final: bool) -> None:
        pass


log = logging.getLogger("cronctl")


class EventFanout:
    """Sends each event to several listeners. A listener that raises (against the contract)
    is logged and skipped: it must not fail the run or keep the others from hearing."""

    def __init__(self, *listeners: RunEvents) -> None:
        self.listeners = listeners

    def run_started(self, task: Task, run: Run) -> None:
        for listener in self.listeners:
            try:
                listener.run_started(task, run)
            except Exception:
                log.exception("a run listener failed on the start of run %s", run.id)

    def run_finished(self, task: Task, run: Run, *, final: bool) -> None:
        for listener in self.listeners:
            try:
                listener.run_finished(task, run, final=final)
            except Exception:
                log.exception("a run listener failed on the end of run %s", run.id)
