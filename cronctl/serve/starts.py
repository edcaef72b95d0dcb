"""Every run the scheduling loop decides to start goes through `Starts`.

First the task's overlap policy (`plan.overlap`): start it, record it `skipped`, queue it behind
the running one, or stop the running one and queue it (`replace`). Then its shared locks
(README "Shared locks"): a run whose lock another run holds is recorded `skipped` (overlap
`skip`) or waits for it, the waiting runs in slot order. Then the parallel limit: at
most `max_parallel` runs go at once (bounded by the open-file limit), more wait for a free
place, in order. The runs decided during one step of the loop are handed to the launcher
together at its end (`flush`). When the last run of a task ends, its catch-up backlog, else its
queued run, starts (`next_waiting`).

On a history several hosts share (README.md#several-serves-one-history), a claim of a `queue`
or `replace` task whose run goes on another host comes back with that host
(`Handle.elsewhere`): that host, which sees every slot too, queues or replaces there; here the
run waits, counted as a run of the task, and its claim is tried again every CLAIM_POLL until
it wins (no run of the task goes on anywhere: that run ended, or its host was declared dead)
or finds its slot taken (the other host ran it).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

from cronctl.clock import Clock
from cronctl.model import Overlap, Task
from cronctl.records import Trigger
from cronctl.runner.locks import HeldLocks, LockFolder, LockTaken, holder_text
from cronctl.runner.requests import RunRequest, StopSignal
from cronctl.serve import plan
from cronctl.serve.taskstate import TaskState
from cronctl.serve.workers import REPLACED_REASON, SHUTDOWN_REASON, Done, Handle
from cronctl.serve.writes import BackgroundWrites

log = logging.getLogger("cronctl.serve")

LOCK_POLL = 0.5
"""Seconds between two tries of the runs that wait for a lock held by another process (a
lock of this serve's own runs is tried again as soon as the run ends)."""
FLEET_LOCK_GRACE = 2.0
"""Seconds a `skip` run waits for a lock held on another host before it is recorded skipped:
every serve takes a run's locks before its claim, so the host that loses a slot's claim holds
the lock for a moment (milliseconds, more on a loaded host) and is no conflict."""
CLAIM_POLL = LOCK_POLL
"""Seconds between two claims of a run whose task runs on another host (a claim is one
round trip under the task's advisory lock)."""
CAP_WARNING_INTERVAL = 300.0
"""Seconds between two warnings that runs wait for a free place."""


def run_request(
    task: Task, trigger: Trigger, *, scheduled_at: datetime | None = None
) -> RunRequest:
    """The request of a run the loop decided on; its stop signal ends it if serve stops."""
    return RunRequest(
        task,
        trigger,
        scheduled_at=None if scheduled_at is None else scheduled_at.astimezone(UTC),
        stop=StopSignal(SHUTDOWN_REASON),
    )


class Launcher(Protocol):
    def launch(self, handles: list[Handle], done: Done) -> None:
        """Start the runs (claim each, then run it); report each end through `done`."""


class Starts:
    """The runs the loop started, by task, from its decision until their completion."""

    def __init__(
        self,
        launcher: Launcher,
        done: Done,
        *,
        clock: Clock,
        recorder: BackgroundWrites,
        max_parallel: int,
        locks: LockFolder | None = None,
    ) -> None:
        self.launcher = launcher
        self.done = done  # where the launcher reports each end
        self.clock = clock
        self.recorder = recorder  # `skipped` rows
        self.max_parallel = max(1, max_parallel)
        self.running: dict[str, list[Handle]] = {}  # by task name; a task without runs has none
        self.active = 0  # launched and not yet completed
        self.waiting: deque[Handle] = deque()  # over max_parallel: launched as others end
        self.started = 0  # runs launched since start, for the SIGUSR1 report
        self.closed = False  # shutting down: nothing new starts
        self._outbox: list[Handle] = []  # decided this step, handed to the launcher at its end
        self._next_warning = 0.0
        self.locks = locks
        # Runs waiting for a shared lock: (slot or decision time, order of arrival, run).
        self.lock_waiting: list[tuple[datetime, int, Handle]] = []
        self._arrivals = 0
        # Runs whose claim was left to the host where their task runs, tried again each
        # CLAIM_POLL (from `_next_claim`, on the monotonic clock).
        self.claim_waiting: list[Handle] = []
        self._next_claim = 0.0
        self._told_elsewhere: set[Handle] = set()  # said once a run, not at every claim
        # When a lock held on another host first refused a run (FLEET_LOCK_GRACE).
        self._refused_at: dict[Handle, float] = {}

    @property
    def polling(self) -> bool:
        """Whether runs wait for something that frees without a word to this serve: a lock
        another process holds, or a run on another host."""
        return bool(self.lock_waiting or self.claim_waiting)

    def of(self, task_name: str) -> list[Handle]:
        """The runs of one task, going or waiting for a free place (empty when none)."""
        return self.running.get(task_name, [])

    def handles(self) -> Iterator[Handle]:
        for handles in self.running.values():
            yield from handles

    def decided_ahead(self, state: TaskState) -> bool:
        """Whether a slot of `state`'s task may be fired before its instant (the loop fires up
        to FIRE_AHEAD early; its job still starts at the instant). Only when nothing the start
        decides on could change by then: a task with a run of its own going, queued or
        waiting, a shared lock or a jitter is decided at its instant, as it always was."""
        task = state.task
        return (
            not self.running.get(task.name)
            and state.queued is None
            and not state.backlog_size
            and not task.lock
            and not task.jitter
        )

    # ---------------------------------------------------------------- overlap

    def start(
        self, state: TaskState, request: RunRequest, chain: frozenset[str] = frozenset()
    ) -> None:
        """Start `request` now, or skip, queue or replace per the task's overlap policy."""
        if self.closed:
            return
        running = self.of(state.task.name)
        decision = plan.overlap(
            state.task.overlap,
            [h.run_id for h in running],
            state.queued is not None,
            is_retry=request.trigger == Trigger.RETRY,
        )
        if decision.action is plan.Action.START:
            self.launch(request, chain)
        elif decision.action is plan.Action.SKIP:
            self._skip(request, decision.reason or "previous run still running")
        elif decision.action is plan.Action.QUEUE:
            log.info(
                "task %s: %s run waits for the running one to end", state.task.name, request.trigger
            )
            state.queued = (request, chain)
        else:  # REPLACE
            if decision.drop_queued and state.queued is not None:
                self._skip(state.queued[0], "replaced by a newer run before it started")
            for handle in running:
                if handle.run_id is None:  # not claimed yet: waits for a lock or another host
                    log.info("task %s: its run not started yet is replaced", state.task.name)
                else:
                    log.info(
                        "task %s: stopping run %s, replaced by a newer run",
                        state.task.name,
                        handle.run_id,
                    )
                handle.stop(REPLACED_REASON)
            state.queued = (request, chain)

    def _skip(self, request: RunRequest, reason: str) -> None:
        self.recorder.record_skipped(request, reason, self.clock.now())

    def next_waiting(self, state: TaskState) -> None:
        """Nothing of the task runs any more: start its catch-up backlog, else its queued run."""
        if self.closed:
            return
        if state.backlog_size:
            self.launch(state.backlog.popleft(), frozenset())
        elif state.queued is not None:
            request, chain = state.queued
            state.queued = None
            self.launch(dataclasses.replace(request, task=state.task), chain)

    def launch(self, request: RunRequest, chain: frozenset[str]) -> None:
        """Start `request` at the end of this step, or when its locks and a place are free."""
        handle = Handle(request, chain)
        self.running.setdefault(handle.task_name, []).append(handle)
        if request.task.lock:
            if self.lock_waiting:  # runs that waited first take a lock just freed first
                self.retry_lock_waiters()
            if not self._take_locks(handle):
                return
        self._admit(handle)

    # ---------------------------------------------------------------- shared locks

    def _take_locks(self, handle: Handle) -> bool:
        """True when `handle` now holds its locks; else it is skipped or waits for them."""
        if self.locks is None:
            return True
        taken = self.locks.try_acquire(
            handle.request.task.lock, holder_text(handle.task_name, "serve")
        )
        if isinstance(taken, HeldLocks):
            self._refused_at.pop(handle, None)
            handle.locks = taken
            handle.request = dataclasses.replace(handle.request, inherit_fds=taken.fds)
            return True
        graced = self._in_fleet_grace(handle, taken)
        if handle.request.task.overlap is Overlap.SKIP and not graced:
            self._forget(handle)
            self._skip(handle.request, taken.reason)
            return False
        if not any(waiting is handle for _, _, waiting in self.lock_waiting):
            if not graced:
                log.info("task %s: waits for its lock: %s", handle.task_name, taken.reason)
            self._arrivals += 1
            when = handle.request.scheduled_at or self.clock.now()
            bisect.insort(self.lock_waiting, (when, self._arrivals, handle))
        return False

    def _in_fleet_grace(self, handle: Handle, taken: LockTaken) -> bool:
        """Whether a lock held on another host may still be that host's hold for this very
        slot, lost to this claim (FLEET_LOCK_GRACE): the run then waits for it instead."""
        if not taken.elsewhere:
            return False
        now = self.clock.monotonic()
        return now - self._refused_at.setdefault(handle, now) < FLEET_LOCK_GRACE

    def retry_lock_waiters(self) -> None:
        """Start the runs whose locks are free now, the earliest slot first: a later run that
        needs the same lock finds it taken again."""
        for entry in list(self.lock_waiting):
            handle = entry[2]
            if handle not in self.running.get(handle.task_name, []):  # stopped meanwhile
                self.lock_waiting.remove(entry)
            elif self._take_locks(handle):
                self.lock_waiting.remove(entry)
                self._admit(handle)

    def drop_lock_waiters(self, task_name: str, why: str) -> None:
        """The task was removed or disabled: its runs waiting for a lock will not start, nor
        those waiting for its run on another host (that host records their slots)."""
        for entry in [e for e in self.lock_waiting if e[2].task_name == task_name]:
            self.lock_waiting.remove(entry)
            self._forget(entry[2])
            self._skip(entry[2].request, f"{why} while it waited for its lock")
        for handle in [h for h in self.claim_waiting if h.task_name == task_name]:
            self.claim_waiting.remove(handle)
            self._forget(handle)

    # ---------------------------------------------------------------- runs on other hosts

    def _wait_for_claim(self, handle: Handle) -> None:
        """`handle`'s claim was left to the host where its task runs: try it again later."""
        if handle not in self._told_elsewhere:
            self._told_elsewhere.add(handle)
            log.info(
                "task %s: %s run waits: a run of it goes on host %s",
                handle.task_name,
                handle.request.trigger,
                handle.elsewhere,
            )
        self.claim_waiting.append(handle)
        handle.elsewhere = None
        if not self._next_claim:
            self._next_claim = self.clock.monotonic() + CLAIM_POLL

    def retry_claim_waiters(self) -> None:
        """Claim again the runs whose task ran on another host, in the order they came."""
        mono = self.clock.monotonic()
        if mono < self._next_claim:
            return
        self._next_claim = 0.0
        waiting, self.claim_waiting = self.claim_waiting, []
        for handle in waiting:
            if handle not in self.running.get(handle.task_name, []):
                continue  # forgotten meanwhile (the task removed)
            stopped = handle.request.stop is not None and handle.request.stop.is_set()
            if stopped or not handle.request.task.lock or self._take_locks(handle):
                self._admit(handle)  # a stopped run ends at its claim, as any other

    # ---------------------------------------------------------------- capacity

    def _admit(self, handle: Handle) -> None:
        if self.active >= self.max_parallel:
            self.waiting.append(handle)
            mono = self.clock.monotonic()
            if mono >= self._next_warning:
                self._next_warning = mono + CAP_WARNING_INTERVAL
                log.warning(
                    "%d jobs run at once, the most the open-file limit allows;"
                    " more wait their turn "
                    "(raise LimitNOFILE= / ulimit -n to allow more)",
                    self.active,
                )
            return
        self._go(handle)

    def _go(self, handle: Handle) -> None:
        self.active += 1
        self.started += 1
        self._outbox.append(handle)

    def flush(self) -> None:
        """Hand this step's new runs to the launcher in one batch (claimed in chunks before
        their threads compete for the interpreter; see ThreadLauncher)."""
        if self.lock_waiting:
            self.retry_lock_waiters()
        if self.claim_waiting:
            self.retry_claim_waiters()
        if self._outbox:
            handles, self._outbox = self._outbox, []
            self.launcher.launch(handles, self.done)

    def completed(self, handle: Handle) -> None:
        """`handle` ended (or never started): its locks are free, its place goes to the
        oldest waiting start."""
        handle.locks.release()
        self.active -= 1
        stopped = handle.request.stop is not None and handle.request.stop.is_set()
        if handle.elsewhere is not None and not self.closed and not stopped:
            self._wait_for_claim(handle)  # still a run of its task, here
        else:
            self._forget(handle)
        while self.waiting and self.active < self.max_parallel:
            waiting = self.waiting.popleft()
            if waiting in self.running.get(waiting.task_name, []):
                self._go(waiting)

    def _forget(self, handle: Handle) -> None:
        self._told_elsewhere.discard(handle)
        self._refused_at.pop(handle, None)
        handles = self.running.get(handle.task_name, [])
        if handle in handles:
            handles.remove(handle)
            if not handles:
                del self.running[handle.task_name]

    # ---------------------------------------------------------------- shutdown

    def close(self, reason: str) -> None:
        """Start nothing new: drop the starts still waiting for a place, and stop the runs
        handed over but not yet claimed (the launcher then does not start them)."""
        self.closed = True
        for handle in self.waiting:  # never launched
            self._forget(handle)
        self.waiting.clear()
        for name in {handle.task_name for _, _, handle in self.lock_waiting}:
            self.drop_lock_waiters(name, reason)
        for handle in self.claim_waiting:  # their runs go on elsewhere, which records them
            self._forget(handle)
        self.claim_waiting.clear()
        for handle in self.handles():
            if handle.run_id is None:
                handle.stop(reason)

    def stop_all(self, reason: str) -> None:
        for handle in self.handles():
            handle.stop(reason)
