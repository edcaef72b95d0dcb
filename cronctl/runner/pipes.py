"""The output pipes of a running job and the notice of its exit, read with one selector.

Both pipes feed a bounded capture (capture.BoundedCapture) and the optional `on_output`
callback as data comes. On Linux a pidfd in the same selector tells when the job exits while
its pipes are still open; elsewhere (macOS, old kernels, no descriptor left) the caller polls
for the exit instead.
"""

from __future__ import annotations

import math
import os
import select
import sys
from collections.abc import Callable
from typing import IO, NamedTuple, Protocol

from cronctl.runner.capture import BoundedCapture, CapturedOutput
from cronctl.runner.spawn import JobProcess

READ_CHUNK = 64 * 1024

_HAS_PIDFD = hasattr(os, "pidfd_open") and sys.platform.startswith("linux")


class Watcher(Protocol):
    """What watches a job's descriptors: its own poll, or serve's supervising thread's epoll
    (runner/supervisor.py)."""

    def register(self, fd: int) -> None: ...

    def unregister(self, fd: int) -> None: ...

    def close(self) -> None: ...


class _Poller:
    """poll(2) on a job's few descriptors: no descriptor of its own (epoll and kqueue need
    one), no FD_SETSIZE limit. `select.poll` directly, not `selectors.PollSelector`: the
    selector's keys and maps cost ~10 µs of CPU a run for three descriptors (issue 18,
    round 3); select(2) where there is no poll."""

    __slots__ = ("_fds", "_poll")

    def __init__(self) -> None:
        self._poll = select.poll() if hasattr(select, "poll") else None
        self._fds: set[int] = set()

    def register(self, fd: int) -> None:
        if self._poll is not None:
            self._poll.register(fd, select.POLLIN)
        self._fds.add(fd)

    def unregister(self, fd: int) -> None:
        """Stop watching `fd` (nothing when it is not watched)."""
        if fd in self._fds:
            self._fds.discard(fd)
            if self._poll is not None:
                self._poll.unregister(fd)

    def ready(self, wait: float | None) -> list[int]:
        """The descriptors readable (or at their end, or in error) within `wait` seconds."""
        if self._poll is None:
            return select.select(list(self._fds), [], [], wait)[0]
        timeout = None if wait is None else max(0, math.ceil(wait * 1000))
        while True:
            try:
                return [fd for fd, _events in self._poll.poll(timeout)]
            except InterruptedError:  # pragma: no cover - PEP 475 retries poll itself
                continue

    def close(self) -> None:
        for fd in list(self._fds):
            self.unregister(fd)


class _Stream(NamedTuple):
    name: str
    """"stdout" or "stderr", as `on_output` receives it."""
    file: IO[bytes]
    capture: BoundedCapture


class JobPipes:
    """stdout, stderr and (on Linux) the pidfd of one job; used by one thread, for one run.

    Costs no descriptor of its own: the selector is poll(2) based.
    """

    __slots__ = ("_captures", "_on_output", "_selector", "_streams", "pidfd")

    def __init__(
        self,
        head_bytes: int,
        tail_bytes: int,
        on_output: Callable[[str, bytes], None] | None,
    ) -> None:
        self._captures = {
            "stdout": BoundedCapture(head_bytes, tail_bytes),
            "stderr": BoundedCapture(head_bytes, tail_bytes),
        }
        self._on_output = on_output
        self._streams: dict[int, _Stream] = {}
        self._selector: Watcher = _Poller()
        self.pidfd: int | None = None
        """The job's pidfd while we watch for its exit with one; None: poll for the exit."""

    def watch(self, proc: JobProcess, watcher: Watcher | None = None) -> None:
        """Start reading the job's pipes, and watching its exit with a pidfd where there is one;
        with `watcher` (serve's supervising thread), `handle` is called for each ready one
        instead of `pump`."""
        assert proc.stdout is not None and proc.stderr is not None
        if watcher is not None:
            self._selector = watcher
        for name, file in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            fd = file.fileno()
            self._streams[fd] = _Stream(name, file, self._captures[name])
            self._selector.register(fd)
        if _HAS_PIDFD:
            try:
                self.pidfd = os.pidfd_open(proc.pid)
            except OSError:
                return  # no pidfd (EMFILE, old kernel): the caller polls for the exit instead
            self._selector.register(self.pidfd)

    @property
    def open(self) -> bool:
        """True while a pipe has not reached its end (or been closed)."""
        return bool(self._streams)

    def pump(self, wait: float | None) -> bool:
        """Block up to `wait` seconds (None: until something happens), then read what came.

        Returns True when the job may have exited: its pidfd is readable, or there is no pidfd
        to tell (the caller then checks with waitpid).
        """
        exit_seen = self.pidfd is None
        assert isinstance(self._selector, _Poller)
        for fd in self._selector.ready(wait):
            if fd == self.pidfd:
                exit_seen = True  # the caller reaps, after these reads
                continue
            self._read(fd)
        return exit_seen

    def handle(self, fd: int) -> bool:
        """`fd` is ready: read one chunk of it (at most READ_CHUNK, so that one job printing
        fast does not hold up the others a shared watcher serves); True when it is the pidfd
        (the job exited: the caller reaps)."""
        if fd == self.pidfd:
            return True
        if fd in self._streams:
            self._read(fd)
        return False

    def _read(self, fd: int) -> None:
        stream = self._streams[fd]
        chunk = os.read(fd, READ_CHUNK)
        if chunk:
            stream.capture.feed(chunk)
            if self._on_output is not None:
                self._on_output(stream.name, chunk)
        else:
            self._selector.unregister(fd)
            stream.file.close()
            del self._streams[fd]

    def stop_watching_exit(self) -> None:
        """Close the pidfd once the job is reaped (safe to call more than once)."""
        if self.pidfd is not None:
            self._selector.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def close_streams(self) -> None:
        """Stop reading: close both pipes, whether or not their writers are done."""
        for fd, stream in list(self._streams.items()):
            self._selector.unregister(fd)
            stream.file.close()
            del self._streams[fd]

    def close(self) -> None:
        """Release every descriptor (safe to call after any of the above, and more than once)."""
        self.close_streams()
        self.stop_watching_exit()
        self._selector.close()

    def output(self) -> tuple[CapturedOutput, CapturedOutput]:
        """What was kept of stdout and stderr."""
        return self._captures["stdout"].result(), self._captures["stderr"].result()
