"""Following a run's output as it comes: the loop of `cronctl logs --follow` (README.md#runs).

The output of a running run is read from its spool (cronctl/spool.py) every POLL seconds; the
run's row is read every STATUS_EVERY seconds, and at once when the spool's writer lets go of
it, to notice the end. A run that has ended gives its stored output at once.

A row can say `running` with nobody left to finish it: the serve (or `run-now`) that ran it was
killed. Following such a run ends instead of waiting for ever, as `orphaned`, when the spool's
writer is gone while the row still says `running`, or when the job's process group has been gone
for ORPHAN_GRACE seconds (a finished job's row is written within milliseconds, so seconds of
this mean nobody will), or when no job was ever recorded for it within START_GRACE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cronctl.clock import Clock
from cronctl.records import Run, Status
from cronctl.runner.execute import WHEN_TIMEOUT
from cronctl.runner.groups import group_alive
from cronctl.spool import STDERR, STDOUT, Chunk, SpoolReader

POLL = 0.1
"""Seconds between two reads of the spool: the latency from a job's write to the screen is at
most this plus the time to print (measured in docs/performance.md)."""
STATUS_EVERY = 0.5
"""Seconds between two reads of the run's row while its spool has a live writer."""
ORPHAN_GRACE = 5.0
"""Seconds the job's process group must stay gone, its row still `running`, before following
gives up on a recorder that is gone."""
START_GRACE = WHEN_TIMEOUT + 10.0
"""Seconds a `running` row may go without a job's pid (its `when` condition runs meanwhile)."""
WAIT_POLL = 0.25
"""Seconds between two looks for a task's next run (`--last --follow --wait`)."""

Emit = Callable[[Chunk], None]


class RunSource(Protocol):
    """The history as following reads it (a RunReader)."""

    def get_run(self, run_id: int) -> Run: ...

    def last_run(self, task: str) -> Run | None: ...


@dataclass(frozen=True)
class Followed:
    """How following ended: the run as last read; `orphaned` when its row still says
    `running` but whoever ran it is gone."""

    run: Run
    orphaned: bool = False


def stored_output(run: Run) -> list[Chunk]:
    """The recorded output of an ended run, as chunks: stdout, then stderr."""
    return [
        Chunk(name, stream.data)
        for name, stream in ((STDOUT, run.stdout), (STDERR, run.stderr))
        if stream is not None and stream.data
    ]


def follow_run(
    source: RunSource, state_dir: Path, run_id: int, *, clock: Clock, emit: Emit
) -> Followed:
    """Emit the run's output so far and then as it comes, until the run ends."""
    run = source.get_run(run_id)
    if run.status != Status.RUNNING:
        for chunk in stored_output(run):
            emit(chunk)
        return Followed(run)
    reader = SpoolReader(state_dir, run_id)
    try:
        return _Follower(source, reader, run, clock, emit).loop()
    finally:
        reader.close()


def wait_for_next_run(source: RunSource, task: str, after_id: int | None, *, clock: Clock) -> int:
    """Wait until `task` has a run newer than `after_id` (None: any run); return its id."""
    while True:
        run = source.last_run(task)
        if run is not None and (after_id is None or run.id > after_id):
            return run.id
        clock.sleep(WAIT_POLL)


class _Follower:
    def __init__(
        self, source: RunSource, reader: SpoolReader, run: Run, clock: Clock, emit: Emit
    ) -> None:
        self.source = source
        self.reader = reader
        self.run = run
        self.clock = clock
        self.emit = emit
        self.group_gone_since: float | None = None

    def loop(self) -> Followed:
        next_check = self.clock.monotonic()
        while True:
            self._pass_on()
            now = self.clock.monotonic()
            # Asked before the row is read: a writer that let go after recording the end
            # leaves a finished row; one that let go with the row `running` is gone.
            writer_gone = self.reader.writer_gone()
            if writer_gone or now >= next_check:
                next_check = now + STATUS_EVERY
                self.run = self.source.get_run(self.run.id)
                if self.run.status != Status.RUNNING:
                    return self._ended()
                if writer_gone or self._recorder_gone(now):
                    self._pass_on()
                    return Followed(self.run, orphaned=True)
            self.clock.sleep(POLL)

    def _pass_on(self) -> None:
        for chunk in self.reader.read():
            self.emit(chunk)

    def _ended(self) -> Followed:
        self._pass_on()  # what the writer wrote last, read from the segments still open
        if not self.reader.seen:
            # The spool came and went between two looks (or there never was one): the stored
            # output is all of it.
            for chunk in stored_output(self.run):
                self.emit(chunk)
            return Followed(self.run)
        # Segments the writer made and removed after the last look are gone with the spool:
        # say how much, as a drop marker (`logs RUN_ID` prints the stored tail).
        total = sum(s.total_bytes for s in (self.run.stdout, self.run.stderr) if s is not None)
        if total > self.reader.offset:
            self.emit(Chunk(None, b"", total - self.reader.offset))
        return Followed(self.run)

    def _recorder_gone(self, now: float) -> bool:
        run = self.run
        if run.pid is None:
            started = run.started_at
            return started is not None and (
                (self.clock.now() - started).total_seconds() > START_GRACE
            )
        if group_alive(run.pid):
            self.group_gone_since = None
            return False
        if self.group_gone_since is None:
            self.group_gone_since = now
        return now - self.group_gone_since >= ORPHAN_GRACE
