"""One running job watched to its end: timeouts and stops (SIGTERM, then SIGKILL after the
grace), its output read, its exit reaped, leftovers that hold its pipes stopped.

A `Supervision` is driven either by its own loop on one thread (`run`: `run-now`, `when`
conditions, notify commands, and serve's runs that take a thread of their own), or step by step
by serve's one supervising thread for every job (runner/supervisor.py): `begin`, then `advance`
after each readiness of its descriptors (`handle`) or when the wait it asked for is over, until
`over` is set; then `conclude` (blocking only after a timeout, a stop or leftovers:
`conclude_blocks`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime

from cronctl.clock import Clock
from cronctl.runner.groups import (
    REAP_WAIT,
    group_alive,
    signal_group,
    stop_process_group,
    wait_group_gone,
)
from cronctl.runner.limits import GroupWatch
from cronctl.runner.outcome import (
    NOTE_LEFTOVER,
    NOTE_LEFTOVER_OUTSIDE,
    NOTE_SURVIVORS,
    ProcessOutcome,
)
from cronctl.runner.pipes import JobPipes, Watcher
from cronctl.runner.spawn import JobProcess

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
        "over",
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
        proc: JobProcess,
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
        self.over: bool | None = None
        """Set once the watch is over: True when the pipes were still held after the exit."""

    def kill(self) -> None:
        """Kill and reap a job that will not be watched (its thread could not start)."""
        signal_group(self.proc.pid, signal.SIGKILL)
        for file in (self.proc.stdout, self.proc.stderr):
            if file is not None:
                file.close()
        self.pipes.close()
        self.proc.wait()

    def run(self, on_start: Callable[[int], None] | None) -> ProcessOutcome:
        """Watch the job on this thread until it is over and return how it ended."""
        pgid = self.proc.pid
        try:
            self.begin(None)
            if on_start is not None:
                on_start(pgid)
            held = self._supervise()
            self._after_loop(held)
        except BaseException:
            # A callback raised (or KeyboardInterrupt): leave nothing behind, then re-raise.
            signal_group(pgid, signal.SIGKILL)
            raise
        finally:
            self.release()
        return self._outcome()

    def _supervise(self) -> bool:
        """Run the loop; True when it ended with the pipes held after the job's exit."""
        monotonic = self.clock.monotonic
        proc = self.proc
        pipes = self.pipes
        while True:
            wait = self.advance(monotonic())
            if self.over is not None:
                return self.over
            exit_seen = pipes.pump(wait)
            if exit_seen and proc.returncode is None:
                self._reap()

    # ----------------------------------------------------------------------- step by step

    def begin(self, watcher: Watcher | None) -> None:
        """Start watching the job's pipes and exit, with `watcher` (a shared one: the
        supervising thread's; None: a poll of the job's own, for `run`)."""
        self.pipes.watch(self.proc, watcher)

    def handle(self, fd: int) -> None:
        """`fd`, one of the job's descriptors, is ready: read what came, or reap the job."""
        if self.pipes.handle(fd) and self.proc.returncode is None:
            self._reap()

    def advance(self, now: float) -> float | None:
        """Signal the group when due and return how long the job may wait for its descriptors
        (None: no limit); once its watch is over, `over` is set (True: the pipes are still held
        after the exit) and the value means nothing."""
        if self.pipes.pidfd is None and self.proc.returncode is None:
            self._reap()  # no pidfd: the exit is polled
        self._signal_when_due(now)
        if self.settled_at is not None:
            if not self.pipes.open:
                self.over = False
            elif now >= self.settled_at + LEFTOVER_DRAIN:
                self.over = True
        return self._wait_budget(now)

    @property
    def conclude_blocks(self) -> bool:
        """Whether `conclude` waits (for leftovers, or a terminated group, to be gone)."""
        return bool(self.over) or self.term_at is not None

    def conclude(self) -> ProcessOutcome:
        """After `over`: stop leftovers, make sure a terminated group is gone, release every
        descriptor, reap; how the job ended."""
        try:
            self._after_loop(bool(self.over))
        finally:
            self.release()
        return self._outcome()

    def abort(self) -> None:
        """A callback raised while the job was watched: kill its group, release its
        descriptors (the caller reaps it with `release`, which may wait a moment)."""
        signal_group(self.proc.pid, signal.SIGKILL)
        self.pipes.close()

    def release(self) -> None:
        """Close every descriptor and reap the job (never leave a zombie)."""
        self.pipes.close()
        if self.proc.returncode is None:
            self.proc.wait()

    def _after_loop(self, held: bool) -> None:
        if held:
            self._stop_leftovers()
        if self.term_at is not None:
            self._make_sure_group_gone()

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
