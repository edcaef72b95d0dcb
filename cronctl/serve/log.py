"""serve's log: plain lines on stderr, journald priority prefixes under systemd.

* stderr connected to the journal (JOURNAL_STREAM matches its device and inode): one line an
  event, `<3>` error, `<4>` warning, `<6>` info, `<7>` debug; no timestamps (journald adds them);
* anything else that is not a terminal: `TIME LEVEL message` lines;
* a terminal: the CLI may pass a Rich handler (this module never imports Rich).

What the loop is doing is told by pure functions of what it hands over: `report` (the SIGUSR1
lines) of a `LoopView`, a snapshot of the loop; `status_line` (systemd's STATUS=, sent every
15 s) of each task's next slot only: for 10,000 tasks that takes about 2 ms, a full snapshot
28 ms (measured).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from cronctl import timefmt
from cronctl.clock import SYSTEM_CLOCK
from cronctl.model import Task
from cronctl.records import Run, Status

LOGGER_NAME = "cronctl.serve"
log = logging.getLogger(LOGGER_NAME)

_PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def connected_to_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Return whether `stream` is the journal stream systemd gave us (systemd.exec(5))."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return info.st_dev == int(device) and info.st_ino == int(inode)


class _LineFormatter(logging.Formatter):
    """serve's formatters: `line` makes a line's text from its level and message alone, so
    that RunLog can write its lines without a LogRecord (see `_direct`)."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.message_only = fmt in (None, "%(message)s")

    def line(self, levelno: int, message: str) -> str:
        raise NotImplementedError


