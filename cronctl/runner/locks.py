"""Shared locks (the `lock` key; README "Shared locks"): tasks that name the same lock never
run at the same time, whether serve or `cronctl run-now` starts them.

A lock is an flock(2) on `<state folder>/locks/NAME.lock`, held from before the job starts
until it ends. Why a file lock: the kernel releases it when its holder is gone however it
ended, so a killed serve or run-now leaves no stale lock, with nothing to clean up at the next
start. Each acquisition opens the file anew, so two runs of one serve exclude each other as
two processes do. The job inherits the lock's descriptor (`HeldLocks.fds`): if serve dies
while the job runs on, the lock stays held until the job ends too, so nothing that shares it
can start beside an orphaned job.

The holder writes who it is into the file, so that a run that finds the lock taken can say
by whom ("task 'db-dump' (serve, pid 4242)").

On a PostgreSQL history several hosts share, a lock is also held across them
(`LockFolder(fleet=...)`, a `FleetLocks` of the store: cronctl/store/postgres/locks.py), taken
after the flocks and freed with them: the flock still binds this host's `run-now` and a job
that outlived its serve, the advisory lock the other hosts. A lock held on another host is
refused as one held here, naming that host ("lock 'db' is held by host web-2 (serve, pid
4242)").
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cronctl.clock import Clock
from cronctl.errors import LockHeldError
from cronctl.history import FleetLocks
from cronctl.locations import ensure_private_dir, host_name, is_url

LOCKS_FOLDER = "locks"
_HOLDER_BYTES = 512


@dataclass(frozen=True)
class LockTaken:
    """A lock someone else holds: its name and, when its holder said, who that is."""

    name: str
    holder: str
    detail: str | None = None  # the whole reason, where the fleet's lock said it
    elsewhere: bool = False  # held on another host (a PostgreSQL history's lock)

    @property
    def reason(self) -> str:
        return self.detail or f"lock '{self.name}' is held by {self.holder}"


@dataclass
class HeldLocks:
    """Locks this process holds for one run; `release` (or the end of the process) frees them."""

    descriptors: dict[str, int] = field(default_factory=dict)
    fleet: FleetLocks | None = None  # where `fleet_names` are held across hosts
    fleet_names: tuple[str, ...] = ()

    @property
    def fds(self) -> tuple[int, ...]:
        return tuple(self.descriptors.values())

    def release(self) -> None:
        fleet, names, self.fleet_names = self.fleet, self.fleet_names, ()
        if fleet is not None and names:
            fleet.unlock(names)
        descriptors, self.descriptors = self.descriptors, {}
        for fd in descriptors.values():
            os.close(fd)  # closing our descriptor ends our hold (the job's copy ends with it)


NO_LOCKS = HeldLocks()


class LockFolder:
    """The lock files of one state folder."""

    def __init__(self, state_dir: Path, *, fleet: FleetLocks | None = None) -> None:
        self.folder = state_dir / LOCKS_FOLDER
        self.fleet = fleet

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()

    def try_acquire(self, names: Iterable[str], holder: str) -> HeldLocks | LockTaken:
        """Take every lock of `names` now, or none of them: the first one taken by someone
        else is returned instead. Names are taken in sorted order, so two runs needing the
        same two locks cannot each hold one and wait for the other."""
        wanted = sorted(set(names))
        if not wanted:
            return HeldLocks()
        ensure_private_dir(self.folder)
        held = HeldLocks()
        for name in wanted:
            fd = os.open(
                self.folder / f"{name}.lock",
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                taken = _taken(name, fd) if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
                os.close(fd)
                held.release()
                if taken is None:
                    raise
                return taken
            held.descriptors[name] = fd
            _write_holder(fd, holder)
        if self.fleet is not None:
            refused = self.fleet.try_lock(wanted)
            if refused is not None:
                held.release()
                return LockTaken(wanted[0], "another host", refused, elsewhere=True)
            held.fleet, held.fleet_names = self.fleet, tuple(wanted)
        return held

    def acquire(
        self,
        names: Iterable[str],
        holder: str,
        *,
        clock: Clock,
        stop: threading.Event | None = None,
        poll: float = 0.2,
    ) -> HeldLocks | None:
        """Wait until every lock of `names` is free and take them; None when `stop` (an Event)
        was set first."""
        while True:
            result = self.try_acquire(names, holder)
            if isinstance(result, HeldLocks):
                return result
            if clock.sleep(poll, wake=stop):
                return None


def _taken(name: str, fd: int) -> LockTaken:
    try:
        text = os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return LockTaken(name, text or "another run")


def _write_holder(fd: int, holder: str) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8", "replace")[:_HOLDER_BYTES], 0)
    except OSError:
        pass  # the lock holds without its note; a waiter then says "another run"


def holder_text(task: str, program: str) -> str:
    """How a holder names itself in its lock files."""
    return f"task '{task}' ({program}, pid {os.getpid()})"


def hold_for_manual_run(
    folder: LockFolder,
    task: str,
    names: Iterable[str],
    *,
    wait: bool,
    clock: Clock,
    stop: threading.Event,
    on_wait: Callable[[LockTaken], None],
) -> HeldLocks | None:
    """The locks of a `run-now`, held across its attempts. Taken now, or with `wait` as soon
    as they are free (`on_wait` hears once what it waits for); None when `stop` came first.
    Raises LockHeldError (exit 75) naming the holder when a lock is taken and `wait` is not
    asked for."""
    taken = folder.try_acquire(names, holder_text(task, "run-now"))
    if isinstance(taken, HeldLocks):
        return taken
    if not wait:
        raise LockHeldError(
            f"task '{task}' not run: {taken.reason}", hint="--wait waits until it is free"
        )
    on_wait(taken)
    return folder.acquire(names, holder_text(task, "run-now"), clock=clock, stop=stop)


def fleet_locks_for(
    database: str, clock: Clock, program: str, task: str | None = None
) -> FleetLocks | None:
    """The locks across hosts of the history `database` (README.md#shared-locks): a
    PostgreSQL one's advisory locks, named for this host and `program` (and the `task` of a
    run-now), connected at the first lock taken; None for a SQLite file (one host)."""
    if not is_url(database):
        return None
    from cronctl.store.postgres.locks import PgFleetLocks, fleet_holder

    return PgFleetLocks(database, holder=fleet_holder(program, host_name(), task), clock=clock)
