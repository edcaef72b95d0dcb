"""What serve's claimer does for a batch of runs ahead of their threads, as the Executor sees it:
the stores that claim runs and record pids of a batch in one transaction, and a run's job spawned
ahead of the thread that watches it (docs/performance.md, "Serve's hot path after issue 18")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from cronctl.records import Output, Run, RunningElsewhere, Status, Trigger
from cronctl.runner.process import ProcessOutcome, StartedJob, Supervision, supervised
from cronctl.spool import SpoolWriter


@runtime_checkable
class BatchClaims(Protocol):
    """A RunRecorder that claims several runs in one transaction (serve's SerialStore)."""

    def start_runs(
        self, claims: Sequence[tuple[str, Trigger, int, datetime | None]], *, started_at: datetime
    ) -> Sequence[int | RunningElsewhere | None]: ...


@runtime_checkable
class BatchPids(Protocol):
    """A RunRecorder that records the pids of several runs in one transaction (serve's
    SerialStore); never raises for a pid it cannot record (a pid is a detail of the run)."""

    def set_pids(self, pids: Sequence[tuple[int, int]]) -> None: ...


class Finish(NamedTuple):
    """One end to record, as `RunRecorder.finish_run` takes it."""

    run_id: int
    status: Status
    finished_at: datetime
    duration_ms: int | None
    exit_code: int | None
    signal: int | None
    reason: str | None
    stdout: Output | None
    stderr: Output | None
    started_at: datetime | None


@runtime_checkable
class BatchFinish(Protocol):
    """A RunRecorder that records several ends in one transaction (serve's SerialStore, for
    the ends its finisher thread takes together): each finished run, or the error that
    stopped its end from being recorded."""

    def finish_runs(self, ends: Sequence[Finish]) -> list[Run | Exception]: ...


Prepared = tuple[dict[str, str], SpoolWriter | None]
"""A claimed run's environment and spool, made before its job is spawned."""


class Spawned(NamedTuple):
    """A run's job spawned ahead of its watch (`Executor.start_prepared`); `early()` builds the
    watch, which serve's claimer does after the last spawn of its batch."""

    env: dict[str, str]
    spool: SpoolWriter | None
    job: StartedJob | ProcessOutcome

    def early(self) -> EarlyStart:
        return EarlyStart(self.env, self.spool, supervised(self.job))


@dataclass
class EarlyStart:
    """A run's job spawned ahead of the thread that watches it (serve's claimer spawns in slot
    order right after the claim's commit; docs/performance.md, "Serve's hot path after issue
    18"): what `Executor.execute` would have prepared, and the process or why it did not start."""

    env: dict[str, str]
    spool: SpoolWriter | None
    job: Supervision | ProcessOutcome
    pid_recorded: bool = False
    """The pid is in the run's row already (`Executor.record_pids`): its thread does not
    write it again."""

    def kill(self) -> None:
        """The run will not be watched after all: leave no process and no spool behind."""
        if isinstance(self.job, Supervision):
            self.job.kill()
        if self.spool is not None:
            self.spool.close()
