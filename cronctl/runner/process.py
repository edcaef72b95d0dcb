"""Start one job, capture its output, enforce its timeout, and clean up its process group.

The runner package is the only part of cronctl that starts processes: this module starts jobs,
`when` conditions, notify commands and sendmail; `tools` runs systemctl and its kin, `editor`
the user's editor. One call of `run_process` uses the calling thread only, keeps no global
state, and costs three file descriptors while it runs: the two output pipes and, on Linux, a
pidfd. serve spawns with `start_process` and watches every job on one thread
(runner/supervisor.py), each job's `Supervision` (runner/supervision.py) driven step by step.

Lifecycle of a run:

* spawn `[shell, "-c", command]` in a new process group (the job's pid is its pgid), stdin from
  /dev/null, stdout and stderr on separate pipes (`os.posix_spawn` for a plain job,
  runner/spawn.py; `subprocess.Popen` for the others);
* read both pipes as data comes (poll(2), so it needs no fd of its own), feeding
  a bounded capture and the optional `on_output` callback; notice the job's exit while the pipes
  are still open (pidfd on Linux, a 50 ms poll elsewhere);
* on timeout or `stop`: SIGTERM (and SIGCONT) to the whole group, keep reading, SIGKILL to the
  group `kill_grace` seconds later if any member is left;
* after the job has exited, drain the pipes for at most LEFTOVER_DRAIN seconds: a background
  process still holding them (`sleep 30 & echo started`) does not hang the run; its group is
  stopped and the outcome carries a note.

Beside this module: `supervision` watches one job (the steps above), `pipes` reads the output
and notices the exit, `groups` signals and watches process groups, `outcome` is what a run
returns.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.model.limits import Limits
from cronctl.runner.capture import DEFAULT_HEAD_BYTES, DEFAULT_TAIL_BYTES
from cronctl.runner.groups import group_runs_job, stop_process_group
from cronctl.runner.limits import before_exec, watch_for
from cronctl.runner.outcome import (
    NOTE_STOPPED_EARLY,
    ProcessOutcome,
    outcome_without_process,
)
from cronctl.runner.pipes import JobPipes
from cronctl.runner.spawn import PLAIN_SPAWN, JobProcess, posix_spawned, takes_plain_spawn
from cronctl.runner.supervision import Supervision

__all__ = [
    # The process-group helpers live in runner.groups; serve's recovery reaches them here.
    "ProcessOutcome",
    "Supervision",
    "group_runs_job",
    "run_process",
    "stop_process_group",
    "supervised",
]

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
    job = start_process(
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
    return job.supervision().run(on_start)


def start_process(
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
) -> StartedJob | ProcessOutcome:
    """Start `command` with `shell -c`: the job just spawned (`StartedJob.supervision()` is
    what watches it to its end, on any thread, once), or how it ended when it could not start.

    Split from run_process so that serve spawns in slot order on its claimer thread and
    supervises on another (docs/performance.md, "Serve's hot path after issue 18"). Never
    raises for a job that cannot start.
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
    before = before_exec(nice, limits)
    proc: JobProcess
    try:
        if PLAIN_SPAWN and before is None and not pass_fds and takes_plain_spawn(cwd, shell):
            proc = posix_spawned(shell, command, env)
        else:
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
                preexec_fn=before,
                pass_fds=pass_fds,
            )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return outcome_without_process(
            clock,
            start_error=_describe_start_error(exc, shell, cwd),
            started_at=started_at,
            t0=t0,
        )
    return StartedJob(
        proc,
        clock,
        t0,
        started_at,
        timeout,
        kill_grace,
        stop,
        on_output,
        head_bytes,
        tail_bytes,
        limits,
    )


class StartedJob(NamedTuple):
    """A job `start_process` spawned, before the `Supervision` that watches it is built: serve's
    claimer spawns a batch of jobs first and builds their watches after the last spawn
    (docs/performance.md, "Round 7: firing ahead")."""

    proc: JobProcess
    clock: Clock
    t0: float
    started_at: datetime
    timeout: float | None
    kill_grace: float
    stop: threading.Event | None
    on_output: Callable[[str, bytes], None] | None
    head_bytes: int
    tail_bytes: int
    limits: Limits | None

    def supervision(self) -> Supervision:
        return Supervision(
            self.proc,
            self.clock,
            self.t0,
            self.started_at,
            deadline=None if self.timeout is None else self.t0 + self.timeout,
            kill_grace=self.kill_grace,
            stop=self.stop,
            pipes=JobPipes(self.head_bytes, self.tail_bytes, self.on_output),
            watch=watch_for(self.proc.pid, self.limits),
        )


def supervised(job: StartedJob | ProcessOutcome) -> Supervision | ProcessOutcome:
    """The watch of a job `start_process` started, or how it ended when it could not start."""
    return job if isinstance(job, ProcessOutcome) else job.supervision()
