"""Process groups of jobs: signal them, tell whether they are still alive, stop them.

A job runs in its own process group (its pid is the group's id), so everything it started can
be signalled at once. Linux's /proc tells zombies apart from live members and identifies the
job of a run whose serve died (CRONCTL_RUN_ID in the environment); elsewhere the answers err
towards "alive" (or "not ours" for `group_runs_job`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

from cronctl.clock import SYSTEM_CLOCK, Clock

REAP_WAIT = 1.0
"""Seconds we wait after SIGKILL for the group's members to be gone."""


def signal_group(pgid: int, sig: int) -> bool:
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


def wait_group_gone(pgid: int, seconds: float, clock: Clock) -> bool:
    """Wait up to `seconds` for the group to have no live member; True when it has none."""
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
    if not signal_group(pgid, signal.SIGTERM):
        return True
    signal_group(pgid, signal.SIGCONT)
    if wait_group_gone(pgid, kill_grace, clock):
        return True
    if not signal_group(pgid, signal.SIGKILL):
        return True
    return wait_group_gone(pgid, REAP_WAIT, clock)
