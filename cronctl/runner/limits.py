"""A task's resource limits applied to its job (README "Resource limits").

How, and why this way rather than a cgroup: serve runs in a terminal as often as under
systemd, and `run-now` in any shell, so the limits must not need a delegated cgroup.

- `nice`, `cpu` and `open_files` are set in the child between fork and exec
  (`setpriority`, `setrlimit`): every process the job starts inherits them, and each process
  is held to them on its own, exactly as systemd's `Nice=`, `LimitCPU=` and `LimitNOFILE=`.
  A process over its CPU time gets SIGXCPU, then SIGKILL `CPU_KILL_AFTER` seconds later if it
  ignores that.
- `memory` and `processes` hold for the job's process group together, as `MemoryMax=` and
  `TasksMax=` hold for a unit's cgroup: the supervision loop reads the group's processes from
  /proc every `WATCH_INTERVAL` seconds and stops the group with SIGKILL once their resident
  memory together, or their number, is over the limit. Only a job with one of these limits
  pays for the reads.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from typing import NamedTuple

from cronctl.model.limits import CPU_KILL_AFTER, Limits, describe_limit

WATCH_INTERVAL = 0.25
"""Seconds between two reads of the group's memory and processes."""
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROC = "/proc"


def reached(key: str, limits: Limits) -> str:
    """The words of a run's reason: "memory limit 512M reached"."""
    value = getattr(limits, key)
    return f"{key.replace('_', ' ')} limit {describe_limit(key, value)} reached"


def before_exec(nice: int | None, limits: Limits | None) -> Callable[[], None] | None:
    """Return what the child runs between fork and exec, or None when there is nothing to set.

    It runs in the child of a threaded serve, so it takes no lock (no import, no logging, no
    buffered I/O: only system calls), and it never raises: a limit above the hard limit serve
    itself runs under is lowered to that hard limit, all an unprivileged process may grant.
    """
    cpu = limits.cpu if limits else None
    open_files = limits.open_files if limits else None
    if nice is None and cpu is None and open_files is None:
        return None

    def apply() -> None:
        if nice is not None:
            try:
                current = os.getpriority(os.PRIO_PROCESS, 0)
                os.setpriority(os.PRIO_PROCESS, 0, max(current, nice))
            except OSError:
                pass
        if cpu is not None:
            _lower(resource.RLIMIT_CPU, cpu, cpu + CPU_KILL_AFTER)
        if open_files is not None:
            _lower(resource.RLIMIT_NOFILE, open_files, open_files)

    return apply


def _lower(which: int, soft: int, hard: int) -> None:
    try:
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))
    except (OSError, ValueError):
        pass


class GroupUse(NamedTuple):
    processes: int
    resident_bytes: int


def group_use(pgid: int) -> GroupUse:
    """Return how many processes the group `pgid` has and their resident memory together."""
    count = resident = 0
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return GroupUse(0, 0)
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"{_PROC}/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue  # gone meanwhile
        # After the command name (which may hold anything, parentheses too): state, ppid,
        # pgrp ... rss is the 22nd field after it (proc(5)).
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 21 and int(fields[2]) == pgid:
            count += 1
            resident += int(fields[21]) * _PAGE
    return GroupUse(count, resident)


class GroupWatch:
    """Reads a job's process group at most every WATCH_INTERVAL seconds; says which
    group-wide limit it went over, if any."""

    __slots__ = ("limits", "next_at", "pgid")

    def __init__(self, pgid: int, limits: Limits) -> None:
        self.pgid = pgid
        self.limits = limits
        self.next_at = 0.0

    def over(self, now: float) -> str | None:
        """The reason when the group is over a limit now, else None (and nothing read when
        the last read is more recent than WATCH_INTERVAL)."""
        if now < self.next_at:
            return None
        self.next_at = now + WATCH_INTERVAL
        use = group_use(self.pgid)
        memory, processes = self.limits.memory, self.limits.processes
        if memory is not None and use.resident_bytes > memory:
            return reached("memory", self.limits)
        if processes is not None and use.processes > processes:
            return reached("processes", self.limits)
        return None


def watch_for(pgid: int, limits: Limits | None) -> GroupWatch | None:
    if limits is None or (limits.memory is None and limits.processes is None):
        return None
    return GroupWatch(pgid, limits)
