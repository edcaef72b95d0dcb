"""What to run and why: a request for one attempt of a task, its stop signal, and the retry
rule (a failed or timed-out attempt is followed by another while attempts are left)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from cronctl.model import Task
from cronctl.records import Run, Status, Trigger

RETRYABLE = (Status.FAILED, Status.TIMED_OUT)


class StopSignal(threading.Event):
    """A request to end a running job, carrying why: the run is recorded `interrupted` with
    that reason (serve shutting down, replaced by a newer run, Ctrl-C)."""

    def __init__(self, reason: str = "stopped by cronctl") -> None:
        super().__init__()
        self.reason = reason

    def stop(self, reason: str | None = None) -> None:
        if reason:
            self.reason = reason
        self.set()


@dataclass(frozen=True)
class RunRequest:
    """What to run and why. `stop` lets the caller end the job (shutdown, replace, Ctrl-C)."""

    task: Task
    trigger: Trigger
    attempt: int = 1
    scheduled_at: datetime | None = None
    stop: StopSignal | None = None
    check_when: bool = True
    retries: int | None = None  # None: the task's own `retries`
    # Descriptors the job inherits: the shared locks held for it (runner.locks), so that a
    # job outliving its serve keeps them until it ends. Never carried over to a retry.
    inherit_fds: tuple[int, ...] = ()

    @property
    def retry_limit(self) -> int:
        return self.task.retries if self.retries is None else self.retries


def should_retry(run: Run, retries: int) -> bool:
    """Return whether another attempt follows `run` (failed or timed out, attempts left)."""
    return run.status in RETRYABLE and run.attempt <= retries


def retry_request(request: RunRequest, attempt: int) -> RunRequest:
    return RunRequest(
        task=request.task,
        trigger=Trigger.RETRY,
        attempt=attempt,
        scheduled_at=request.scheduled_at,
        stop=request.stop,
        check_when=False,
        retries=request.retries,
    )
