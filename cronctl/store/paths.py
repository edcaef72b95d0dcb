"""Which paths may become the history, judged before SQLite opens them: never the task file,
a folder, a FIFO or a device (`check_database_path`); a file SQLite cannot read is refused
unless it has SQLite's header (`not_sqlite_error`). Used by `store/database.py`."""

from __future__ import annotations

import os
import stat

from cronctl.errors import DatabasePathError

SQLITE_HEADER = b"SQLite format 3\x00"

_PATH_HINT = "give --db (or CRONCTL_DB) the path of a history database; nothing was changed"


def check_database_path(
    path: str | os.PathLike[str], *, tasks_file: str | os.PathLike[str] | None = None
) -> None:
    """Raise DatabasePathError when `path` must never be opened as the history: it is the
    task file (compared after resolving links, and as the same inode for hard links), or it
    exists and is not a regular file (a folder, a FIFO, a device).

    Only the path is looked at (`stat`): nothing is opened, so a FIFO never blocks and no
    SQLite lock of this process on the file is dropped (closing any descriptor of a file
    releases the process's POSIX locks on it). The content is judged when SQLite cannot read
    the file (`not_sqlite_error`). Before: `--db tasks.toml serve` moved the task file aside
    as "damaged" and created a database in its place.
    """
    text = os.fspath(path)
    if tasks_file is not None and _same_file(text, os.fspath(tasks_file)):
        raise DatabasePathError(
            f"the history database {text} is the task file; they must be two files",
            hint=_PATH_HINT,
        )
    try:
        found = os.stat(text)
    except OSError:
        return  # missing (it is created), or unreadable: opening it says why
    if not stat.S_ISREG(found.st_mode):
        raise DatabasePathError(
            f"the history database {text} is {_kind_of(found.st_mode)}, not a file",
            hint=_PATH_HINT,
        )


def not_sqlite_error(path: str | os.PathLike[str]) -> DatabasePathError | None:
    """Return the refusal of a regular file that is neither empty nor starts with SQLite's
    header (text, random bytes), else None: only such a file may be called damaged.

    Reads the first 16 bytes. Call it only when no SQLite connection of this process has the
    file open (after opening it failed, or before moving it aside): closing the descriptor
    drops every POSIX lock the process holds on the file, SQLite's included."""
    text = os.fspath(path)
    try:
        with open(text, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError:
        return None
    if head in (b"", SQLITE_HEADER):
        return None
    return DatabasePathError(
        f"{text} is not a cronctl history database, nor any SQLite file (it does not"
        " start with SQLite's header)",
        hint=_PATH_HINT,
    )


def _same_file(first: str, second: str) -> bool:
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samestat(os.stat(first), os.stat(second))
    except OSError:
        return False


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
