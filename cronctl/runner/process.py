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

Beside this module: `pipes` reads the output and notices the exit, `groups` signals and
watches process groups, `outcome` is what a run returns.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.model.limits import Limits
from cronctl.runner.capture import DEFAULT_HEAD_BYTES, DEFAULT_TAIL_BYTES
from cronctl.runner.groups import (
    REAP_WAIT,
    group_alive,
    group_runs_job,
    signal_group,
    stop_process_group,
    wait_group_gone,
)
from cronctl.runner.limits import GroupWatch, before_exec, watch_for
from cronctl.runner.outcome import (
    NOTE_LEFTOVER,
    NOTE_LEFTOVER_OUTSIDE,
    NOTE_STOPPED_EARLY,
    NOTE_SURVIVORS,
    ProcessOutcome,
    outcome_without_process,
)
from cronctl.runner.pipes import JobPipes

__all__ = [
    # The process-group helpers live in runner.groups; serve's recovery reaches them here.
    "ProcessOutcome",
    "group_runs_job",
    "run_process",
    "stop_process_group",
]

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
    nice: int | None = None,
    limits: Limits | None = None,
    pass_fds: tuple[int, ...] = (),
) -> ProcessOutcome:
    """Run `command` with `shell -c` and return how it ended.

    Never raises for a job that cannot start (the outcome's `start_error` says why); exceptions
    raised by `on_start` or `on_output` propagate after the job's group has been killed, reaped
    and every descriptor closed. `timeout` is in seconds (None or 0: no limit).
    """
    job = spawn_process(
        command,
        shell=shell,
        cwd=cwd,
        env=env,
        timeout=timeout,
        kill_grace=kill_grace,
        stop=stop,
        on_output=on_output,
        head_bytes=head_bytes,
        tail_bytes=tail_bytes,
        clock=clock,
        nice=nice,
        limits=limits,
        pass_fds=pass_fds,
    )
    if isinstance(job, ProcessOutcome):
        return job
    return job.run(on_start)


