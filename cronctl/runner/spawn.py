"""The plain spawn: `os.posix_spawn` for a job that needs nothing `subprocess.Popen` adds.

Measured for issue 18, round 4 (docs/performance.md, "Round 4: one supervising thread"):
`Popen` as serve's spawn called it took 63–77 µs of the parent's CPU a spawn (its
argument checks, `_posixsubprocess`, the error pipe it reads after the exec), `os.posix_spawn`
31 µs, with the same wall time (the parent waits for the child's exec either way: glibc's
`posix_spawn` and CPython's `vfork` are the same `CLONE_VFORK`). serve's claimer spawns every
job one after the other, so the CPU is the claimer's, a run.

A job takes this way when its working folder is this process's own (`posix_spawn` cannot
change it; a task runs in the home folder unless it says otherwise, and serve under
`systemd --user` runs there too), it has no `nice` or `limits` (they need code between fork
and exec), inherits no descriptors (`pass_fds`: the shared locks) and its shell is a path
(`posix_spawn` does not search PATH in the job's environment as `Popen` does); the others go
through `Popen` as before. `Popen`'s `close_fds` closes every descriptor the job would
otherwise inherit; `posix_spawn` closes only those marked close-on-exec, which every descriptor
Python and SQLite open are: the descriptors this process inherited without it are marked
close-on-exec once, before the first such spawn (`_no_inherited_descriptors`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import IO, Protocol

PLAIN_SPAWN = hasattr(os, "posix_spawn") and sys.platform.startswith("linux")
"""Whether this platform has the plain spawn (elsewhere every job goes through `Popen`)."""


RESTORED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)


class JobProcess(Protocol):
    """A running job's process, as a `Supervision` watches it: a `subprocess.Popen` or a
    `SpawnedJob`."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


_swept = threading.Lock()
_swept_done = False


class SpawnedJob:
    """The part of `subprocess.Popen` a `Supervision` uses, for a job `posix_spawned`."""

    __slots__ = ("pid", "returncode", "stderr", "stdout")

    def __init__(self, pid: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr

    def poll(self) -> int | None:
        """The exit status once the job has exited (reaped then), else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): as Popen, 0
                self.returncode = 0
                return 0
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        """Wait for the job's exit and return its status (negative: the signal)."""
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.returncode = 0
            else:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def takes_plain_spawn(cwd: str | None, shell: str) -> bool:
    """Whether a job of `shell` to run in `cwd` (None: here) can take the plain spawn: the
    shell is a path, and `cwd` is this process's working folder already (compared as given: a
    path that differs only by a link takes `Popen`)."""
    if os.sep not in shell:
        return False
    if cwd is None:
        return True
    try:
        return cwd == os.getcwd()
    except OSError:  # our own folder was removed: Popen then says what it says
        return False


def posix_spawned(shell: str, command: str, env: Mapping[str, str]) -> SpawnedJob:
    """Start `shell -c command` in a new process group, stdin from /dev/null, stdout and
    stderr on pipes. Raises OSError (its `filename` the shell) when it cannot start."""
    if not _swept_done:
        _no_inherited_descriptors()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        pid = os.posix_spawn(
            shell,
            [shell, "-c", command],
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
            ],
            setpgroup=0,
            # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
            # exec: `yes | head -1` in a job would print "Broken pipe" instead of ending
            # quietly. Popen's restore_signals puts these back to their default; so do we.
            setsigdef=RESTORED_SIGNALS,
        )
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    return SpawnedJob(pid, os.fdopen(out_read, "rb", buffering=0), os.fdopen(err_read, "rb", 0))


def _no_inherited_descriptors() -> None:
    """Mark close-on-exec every descriptor above stderr that is not (inherited from whoever
    started this process), as `Popen(close_fds=True)` keeps them from every job."""
    global _swept_done
    with _swept:
        if _swept_done:
            return
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            names = [str(fd) for fd in range(3, 1024)]
        for name in names:
            fd = int(name)
            if fd <= 2:
                continue
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                continue  # closed meanwhile (the listing's own descriptor among them)
        _swept_done = True
