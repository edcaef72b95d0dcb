"""The scheduling loop's chores besides its runs, each on a period of its own.

* the task file: one stat every POLL_INTERVAL (SETTLE while a change settles), at once on SIGHUP;
* the heartbeat `status` reads (and systemd's status line), every HEARTBEAT_INTERVAL, or
  a third of the lease when that is shorter (serve/fleet.py): on a shared history it renews
  this serve's lease and declares dead the serves whose lease ran out;
* retention and a WAL checkpoint, at start and then every PRUNE_INTERVAL;
* systemd's watchdog ping, at half its WatchdogSec when the unit sets one.

The writes go to the background writer: the loop never waits for the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from cronctl.model import DEFAULT_KEEP_DAYS
from cronctl.serve.fleet import HEARTBEAT_INTERVAL
from cronctl.serve.reload import POLL_INTERVAL, SETTLE, TaskFileWatcher
from cronctl.serve.systemd import SystemdNotifier
from cronctl.serve.writes import BackgroundWrites
from cronctl.taskfile import TaskFile

log = logging.getLogger("cronctl.serve")

__all__ = ["HEARTBEAT_INTERVAL", "POLL_SLACK", "PRUNE_INTERVAL", "Upkeep"]

POLL_SLACK = 0.1
PRUNE_INTERVAL = 3600.0


class Upkeep:
    def __init__(
        self,
        recorder: BackgroundWrites,
        systemd: SystemdNotifier,
        watcher: TaskFileWatcher | None = None,
        *,
        keep_days: int = DEFAULT_KEEP_DAYS,
        on_reload: Callable[[TaskFile], None] | None = None,
    ) -> None:
        self.recorder = recorder
        self.systemd = systemd
        self.watcher = watcher
        self.keep_days = keep_days
        self.on_reload = on_reload  # called with each newly loaded TaskFile (notifier settings)
        self.heartbeat_interval = HEARTBEAT_INTERVAL  # serve/fleet.py: shorter for a short lease
        self._next_poll = 0.0
        self._next_heartbeat = 0.0
        self._next_prune = 0.0
        self._next_watchdog = 0.0

    def start(self, mono: float) -> None:
        self._next_poll = mono + POLL_INTERVAL
        self._next_heartbeat = mono + self.heartbeat_interval
        self._next_prune = mono  # retention at start, then hourly
        self._next_watchdog = mono

    def poll_task_file(self, mono: float, *, force: bool) -> TaskFile | None:
        """Look at the task file when due, or at once with `force` (SIGHUP); return the task
        file when a change was loaded (valid and settled)."""
        # Up to POLL_SLACK early: a poll due just after a slot rides on the slot's wake-up
        # instead of waking the loop again while the slot's jobs are starting.
        if not force and mono < self._next_poll - POLL_SLACK:
            return None
        if self.watcher is None:
            self._next_poll = mono + POLL_INTERVAL
            return None
        loaded = self.watcher.poll(force=force)
        self._next_poll = mono + (SETTLE if self.watcher.settling else POLL_INTERVAL)
        return loaded

    def reloaded(self, loaded: TaskFile) -> None:
        """Tell the reload listener about a task file now in force."""
        if self.on_reload is not None:
            try:
                self.on_reload(loaded)
            except Exception:
                log.exception("a reload listener failed")

    def chores(
        self,
        now: datetime,
        mono: float,
        status: Callable[[], str],
        keep_runs: Callable[[], dict[str, int]],
    ) -> None:
        """Do what is due: heartbeat (with systemd's `status` line), retention (keeping each
        task's `keep_runs`), the watchdog ping."""
        if mono >= self._next_heartbeat:
            self._next_heartbeat = mono + self.heartbeat_interval
            self.recorder.heartbeat(now)
            self.tell_status(status)
        if mono >= self._next_prune:
            self._next_prune = mono + PRUNE_INTERVAL
            self.recorder.retention(now, keep_days=self.keep_days, keep_runs=keep_runs())
        if self.systemd.watchdog_interval and mono >= self._next_watchdog:
            self._next_watchdog = mono + self.systemd.watchdog_interval
            self.systemd.watchdog()

    def keep_alive(self, now: datetime, mono: float) -> None:
        """While serve stops: the heartbeat and the watchdog ping when due, nothing else. Jobs
        may take the whole grace to end: a serve silent that long would be declared dead by
        the other hosts (its running runs recorded abandoned under it) or killed by systemd's
        watchdog."""
        if mono >= self._next_heartbeat:
            self._next_heartbeat = mono + self.heartbeat_interval
            self.recorder.heartbeat(now)
        if self.systemd.watchdog_interval and mono >= self._next_watchdog:
            self._next_watchdog = mono + self.systemd.watchdog_interval
            self.systemd.watchdog()

    def tell_status(self, status: Callable[[], str]) -> None:
        """Send systemd the status line, when serve runs under systemd."""
        if self.systemd.enabled:
            self.systemd.status(status())

    def seconds_to_next(self, mono: float) -> float:
        """Seconds until the next chore is due (may be negative: due now)."""
        deadline = min(self._next_poll, self._next_heartbeat) - mono
        if self.systemd.watchdog_interval:
            deadline = min(deadline, self._next_watchdog - mono)
        return deadline
