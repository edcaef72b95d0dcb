"""Run records: statuses, triggers, one run as data, and the figures read about runs.

These are what a history backend (`cronctl.history`) returns; nothing here needs a database.
Times in records are aware datetimes; the history keeps them to the millisecond
(`to_millisecond`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


class Status(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    KILLED = "killed"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"
    SKIPPED = "skipped"
    MISSED = "missed"
    ERROR = "error"


class Trigger(enum.StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    CATCH_UP = "catch-up"
    AFTER = "after"
    REBOOT = "reboot"


# Outcomes that count as a failure for `--failed`, `status` and the failure notification.
FAILURE_STATUSES = (
    Status.FAILED,
    Status.TIMED_OUT,
    Status.KILLED,
    Status.ABANDONED,
    Status.ERROR,
)
# Outcomes of a run that actually ran to an end (used for success rates and durations).
FINISHED_STATUSES = (Status.SUCCEEDED, *FAILURE_STATUSES, Status.INTERRUPTED)
# Triggers that own a slot: at most one first attempt per (task, scheduled instant).
SLOT_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)


def to_millisecond(moment: datetime) -> datetime:
    """`moment` rounded to the millisecond, the resolution at which the history keeps times:
    a recorded time compares with it as the history's own `since` filter does."""
    return datetime.fromtimestamp(round(moment.timestamp() * 1000) / 1000, tz=moment.tzinfo)


@dataclass(frozen=True)
class Output:
    """One captured stream: what was kept (head, marker, tail), and how much was printed."""

    data: bytes
    total_bytes: int
    dropped_bytes: int = 0


@dataclass(frozen=True)
class Run:
    id: int
    task: str
    trigger: Trigger
    attempt: int
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    status: Status
    exit_code: int | None
    signal: int | None
    pid: int | None
    reason: str | None
    notify_error: str | None = None
    stdout: Output | None = None
    stderr: Output | None = None
    # The host that ran it (CRONCTL_HOST, else the hostname: README.md#more-than-one-machine);
    # None for a run recorded before schema 8.
    host: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILURE_STATUSES


# How long the other serves of a shared history wait for a serve's heartbeat before they
# declare it dead (`serve --lease`, README.md#more-than-one-machine).
DEFAULT_LEASE = 30.0
MIN_LEASE = 1.0
MAX_LEASE = 86400.0  # a day: a host silent for longer is not coming back


@dataclass(frozen=True)
class ServeState:
    pid: int
    hostname: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    # When serve last put a valid task file in force: at start, then at each reload. None in
    # a row written by a cronctl from before it was recorded.
    tasks_loaded_at: datetime | None = None
    # How long the others wait for its heartbeat before they declare it dead (its own
    # `serve --lease`), and when and by which host that was done (None: it was not).
    lease_seconds: float | None = None
    declared_dead_at: datetime | None = None
    declared_dead_by: str | None = None


@dataclass(frozen=True)
class RunningElsewhere:
    """A claim left to another host (README.md#several-serves-one-history): a run of the task
    goes on `host`, and the task's `overlap` is `queue` or `replace`, which that host applies
    to the slot itself. Nothing was written; the claimer tries again until no run of the
    task goes on anywhere."""

    host: str


@dataclass(frozen=True)
class DeclaredDead:
    """A serve this host's heartbeat declared dead (its lease ran out and it had not stopped
    cleanly), with its runs it recorded `abandoned`."""

    host: str
    heartbeat_at: datetime
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class Heartbeat:
    """What a heartbeat found: whether another host had declared this one dead meanwhile
    (when and who: its heartbeat puts it back in the fleet), and the serves it declared dead."""

    declared_dead_at: datetime | None = None
    declared_dead_by: str | None = None
    declared: tuple[DeclaredDead, ...] = ()


@dataclass(frozen=True)
class Ack:
    """`cronctl ack`: the failures of `task` that ended at or before `at` are seen (README.md,
    "Acknowledging failures"); `by` is who said so ($USER), `note` what they wrote."""

    task: str
    at: datetime
    by: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Rename:
    """One `cronctl rename` in the store's journal: `outcome` is None while it is open (the
    task file may or may not have been replaced yet), "renamed" or "dropped" once settled."""

    id: int
    old: str
    new: str
    outcome: str | None
    runs: int | None = None


@dataclass(frozen=True)
class TaskDefinition:
    """What `host`'s serve runs as `task`, as digests (cronctl/model/digest.py): the digest of
    its definition, and of each of its keys that differs from the key's default (a key not
    here is at its default); `seen_at` is when that serve first loaded this definition."""

    host: str
    task: str
    digest: str
    keys: Mapping[str, str]
    seen_at: datetime


# How the reason of a run its `when` condition kept from starting begins: the runner writes it,
# and the store folds consecutive ones into one row by it (cronctl/store/skips.py).
CONDITION_SKIP_PREFIX = "the when condition "


@dataclass(frozen=True)
class TaskStats:
    task: str
    last: Run | None
    recent: tuple[Status, ...]  # statuses of the last runs, newest first
    success_rate: float | None  # over the finished runs among the last 50
    p50_ms: int | None
    p95_ms: int | None


# Captured output is kept raw; this is how every reader shows it (history, logs, JSON, mail).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(data: bytes) -> str:
    """Decode `data` for display: invalid UTF-8 as \\xNN, control characters escaped.

    ESC (and so every terminal escape sequence), CR, backspace, NUL, C1 controls and bidi
    overrides come out as visible escapes; newline and tab are kept. The result holds no
    surrogates, so it is always valid in UTF-8 JSON.
    """
    text = data.decode("utf-8", "backslashreplace")
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)
