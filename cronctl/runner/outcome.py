"""How one attempt of a job ended (`ProcessOutcome`), and the notes an outcome can carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cronctl.clock import Clock
from cronctl.runner.capture import EMPTY_OUTPUT, CapturedOutput

NOTE_LEFTOVER = "output pipe held by a background process; its process group was stopped"
NOTE_LEFTOVER_OUTSIDE = (
    "output pipe held by a process outside the job's process group; it was left running"
)
NOTE_SURVIVORS = "processes of the job's process group survived SIGKILL"
NOTE_STOPPED_EARLY = "stopped before it started"


@dataclass(frozen=True)
class ProcessOutcome:
    """How one attempt of a job ended; never carries a traceback."""

    pid: int | None
    exit_code: int | None
    """The exit status when the job exited by itself (None if it was killed or never started)."""
    signal: int | None
    """The signal number when the job was killed by a signal."""
    timed_out: bool
    stopped: bool
    """Stopped because the caller set `stop` (serve shutdown, overlap=replace, Ctrl-C)."""
    start_error: str | None
    """Why the job could not be started (missing working folder, shell, EMFILE...)."""
    stdout: CapturedOutput
    stderr: CapturedOutput
    started_at: datetime
    finished_at: datetime
    duration: float
    note: str | None
    limit_reached: str | None = None
    """The group-wide limit the job went over, whereupon it was killed ("memory limit 1G
    reached"; runner.limits)."""


def outcome_without_process(
    clock: Clock,
    *,
    start_error: str | None,
    stopped: bool = False,
    note: str | None = None,
    started_at: datetime | None = None,
    t0: float | None = None,
) -> ProcessOutcome:
    """The outcome of an attempt that started no process (stopped early, or could not start)."""
    finished_at = clock.now()
    return ProcessOutcome(
        pid=None,
        exit_code=None,
        signal=None,
        timed_out=False,
        stopped=stopped,
        start_error=start_error,
        stdout=EMPTY_OUTPUT,
        stderr=EMPTY_OUTPUT,
        started_at=started_at or finished_at,
        finished_at=finished_at,
        duration=0.0 if t0 is None else max(0.0, clock.monotonic() - t0),
        note=note,
    )