def spawn_process(
    command: str,
    *,
    shell: str = "/bin/sh",
    cwd: str | None,
    env: Mapping[str, str],
    timeout: float | None = None,
    kill_grace: float = 10.0,
    stop: threading.Event | None = None,
    on_output: Callable[[str, bytes], None] | None = None,
    head_bytes: int = DEFAULT_HEAD_BYTES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    clock: Clock = SYSTEM_CLOCK,
    nice: int | None = None,
    limits: Limits | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Supervision | ProcessOutcome:
    """Start `command` with `shell -c`: the running job, to be watched to its end with
    `Supervision.run` (on any thread, once), or how it ended when it could not start.

    Split from run_process so that serve spawns in slot order on its claimer thread and
    supervises on the job's own thread (docs/performance.md, "Serve's hot path after issue
    18"). Never raises for a job that cannot start.
    """
    if timeout is not None and not timeout > 0:
        timeout = None  # 0 means no limit (as systemd's TimeoutStartSec=0)
    if not kill_grace >= 0:
        raise ValueError(f"kill_grace must not be negative, not {kill_grace!r}")
    if head_bytes < 0 or tail_bytes < 0:
        raise ValueError("head_bytes and tail_bytes must not be negative")
    if stop is not None and stop.is_set():
        return outcome_without_process(
            clock, start_error=None, stopped=True, note=NOTE_STOPPED_EARLY
        )
    if cwd is not None:
        problem = _cwd_problem(cwd)
        if problem is not None:
            return outcome_without_process(clock, start_error=problem)

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
            preexec_fn=before_exec(nice, limits),
            pass_fds=pass_fds,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return outcome_without_process(
            clock,
            start_error=_describe_start_error(exc, shell, cwd),
            started_at=started_at,
            t0=t0,
        )
    return Supervision(
        proc,
        clock,
        t0,
        started_at,
        deadline=None if timeout is None else t0 + timeout,
        kill_grace=kill_grace,
        stop=stop,
        pipes=JobPipes(head_bytes, tail_bytes, on_output),
        watch=watch_for(proc.pid, limits),
    )


def _sooner(wait: float | None, other: float) -> float:
    return other if wait is None else min(wait, other)


class Supervision:
    """One running job, watched until it has exited and its output is read; one thread, one call.

    Each turn of the loop takes the same steps: signal the group when a timeout or a stop
    request is due (SIGTERM, then SIGKILL after kill_grace), work out how long it may block,
    pump output (noticing the job's exit), reap the job. The loop ends once the job is reaped,
    any termination is over and the pipes are closed, or LEFTOVER_DRAIN seconds later when
    something still holds them; such leftovers are stopped after the loop.
    """

    __slots__ = (
        "clock",
        "deadline",
        "kill_grace",
        "limit_reached",
        "next_group_check",
        "notes",
        "pipes",
        "proc",
        "settled_at",
        "started_at",
        "stop",
        "stopped",
        "t0",
        "term_at",
        "term_over",
        "timed_out",
        "watch",
    )

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        clock: Clock,
        t0: float,
        started_at: datetime,
        *,
        deadline: float | None,
        kill_grace: float,
        stop: threading.Event | None,
        pipes: JobPipes,
        watch: GroupWatch | None = None,
    ) -> None:
        self.proc = proc
        self.watch = watch
        self.limit_reached: str | None = None
        self.clock = clock
        self.t0 = t0
        self.started_at = started_at
        self.deadline = deadline
        self.kill_grace = kill_grace
        self.stop = stop
        self.pipes = pipes
        self.timed_out = False
        self.stopped = False
        self.term_at: float | None = None
        """When SIGTERM went to the group."""
        self.term_over = False
        """SIGKILL sent, or the group found empty, after SIGTERM."""
        self.settled_at: float | None = None
        """From when the leftover drain window counts; only ever set once the job has exited."""
        self.next_group_check = 0.0
        self.notes: list[str] = []

    def kill(self) -> None:
        """Kill and reap a job that will not be watched (its thread could not start)."""
        signal_group(self.proc.pid, signal.SIGKILL)
        for file in (self.proc.stdout, self.proc.stderr):
            if file is not None:
                file.close()
        self.pipes.close()
        self.proc.wait()

    def run(self, on_start: Callable[[int], None] | None) -> ProcessOutcome:
        pgid = self.proc.pid
        try:
            self.pipes.watch(self.proc)
            if on_start is not None:
                on_start(pgid)
            if self._supervise():
                self._stop_leftovers()
            if self.term_at is not None:
                self._make_sure_group_gone()
        except BaseException:
            # A callback raised (or KeyboardInterrupt): leave nothing behind, then re-raise.
            signal_group(pgid, signal.SIGKILL)
            raise
        finally:
            self.pipes.close()
            if self.proc.returncode is None:
                self.proc.wait()  # never leave a zombie
        return self._outcome()

    def _supervise(self) -> bool:
        """Run the loop; True when it ended with the pipes held after the job's exit."""
        monotonic = self.clock.monotonic
        proc = self.proc
        pipes = self.pipes
        while True:
            now = monotonic()
            self._signal_when_due(now)
            if self.settled_at is not None:
                if not pipes.open:
                    return False
                if now >= self.settled_at + LEFTOVER_DRAIN:
                    return True
            exit_seen = pipes.pump(self._wait_budget(now))
            if exit_seen and proc.returncode is None:
                self._reap()

    # ----------------------------------------------------------------------- signal when due

    def _signal_when_due(self, now: float) -> None:
        if self.term_at is None and self.proc.returncode is None:
            self._terminate_when_asked(now)
        # Not an elif: with kill_grace 0, SIGKILL follows SIGTERM in the same step.
        if self.term_at is not None and not self.term_over:
            self._kill_when_grace_over(now, self.term_at)

    def _terminate_when_asked(self, now: float) -> None:
        """SIGTERM (and SIGCONT) to the group on a stop request or at the deadline; SIGKILL
        at once when it is over a group-wide limit (as the kernel's OOM killer would)."""
        over = self.watch.over(now) if self.watch is not None else None
        if over is not None:
            self.limit_reached = over
            self.term_at = now
            self.term_over = True
            signal_group(self.proc.pid, signal.SIGKILL)
            return
        if self.stop is not None and self.stop.is_set():
            self.stopped = True
        elif self.deadline is not None and now >= self.deadline:
            self.timed_out = True
        else:
            return
        self.term_at = now
        signal_group(self.proc.pid, signal.SIGTERM)
        signal_group(self.proc.pid, signal.SIGCONT)

    def _kill_when_grace_over(self, now: float, term_at: float) -> None:
        exited = self.proc.returncode is not None
        if now >= term_at + self.kill_grace:
            # Grace over: SIGKILL whatever is left of the group, unchecked (a group that is
            # gone is ignored by signal_group, zombies ignore signals).
            signal_group(self.proc.pid, signal.SIGKILL)
            self.term_over = True
            if exited:
                self.settled_at = now
        elif exited and now >= self.next_group_check:
            # The job is gone but members of its group may not be (they get SIGKILL at the end
            # of the grace); finish early once none is left.
            self.next_group_check = now + GROUP_POLL
            if not group_alive(self.proc.pid):
                self.term_over = True
                self.settled_at = now

    # ----------------------------------------------------------------------- wait budget

    def _wait_budget(self, now: float) -> float | None:
        """How long the next pump may block: until the next step is due (None: no limit)."""
        wait: float | None
        if self.proc.returncode is None:
            wait = self._wait_while_running(now)
        elif self.settled_at is None:  # waiting for the terminated group to empty
            assert self.term_at is not None
            wait = min(self.next_group_check, self.term_at + self.kill_grace) - now
        else:
            wait = self.settled_at + LEFTOVER_DRAIN - now
        if wait is not None and wait < 0:
            return 0.0
        return wait

    def _wait_while_running(self, now: float) -> float | None:
        wait = EXIT_POLL if self.pipes.pidfd is None else None
        if self.term_at is None:
            if self.watch is not None:
                wait = _sooner(wait, self.watch.next_at - now)
            if self.stop is not None:
                wait = _sooner(wait, STOP_POLL)
            if self.deadline is not None:
                wait = _sooner(wait, self.deadline - now)
        elif not self.term_over:
            wait = _sooner(wait, self.term_at + self.kill_grace - now)
        return wait

    # ----------------------------------------------------------------------- reap

    def _reap(self) -> None:
        """Collect the job's exit status if it has exited (waitpid WNOHANG)."""
        if self.proc.poll() is None:
            return
        self.pipes.stop_watching_exit()
        if self.term_at is None or self.term_over:
            self.settled_at = self.clock.monotonic()

    # ----------------------------------------------------------------------- after the exit

    def _stop_leftovers(self) -> None:
        """The pipes are still held after the drain window: stop what holds them, if ours."""
        self.pipes.close_streams()
        pgid = self.proc.pid
        if not self.term_over and group_alive(pgid):
            self.notes.append(NOTE_LEFTOVER)
            grace = min(self.kill_grace, LEFTOVER_TERM_GRACE)
            if not stop_process_group(pgid, grace, clock=self.clock):
                self.notes.append(NOTE_SURVIVORS)
        else:
            self.notes.append(NOTE_LEFTOVER_OUTSIDE)

    def _make_sure_group_gone(self) -> None:
        """After a timeout or stop: wait for the group to empty, SIGKILL it once more if not."""
        pgid = self.proc.pid
        if not wait_group_gone(pgid, REAP_WAIT, self.clock):
            signal_group(pgid, signal.SIGKILL)
            if not wait_group_gone(pgid, REAP_WAIT, self.clock):
                self.notes.append(NOTE_SURVIVORS)

    def _outcome(self) -> ProcessOutcome:
        returncode = self.proc.returncode
        assert returncode is not None
        stdout, stderr = self.pipes.output()
        return ProcessOutcome(
            pid=self.proc.pid,
            exit_code=returncode if returncode >= 0 else None,
            signal=-returncode if returncode < 0 else None,
            timed_out=self.timed_out,
            stopped=self.stopped,
            start_error=None,
            stdout=stdout,
            stderr=stderr,
            started_at=self.started_at,
            finished_at=self.clock.now(),
            duration=max(0.0, self.clock.monotonic() - self.t0),
            note="; ".join(self.notes) or None,
            limit_reached=self.limit_reached,
        )
