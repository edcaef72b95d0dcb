"""Start one job, capture its output, enforce its timeout, and clean up its process group.

The runner package is the only part of cronctl that starts processes: this module starts jobs,
`when` conditions, notify commands and sendmail; `tools` runs systemctl and its kin, `editor`
the user's editor. One call of `run_process` uses the calling thread only (serve runs many at
once, one thread each), keeps no global state, and costs three file descriptors while it runs:
the two output pipes and, on Linux, a pidfd.

Lifecycle of a run:

* spawn `[shell, "-c", command]` in a new process group (the job's pid is its pgid), stdin from
  /dev/null, stdout and stderr on separate pipes;
* read both pipes as data comes (`selectors`, poll(2) based so it needs no fd of its own), feeding
  a bounded capture and the optional `on_output` callback; notice the job's exit while the pipes
  are still open (pidfd on Linux, a 50 ms poll elsewhere);
* on timeout or `stop`: SIGTERM (and SIGCONT) to the whole group, keep reading, SIGKILL to the
  group `kill_grace` seconds later if any member is left;
* after the job has exited, drain the pipes for at most LEFTOVER_DRAIN seconds: a background
  process still holding them (`sleep 30 & echo started`) does not hang the run; its group is
  stopped and the outcome carries a note.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.runner.capture import (
    DEFAULT_HEAD_BYTES,
    DEFAULT_TAIL_BYTES,
    EMPTY_OUTPUT,
    BoundedCapture,
    CapturedOutput,
)

READ_CHUNK = 64 * 1024
LEFTOVER_DRAIN = 0.5
"""Seconds we keep reading after the job exited before treating the pipes as held."""
LEFTOVER_TERM_GRACE = 0.2
"""Seconds a leftover background group gets between SIGTERM and SIGKILL (capped by kill_grace)."""
EXIT_POLL = 0.05
"""Seconds between checks of the job's exit where there is no pidfd (macOS, old kernels)."""
STOP_POLL = 0.1
"""Seconds between checks of the caller's `stop` event."""
GROUP_POLL = 0.05
"""Seconds between checks that a terminated group is empty."""
REAP_WAIT = 1.0
"""Seconds we wait after SIGKILL for the group's members to be gone."""

NOTE_LEFTOVER = "output pipe held by a background process; its process group was stopped"
NOTE_LEFTOVER_OUTSIDE = (
    "output pipe held by a process outside the job's process group; it was left running"
)
NOTE_SURVIVORS = "processes of the job's process group survived SIGKILL"
NOTE_STOPPED_EARLY = "stopped before it started"

_HAS_PIDFD = hasattr(os, "pidfd_open") and sys.platform.startswith("linux")


@dataclass(frozen=True)
class ProcessOutcome:
    """How one attempt of a job ended; never carries a traceback."""

    pid: int | None
    exit_code: int | None
    """The exit status when the job exited by itself (None if it was killed or never started)."""
    signal: int | None
    """The signal number when the job was killed by a signal."""
    timed_out: bool
    stopped: bool
    """Stopped because the caller set `stop` (serve shutdown, overlap=replace, Ctrl-C)."""
    start_error: str | None
    """Why the job could not be started (missing working folder, shell, EMFILE...)."""
    stdout: CapturedOutput
    stderr: CapturedOutput
    started_at: datetime
    finished_at: datetime
    duration: float
    note: str | None


# --------------------------------------------------------------------------- process groups


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # A member we may not signal (setuid): the group exists, nothing more we can do.
        return True
    return True


def _proc_is_ours() -> bool:
    """True when /proc shows this process's pid namespace (so a scan of it can be trusted)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            return int(f.read().split(b" ", 1)[0]) == os.getpid()
    except (OSError, ValueError):
        return False


_PROC_USABLE: bool | None = None  # computed once; the answer cannot change while we run
_DEAD_STATES = (b"Z", b"X")  # zombie or dead: gone but for the reaping


def _group_members(pgid: int) -> Iterator[tuple[str, bytes]]:
    """Yield (pid, state) of each process of group `pgid` that /proc shows.

    A process that vanishes or cannot be read during the scan is left out; without /proc,
    nothing is yielded. The state is /proc's one letter (see _DEAD_STATES).
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                line = f.read()
            # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
            fields = line[line.rfind(b")") + 2 :].split(b" ", 3)
            if len(fields) < 3 or int(fields[2]) != pgid:
                continue
        except (OSError, ValueError):
            continue
        yield name, fields[0]


