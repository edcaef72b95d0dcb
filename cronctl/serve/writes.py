"""What serve's scheduling loop asks of its background writer.

The loop never waits for the database: rows of runs that never start (`skipped`, `missed`),
the heartbeat and retention are handed to a writer thread (`cronctl.serve.storage.Recorder`),
which writes them in order, retries each while the database refuses, and tells the run
listeners (notifications) about each row it wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cronctl.model import Task
    from cronctl.runner.requests import RunRequest


class BackgroundWrites(Protocol):
    def record_skipped(self, request: RunRequest, reason: str, now: datetime) -> None:
        """Record a run that was due but not started (overlap policy), as `skipped`."""

    def record_missed(self, task: Task, slots: tuple[datetime, ...], reason: str) -> None:
        """Record slots that passed unrun as `missed`; a slot that already has a run is left."""

    def heartbeat(self, now: datetime) -> None:
        """Record that serve is alive; a heartbeat still queued is replaced by this one."""

    def tasks_loaded(self, now: datetime) -> None:
        """Record that a newly loaded, valid task file is now in force."""

    def retention(self, now: datetime, *, keep_days: int, keep_runs: dict[str, int]) -> None:
        """Prune old runs and checkpoint the WAL; a retention still queued is replaced."""
