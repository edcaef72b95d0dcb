"""Typed errors and their exit codes (README.md#exit-codes).

Core modules raise these; the CLI translates them once, at its edge, into one line on stderr
and the exit code carried here.
"""

from __future__ import annotations

import enum
import re


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    TIMEOUT = 124
    # `run-now`: its `when` condition said no, nothing ran. Not 3 or another small code that
    # jobs exit with (a Nagios check's UNKNOWN is 3); `git bisect run` reads 125 as "skip".
    SKIPPED = 125
    INTERRUPTED = 130
    TEMPFAIL = 75  # EX_TEMPFAIL: a lock is held (another serve, or the task file by another writer)
    CONFIG = 78  # EX_CONFIG: the task file is invalid when serve starts


def excerpt(text: str, limit: int = 60) -> str:
    """`text` as an error message quotes it: whole up to `limit` characters, else its start and
    end around an ellipsis, so that an error stays one readable line whatever the input."""
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"


class CronctlError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(CronctlError):
    """Invalid input on the command line: a bad duration, name, zone or option value."""

    exit_code = ExitCode.USAGE


class ScheduleError(UsageError, ValueError):
    """A schedule that cronctl cannot honour exactly (syntax, range, never fires)."""


class TaskFileError(UsageError):
    """The task file cannot be read or does not validate."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        task: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.task = task
        self.key = key
        self.detail = message
        super().__init__(self._compose(message), hint=hint)

    def _compose(self, message: str) -> str:
        where = ""
        if self.path:
            where = _escaped(self.path) + (f":{self.line}" if self.line else "")
        subject = []
        if self.task is not None:
            subject.append(f"task '{_escaped(self.task)}'")
        if self.key is not None:
            subject.append(f"key '{_escaped(self.key)}'")
        parts = [p for p in (where, ", ".join(subject)) if p]
        return ": ".join([*parts, message])


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escaped(name: str) -> str:
    """A name from the file (a key, a task) with control characters written as escapes: a key
    holding a newline must not split the one line of the error."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], name)


class UnknownTaskError(UsageError):
    """A task name that is not in the task file."""


class DuplicateTaskError(UsageError):
    """`add` of a name that exists, without --replace."""


class UnknownRunError(UsageError):
    """A run id that is not in the history."""


class StoreError(CronctlError):
    """The history database cannot be opened, read or written."""


# What any history backend raises (SQLite now, PostgreSQL later): the layers above the store
# catch these, never a driver's own errors.


class SlotTakenError(StoreError):
    """The (task, scheduled instant) slot already has a run: it must not run again."""


class DamagedDatabaseError(StoreError):
    """The database is not readable (corrupt, truncated, overwritten).

    `serve` moves such a file aside (`open_for_serve`); the CLI only says so.
    """


class DatabasePathError(StoreError):
    """The database path names what must never become a history: the task file, a file that
    is not SQLite (it lacks SQLite's header: text, random bytes), a folder, a FIFO or a device.
    Refused, and nothing is touched: invalid input (2) for a command."""

    exit_code = ExitCode.USAGE


class DatabasePathAtStartError(DatabasePathError):
    """The same refusal when serve starts: EX_CONFIG (78), as for an invalid task file, so
    that systemd does not restart serve over a setting only the user can fix."""

    exit_code = ExitCode.CONFIG


class DatabaseSettingError(StoreError):
    """The database setting (--db, CRONCTL_DB, `db` in [defaults]) names no history cronctl
    can open: a URL scheme it does not support, or PostgreSQL without its driver installed.
    Refused before anything is created: invalid input (2) for a command."""

    exit_code = ExitCode.USAGE


class DatabaseSettingAtStartError(DatabaseSettingError):
    """The same refusal when serve starts: EX_CONFIG (78), like DatabasePathAtStartError."""

    exit_code = ExitCode.CONFIG


class DatabaseFullError(StoreError):
    """The file system holding the database has no room left."""


class ReadOnlyDatabaseError(StoreError):
    """The database (or its folder) cannot be written."""


class DatabaseLockedError(StoreError):
    """Another connection held the write lock for longer than the busy timeout."""


class DatabaseUnavailableError(StoreError):
    """The history's server cannot be reached: refused or timed-out connection, a connection
    lost, a server shutting down or starting (PostgreSQL). Temporary: try again later."""

    exit_code = ExitCode.TEMPFAIL


class ConnectionLostError(DatabaseUnavailableError):
    """The connection to the history's server was lost during a call and a new one is open
    already: the call failed, yet the server is reachable (it restarted between two calls).
    serve does not count it as an outage (cronctl/serve/outage.py)."""


class DatabaseUnavailableAtStartError(DatabaseUnavailableError):
    """The same when serve starts: serve waits for the server (serve/daemon.py
    `open_when_reachable`); were it to escape, a general failure (1), not 75, which the
    systemd unit lists among the statuses a restart would not fix."""

    exit_code = ExitCode.FAILURE


class DatabaseAccessError(StoreError):
    """The history's server refused who we are or what we asked for: a failed authentication,
    no such user or database (PostgreSQL). A setting only the user can fix, like a --db path
    that is no history (DatabasePathError): invalid input (2) for a command."""

    exit_code = ExitCode.USAGE


class DatabaseAccessAtStartError(DatabaseAccessError):
    """The same refusal when serve starts: EX_CONFIG (78), so that systemd does not restart
    serve over a setting only the user can fix."""

    exit_code = ExitCode.CONFIG


class LockHeldError(CronctlError):
    """Another process holds a lock we need (serve.lock, tasks.toml.lock): try again later."""

    exit_code = ExitCode.TEMPFAIL


class TaskFileBusyError(LockHeldError):
    """The task file kept changing under a CLI write (an editor saving it): nothing was written."""


class TaskFileWriteError(CronctlError):
    """The task file or its lock file cannot be written (missing folder, read-only, disk full)."""