class JournalFormatter(_LineFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return self._prefixed(record.levelno, super().format(record))

    def line(self, levelno: int, message: str) -> str:
        return self._prefixed(levelno, message)

    @staticmethod
    def _prefixed(levelno: int, text: str) -> str:
        priority = _PRIORITIES.get(levelno, 6 if levelno < logging.WARNING else 3)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


class PlainFormatter(_LineFormatter):
    # The time of a line, to the second, made once a second: serve writes two lines a run,
    # many runs a second; formatting a line took 3.4 µs with the local zone looked up each
    # time (`astimezone()`), 1.1 µs with this (issue 18). One tuple, replaced whole: safe to
    # share between the job threads.
    _stamp: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        return self._stamped(int(record.created), record.levelname, super().format(record))

    def line(self, levelno: int, message: str) -> str:
        second = int(SYSTEM_CLOCK.now().timestamp())
        return self._stamped(second, logging.getLevelName(levelno), message)

    def _stamped(self, second: int, levelname: str, message: str) -> str:
        stamp = self._stamp
        if stamp[0] != second:
            moment = datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")
            stamp = self._stamp = (second, moment)
        return f"{stamp[1]} {levelname.lower()} {message}"


def setup(
    stream: TextIO | None = None,
    *,
    level: int = logging.INFO,
    handler: logging.Handler | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Logger:
    """Send serve's log to `stream` (stderr) in the format its destination expects."""
    stream = sys.stderr if stream is None else stream
    if handler is None:
        handler = logging.StreamHandler(stream)
        if connected_to_journal(stream, environ):
            handler.setFormatter(JournalFormatter("%(message)s"))
        else:
            handler.setFormatter(PlainFormatter("%(message)s"))
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return log


def _duration(run: Run) -> str:
    if run.duration_ms is None:
        return ""
    seconds = run.duration_ms / 1000
    return f" in {seconds:.3f}s" if seconds < 10 else f" in {seconds:.1f}s"


def _about(run: Run) -> str:
    parts = []
    if run.trigger != "schedule":
        parts.append(f"trigger {run.trigger}")
    if run.attempt > 1:
        parts.append(f"attempt {run.attempt}")
    if run.scheduled_at is not None:
        parts.append(f"slot {run.scheduled_at.isoformat()}")
    return f" [{', '.join(parts)}]" if parts else ""


# A FileHandler opened without `delay` writes as its StreamHandler base does.
_PLAIN_HANDLERS = (logging.StreamHandler, logging.FileHandler)


def _direct(level: int) -> logging.StreamHandler[TextIO] | None:
    """The one handler a line at `level` goes to, when RunLog may write it there itself.

    Measured for issue 18 (docs/performance.md, "Serve's hot path after issue 18", round 3):
    a line through `logging` cost ~25 µs of CPU (the caller's frame looked up, a LogRecord,
    the logger's and the handler's checks), two lines a run. When serve's own setup is all
    there is (one plain StreamHandler with serve's formatter, no filters, not propagated),
    the line is formatted and written directly: the same text, to the same stream, under the
    handler's lock. Anything else (a terminal's Rich handler, caplog, a filter) gets the
    record as before.
    """
    if log.propagate or log.filters or len(log.handlers) != 1:
        return None
    handler = log.handlers[0]
    if type(handler) not in _PLAIN_HANDLERS or handler.filters:
        return None
    assert isinstance(handler, logging.StreamHandler)
    if handler.stream is None:  # a FileHandler with `delay`, not opened yet
        return None
    formatter = handler.formatter
    if not isinstance(formatter, _LineFormatter) or not formatter.message_only:
        return None
    if level < handler.level or not log.isEnabledFor(level):
        return None
    return handler


def _write(handler: logging.StreamHandler[TextIO], level: int, message: str) -> None:
    formatter = handler.formatter
    assert isinstance(formatter, _LineFormatter)
    try:
        text = formatter.line(level, message) + handler.terminator
        with handler.lock or nullcontext():
            handler.stream.write(text)
            handler.stream.flush()
    except Exception:  # as StreamHandler.emit does: said on stderr, serve goes on
        handler.handleError(log.makeRecord(log.name, level, "", 0, message, (), None))


_FINISHED = "run %s of %s %s%s%s%s%s"


class RunLog:
    """A RunEvents listener: one line when a run starts and one when it ends."""

    def run_started(self, task: Task, run: Run) -> None:
        about = _about(run)
        handler = _direct(logging.INFO)
        if handler is None:
            log.info("run %s of %s started%s", run.id, run.task, about)
        else:
            _write(handler, logging.INFO, f"run {run.id!s} of {run.task!s} started{about}")

    def run_finished(self, task: Task, run: Run, *, final: bool) -> None:
        failed = run.failed or run.status == Status.INTERRUPTED
        level = logging.WARNING if failed else logging.INFO
        parts = (
            run.id,
            run.task,
            run.status,
            _duration(run),
            _about(run),
            f": {run.reason}" if run.reason else "",
            "" if final or not run.failed else " (will retry)",
        )
        handler = _direct(level)
        if handler is None:
            log.log(level, _FINISHED, *parts)
        else:
            _write(handler, level, _FINISHED % parts)


# ------------------------------------------------------------------------------ the loop's state


@dataclass(frozen=True, slots=True)
class TaskView:
    """One task as the loop sees it."""

    task: Task
    next_slot: datetime | None
    at_reboot: bool  # an @reboot task: it has no next slot
    runs: tuple[int | None, ...] = ()  # its runs going or waiting (None: not claimed yet)
    waiting: int = 0  # of those, how many wait for a free place
    queued: bool = False  # a run waits for the running one to end (overlap queue/replace)
    backlog: int = 0  # catch-up runs still to go
    timers: tuple[tuple[str, float], ...] = ()  # (retry or start, seconds left), soonest first


@dataclass(frozen=True, slots=True)
class LoopView:
    """A snapshot of the scheduling loop: its tasks in the order they were loaded."""

    tasks: tuple[TaskView, ...]
    going: int  # runs launched and not yet ended
    waiting: int  # runs waiting for a free place
    max_parallel: int
    timers: int
    started: int  # runs launched since serve started


def report(view: LoopView, now: datetime) -> list[str]:
    """Return the loop's state as log lines (SIGUSR1): a summary, then one line per task, by
    name (its next slot, runs going with their ids, starts waiting for a free place, timers
    pending)."""
    lines = [
        f"state: {timefmt.counted(len(view.tasks), 'task')},"
        f" {timefmt.counted(view.going, 'run')} going"
        f" ({view.waiting} waiting for a free place, at most {view.max_parallel}),"
        f" {timefmt.counted(view.timers, 'timer')},"
        f" {timefmt.counted(view.started, 'run')} started since serve started"
    ]
    for task in sorted(view.tasks, key=lambda t: t.task.name):
        lines.append(f"state: task {task.task.name}: {'; '.join(_task_parts(task, now)) or 'idle'}")
    return lines


def _task_parts(view: TaskView, now: datetime) -> list[str]:
    task = view.task
    parts = []
    if not task.enabled:
        parts.append("disabled")
    elif view.next_slot is not None:
        shown = timefmt.local(view.next_slot, task.timezone).isoformat()
        parts.append(f"next {shown} ({timefmt.relative(view.next_slot, now)})")
    elif not view.at_reboot:
        parts.append("no next slot")
    if view.runs:
        ids = ", ".join(str(run_id) if run_id is not None else "starting" for run_id in view.runs)
        parts.append(f"running: run {ids}")
    if view.waiting:
        parts.append(f"{view.waiting} waiting to start")
    if view.queued:
        parts.append("1 queued behind the running one")
    if view.backlog:
        parts.append(f"{view.backlog} catch-up runs to go")
    parts.extend(f"{kind} in {timefmt.span(max(0.0, left))}" for kind, left in view.timers)
    return parts


def status_line(tasks: Iterable[tuple[Task, datetime | None]], running: int) -> str:
    """Return the one-line status systemd shows: tasks, runs, the next task due.

    `tasks`: each task with its next slot, in the loop's order (the first of equal slots is
    named); `running`: the runs going or waiting for a place, of every task (removed ones too).
    """
    enabled = 0
    first: tuple[datetime, Task] | None = None
    for task, next_slot in tasks:
        enabled += task.enabled
        if next_slot is not None and (first is None or next_slot < first[0]):
            first = (next_slot, task)
    text = f"{timefmt.counted(enabled, 'task')}, {running} running"
    if first is not None:
        slot, task = first
        at = slot.astimezone(task.parsed_zone).isoformat(timespec="seconds")
        text += f"; next: {task.name} at {at}"
    return text
