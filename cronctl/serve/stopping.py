"""How serve's runs end when serve stops (README.md#what-serve-guarantees, Shutdown).

Nothing new starts; running jobs get `grace` seconds to end on their own; then their process
groups are stopped (the runner sends SIGTERM, SIGKILL `kill_grace` later) and recorded
`interrupted`. A second stop request (a second SIGTERM or SIGINT) skips the grace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cronctl.clock import Clock
from cronctl.serve import GRACE, KILL_GRACE
from cronctl.serve.inbox import Inbox
from cronctl.serve.starts import Starts
from cronctl.serve.systemd import SystemdNotifier
from cronctl.serve.upkeep import Upkeep
from cronctl.serve.workers import SHUTDOWN_REASON
from cronctl.timefmt import counted

log = logging.getLogger("cronctl.serve")

STOP_WAIT_MARGIN = 5.0  # seconds beyond kill_grace we wait for stopped jobs to be recorded


class JobStopper:
    def __init__(
        self,
        starts: Starts,
        inbox: Inbox,
        clock: Clock,
        systemd: SystemdNotifier,
        *,
        grace: float = GRACE,
        kill_grace: float = KILL_GRACE,
        upkeep: Upkeep | None = None,
    ) -> None:
        self.starts = starts
        self.upkeep = upkeep  # heartbeat and watchdog go on while the jobs end
        self.inbox = inbox
        self.clock = clock
        self.systemd = systemd
        self.grace = grace
        self.kill_grace = kill_grace

    def stop_jobs(self, drain: Callable[[], None]) -> None:
        """Wait up to `grace` for the running jobs, then stop them and wait for their records;
        `drain` takes the runs that ended (the loop's completions)."""
        starts = self.starts
        drain()
        if starts.active:
            jobs = counted(starts.active, "running job")
            status = f"stopping: waiting up to {self.grace:g}s for {jobs}"
            log.info("%s", status)
        else:
            status = "stopping"
        self.systemd.stopping(status)
        self._wait_for_jobs(self.grace, drain, hurry_ends=True)
        if starts.active:
            log.warning("stopping %s", counted(starts.active, "running job"))
            starts.stop_all(SHUTDOWN_REASON)
            self._wait_for_jobs(self.kill_grace + STOP_WAIT_MARGIN, drain, hurry_ends=False)
        if starts.active:
            log.error(
                "%d jobs did not end; their runs will be marked abandoned at the next start",
                starts.active,
            )

    def _wait_for_jobs(
        self, seconds: float, drain: Callable[[], None], *, hurry_ends: bool
    ) -> None:
        deadline = self.clock.monotonic() + seconds
        inbox = self.inbox
        while self.starts.active and not (hurry_ends and inbox.hurry):
            drain()
            if self.upkeep is not None:
                self.upkeep.keep_alive(self.clock.now(), self.clock.monotonic())
            left = deadline - self.clock.monotonic()
            if not self.starts.active or left <= 0:
                break
            self.clock.sleep(min(left, 1.0), wake=inbox.wake)
            inbox.wake.clear()
        drain()