def _members_state(pgid: int) -> tuple[bool, bool]:
    """Scan /proc for the group: (found any member, found a member that is not a zombie)."""
    found = False
    for _pid, state in _group_members(pgid):
        if state not in _DEAD_STATES:
            return True, True
        found = True
    return found, False


def group_alive(pgid: int) -> bool:
    """True while the group has a member that is not merely a zombie waiting to be reaped.

    os.killpg(pgid, 0) alone counts zombies, and orphaned zombies last as long as PID 1 takes to
    reap them (seconds in some containers). On Linux a scan of /proc tells zombies apart; when
    the scan cannot be trusted or finds nothing, the answer errs towards "alive".
    """
    global _PROC_USABLE
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _PROC_USABLE is None:
        _PROC_USABLE = _proc_is_ours()
    if not _PROC_USABLE:
        return True
    found, live = _members_state(pgid)
    return live or not found


def group_runs_job(pgid: int, run_id: int) -> bool:
    """True when process group `pgid` has a live member started for run `run_id`.

    A job's processes carry CRONCTL_RUN_ID in their environment (execute.job_environment), and
    the job's pid is its group's id. Both together identify the job of a run whose serve died,
    so a recorded pid that was reused since by an unrelated process is never signalled.
    Linux only (/proc); elsewhere, and for processes we may not inspect, the answer is False.
    """
    needle = b"\0CRONCTL_RUN_ID=%d\0" % run_id
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    for pid, state in _group_members(pgid):
        if state in _DEAD_STATES:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = b"\0" + f.read()
        except OSError:
            continue
        if needle in environ:
            return True
    return False


def _wait_group_gone(pgid: int, seconds: float, clock: Clock) -> bool:
    end = clock.monotonic() + seconds
    while True:
        if not group_alive(pgid):
            return True
        left = end - clock.monotonic()
        if left <= 0:
            return False
        clock.sleep(min(0.01, left))


