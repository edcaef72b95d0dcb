"""One serve per database: an advisory lock on `serve.lock` in the state folder.

flock(2) instead of a pid file: the kernel drops the lock when the holder dies, even on
SIGKILL, so a stale file never blocks a restart and a reused pid never fools us. The pid we
write into the file is only for the "already running (pid N)" message. The descriptor is not
inheritable (PEP 446 default), so a job that daemonises cannot keep the lock alive.

The file is opened without following a symbolic link and must be a regular file: serve writes
its pid into it and empties it on exit, which through a planted link would clobber another
file (docs/reliability.md, h10).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from cronctl.errors import LockHeldError, StoreError
from cronctl.locations import ensure_private_dir


class ServeLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeldError naming the holder's pid."""
        try:
            ensure_private_dir(self.path.parent)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _not_ours(self.path, "a symbolic link") from None
            raise StoreError(f"cannot open the serve lock {self.path}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _not_ours(self.path, "not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "pid unknown"
            raise LockHeldError(
                f"cronctl serve is already running ({who})",
                hint=f"one serve per database; the lock is {self.path}",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from None
        try:  # the pid is only for the "already running" message: a full disk must not stop us
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> ServeLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _not_ours(path: Path, what: str) -> StoreError:
    return StoreError(
        f"the serve lock {path} is {what}; cronctl writes only files of its own there",
        hint="remove it (serve creates a new one), or choose another place with --db",
    )


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
