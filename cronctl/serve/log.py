"""serve's log: plain lines on stderr, journald priority prefixes under systemd.

* stderr connected to the journal (JOURNAL_STREAM matches its device and inode): one line an
  event, `<3>` error, `<4>` warning, `<6>` info, `<7>` debug; no timestamps (journald adds them);
* anything else that is not a terminal: `TIME LEVEL message` lines;
* a terminal: the CLI may pass a Rich handler (this module never imports Rich).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import TextIO

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


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITIES.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")
        return f"{moment} {record.levelname.lower()} {super().format(record)}"


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


class RunLog:
    """A RunEvents listener: one line when a run starts and one when it ends."""

    def run_started(self, task: Task, run: Run) -> None:
        log.info("run %s of %s started%s", run.id, run.task, _about(run))

    def run_finished(self, task: Task, run: Run, *, final: bool) -> None:
        failed = run.failed or run.status == Status.INTERRUPTED
        level = logging.WARNING if failed else logging.INFO
        detail = f": {run.reason}" if run.reason else ""
        more = "" if final or not run.failed else " (will retry)"
        log.log(
            level,
            "run %s of %s %s%s%s%s%s",
            run.id,
            run.task,
            run.status,
            _duration(run),
            _about(run),
            detail,
            more,
        )