def stop_process_group(pgid: int, kill_grace: float, *, clock: Clock = SYSTEM_CLOCK) -> bool:
    """Stop every process of group `pgid`, blocking for at most about kill_grace + 1 s.

    SIGTERM (and SIGCONT, so stopped members see it) to the group; SIGKILL to the group after
    `kill_grace` seconds if any member is left. Returns True when the group is gone.
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return True
    _signal_group(pgid, signal.SIGCONT)
    if _wait_group_gone(pgid, kill_grace, clock):
        return True
    if not _signal_group(pgid, signal.SIGKILL):
        return True
    return _wait_group_gone(pgid, REAP_WAIT, clock)


# --------------------------------------------------------------------------- starting


def _cwd_problem(cwd: str) -> str | None:
    try:
        st = os.stat(cwd)
    except FileNotFoundError:
        return f"working folder {cwd} does not exist"
    except NotADirectoryError:
        return f"working folder {cwd} does not exist"
    except OSError as exc:
        return f"cannot use working folder {cwd}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"working folder {cwd} is not a folder"
    return None


def _describe_start_error(exc: BaseException, shell: str, cwd: str | None) -> str:
    if not isinstance(exc, OSError):
        return f"could not start the job: {exc}"
    reason = exc.strerror or str(exc)
    code = errno.errorcode.get(exc.errno or 0)
    if code:
        reason = f"{reason} ({code})"
    if cwd is not None and exc.filename == cwd:
        if isinstance(exc, FileNotFoundError):
            return f"working folder {cwd} does not exist"
        return f"cannot enter working folder {cwd}: {reason}"
    if exc.filename in (shell, os.fsencode(shell)):
        if isinstance(exc, FileNotFoundError):
            return f"shell {shell} not found"
        if isinstance(exc, PermissionError):
            return f"shell {shell} is not executable"
        return f"cannot run shell {shell}: {reason}"
    return f"could not start the job: {reason}"


def _outcome_without_process(
    clock: Clock,
    *,
    start_error: str | None,
    stopped: bool = False,
    note: str | None = None,
    started_at: datetime | None = None,
    t0: float | None = None,
) -> ProcessOutcome:
    finished_at = clock.now()
    return ProcessOutcome(
        pid=None,
        exit_code=None,
        signal=None,
        timed_out=False,
        stopped=stopped,
        start_error=start_error,
        stdout=EMPTY_OUTPUT,
        stderr=EMPTY_OUTPUT,
        started_at=started_at or finished_at,
        finished_at=finished_at,
        duration=0.0 if t0 is None else max(0.0, clock.monotonic() - t0),
        note=note,
    )


def _new_selector() -> selectors.BaseSelector:
    # poll(2) needs no descriptor of its own (epoll and kqueue do) and has no FD_SETSIZE limit.
    if hasattr(selectors, "PollSelector"):
        return selectors.PollSelector()
    return selectors.SelectSelector()  # pragma: no cover


# --------------------------------------------------------------------------- running


def run_process(
    command: str,
    *,
    shell: str = "/bin/sh",
    cwd: str | None,
    env: Mapping[str, str],
    timeout: float | None = None,
    kill_grace: float = 10.0,
    stop: threading.Event | None = None,
    on_start: Callable[[int], None] | None = None,
    on_output: Callable[[str, bytes], None] | None = None,
    head_bytes: int = DEFAULT_HEAD_BYTES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    clock: Clock = SYSTEM_CLOCK,
) -> ProcessOutcome:
    """Run `command` with `shell -c` and return how it ended.

    Never raises for a job that cannot start (the outcome's `start_error` says why); exceptions
    raised by `on_start` or `on_output` propagate after the job's group has been killed, reaped
    and every descriptor closed. `timeout` is in seconds (None or 0: no limit).
    """
    if timeout is not None and not timeout > 0:
        timeout = None  # 0 means no limit (as systemd's TimeoutStartSec=0)
    if not kill_grace >= 0:
        raise ValueError(f"kill_grace must not be negative, not {kill_grace!r}")
    if head_bytes < 0 or tail_bytes < 0:
        raise ValueError("head_bytes and tail_bytes must not be negative")
    if stop is not None and stop.is_set():
        return _outcome_without_process(
            clock, start_error=None, stopped=True, note=NOTE_STOPPED_EARLY
        )
    if cwd is not None:
        problem = _cwd_problem(cwd)
        if problem is not None:
            return _outcome_without_process(clock, start_error=problem)

    started_at = clock.now()
    t0 = clock.monotonic()
    try:
        proc = subprocess.Popen(
            [shell, "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            close_fds=True,
            process_group=0,
            bufsize=0,
        )
    except (OSError, ValueError) as exc:
        return _outcome_without_process(
            clock,
            start_error=_describe_start_error(exc, shell, cwd),
            started_at=started_at,
            t0=t0,
        )
    return _Run(proc, clock, t0, started_at).run(
        timeout=timeout,
        kill_grace=kill_grace,
        stop=stop,
        on_start=on_start,
        on_output=on_output,
        head_bytes=head_bytes,
        tail_bytes=tail_bytes,
    )


class _Run:
    """The state of one running job; used by one thread, for one call."""

    def __init__(
        self, proc: subprocess.Popen[bytes], clock: Clock, t0: float, started_at: datetime
    ) -> None:
        self.proc = proc
        self.clock = clock
        self.t0 = t0
        self.started_at = started_at

    def run(
        self,
        *,
        timeout: float | None,
        kill_grace: float,
        stop: threading.Event | None,
        on_start: Callable[[int], None] | None,
        on_output: Callable[[str, bytes], None] | None,
        head_bytes: int,
        tail_bytes: int,
    ) -> ProcessOutcome:
        proc = self.proc
        clock = self.clock
        pid = pgid = proc.pid
        assert proc.stdout is not None and proc.stderr is not None
        captures = {
            "stdout": BoundedCapture(head_bytes, tail_bytes),
            "stderr": BoundedCapture(head_bytes, tail_bytes),
        }
        # fd -> (stream name, file object, capture)
        streams: dict[int, tuple[str, object, BoundedCapture]] = {}
        sel = _new_selector()
        pidfd: int | None = None
        returncode: int | None = None
        timed_out = stopped = False
        term_at: float | None = None  # when SIGTERM went to the group
        term_over = False  # SIGKILL sent, or the group found empty, after SIGTERM
        settled_at: float | None = None  # from when the leftover drain window counts
        next_group_check = 0.0
        leftover = False
        notes: list[str] = []
        try:
            for name, fileobj in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                fd = fileobj.fileno()
                streams[fd] = (name, fileobj, captures[name])
                sel.register(fd, selectors.EVENT_READ)
            if _HAS_PIDFD:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = None  # no pidfd (EMFILE, old kernel): poll for the exit instead
                else:
                    sel.register(pidfd, selectors.EVENT_READ)
            if on_start is not None:
                on_start(pid)
            deadline = None if timeout is None else self.t0 + timeout
            select = sel.select
            read = os.read

            while True:
                now = clock.monotonic()
                if returncode is None and term_at is None:
                    if stop is not None and stop.is_set():
                        stopped = True
                    elif deadline is not None and now >= deadline:
                        timed_out = True
                    if stopped or timed_out:
                        term_at = now
                        _signal_group(pgid, signal.SIGTERM)
                        _signal_group(pgid, signal.SIGCONT)
                if term_at is not None and not term_over:
                    if now >= term_at + kill_grace:
                        # Grace over: SIGKILL whatever is left of the group, unchecked (a group
                        # that is gone is ignored by _signal_group, zombies ignore signals).
                        _signal_group(pgid, signal.SIGKILL)
                        term_over = True
                        if returncode is not None:
                            settled_at = now
                    elif returncode is not None and now >= next_group_check:
                        # The job is gone but members of its group may not be (they get
                        # SIGKILL at the end of the grace); finish early once none is left.
                        next_group_check = now + GROUP_POLL
                        if not group_alive(pgid):
                            term_over = True
                            settled_at = now
                if settled_at is not None:  # only ever set once the job has exited
                    if not streams:
                        break
                    if now >= settled_at + LEFTOVER_DRAIN:
                        leftover = True
                        break

                # How long may we wait for the next event?
                wait: float | None = None
                if returncode is None:
                    if pidfd is None:
                        wait = EXIT_POLL
                    if term_at is None:
                        if stop is not None:
                            wait = STOP_POLL if wait is None else min(wait, STOP_POLL)
                        if deadline is not None:
                            wait = deadline - now if wait is None else min(wait, deadline - now)
                    elif not term_over:
                        left = term_at + kill_grace - now
                        wait = left if wait is None else min(wait, left)
                elif settled_at is None:  # waiting for the terminated group to empty
                    assert term_at is not None
                    wait = min(next_group_check, term_at + kill_grace) - now
                else:
                    wait = settled_at + LEFTOVER_DRAIN - now
                if wait is not None and wait < 0:
                    wait = 0

                exit_seen = pidfd is None
                for key, _events in select(wait):
                    fd = key.fd
                    if fd == pidfd:
                        exit_seen = True  # handled below, after the reads
                        continue
                    name, fileobj, capture = streams[fd]
                    chunk = read(fd, READ_CHUNK)
                    if chunk:
                        capture.feed(chunk)
                        if on_output is not None:
                            on_output(name, chunk)
                    else:
                        sel.unregister(fd)
                        fileobj.close()  # type: ignore[attr-defined]
                        del streams[fd]
                if returncode is None and exit_seen:
                    returncode = proc.poll()  # waitpid(WNOHANG): reaps the job once it exited
                    if returncode is not None:
                        if pidfd is not None:
                            sel.unregister(pidfd)
                            os.close(pidfd)
                            pidfd = None
                        if term_at is None or term_over:
                            settled_at = clock.monotonic()

            if leftover:
                self._close_streams(sel, streams)
                if not term_over and group_alive(pgid):
                    notes.append(NOTE_LEFTOVER)
                    if not stop_process_group(
                        pgid, min(kill_grace, LEFTOVER_TERM_GRACE), clock=clock
                    ):
                        notes.append(NOTE_SURVIVORS)
                else:
                    notes.append(NOTE_LEFTOVER_OUTSIDE)
            if term_at is not None and not _wait_group_gone(pgid, REAP_WAIT, clock):
                _signal_group(pgid, signal.SIGKILL)
                if not _wait_group_gone(pgid, REAP_WAIT, clock):
                    notes.append(NOTE_SURVIVORS)
        except BaseException:
            # A callback raised (or KeyboardInterrupt): leave nothing behind, then re-raise.
            _signal_group(pgid, signal.SIGKILL)
            raise
        finally:
            self._close_streams(sel, streams)
            if pidfd is not None:
                try:
                    sel.unregister(pidfd)
                except (KeyError, ValueError):
                    pass
                os.close(pidfd)
            sel.close()
            if proc.returncode is None:
                proc.wait()  # never leave a zombie
            returncode = proc.returncode

        assert returncode is not None
        return ProcessOutcome(
            pid=pid,
            exit_code=returncode if returncode >= 0 else None,
            signal=-returncode if returncode < 0 else None,
            timed_out=timed_out,
            stopped=stopped,
            start_error=None,
            stdout=captures["stdout"].result(),
            stderr=captures["stderr"].result(),
            started_at=self.started_at,
            finished_at=clock.now(),
            duration=max(0.0, clock.monotonic() - self.t0),
            note="; ".join(notes) or None,
        )

    @staticmethod
    def _close_streams(
        sel: selectors.BaseSelector, streams: dict[int, tuple[str, object, BoundedCapture]]
    ) -> None:
        for fd, (_name, fileobj, _capture) in list(streams.items()):
            try:
                sel.unregister(fd)
            except (KeyError, ValueError):
                pass
            fileobj.close()  # type: ignore[attr-defined]
            del streams[fd]
