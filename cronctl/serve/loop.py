"""The scheduler: a heap of next fire times, slept on, and the decisions of serve
(README.md#what-serve-guarantees): when a slot fires, catch-up, overlap, retries, clock jumps.

One thread (the caller of `run`) owns every piece of state here; job threads and signal
handlers only hand things to the `Inbox`, which wakes the loop. Two heaps:

* slots, keyed by wall-clock instant (UTC seconds): the next fire time of each task;
* timers, keyed by the monotonic clock: retries after their delay, starts delayed by jitter.

Each wake compares wall-clock progress with monotonic progress. A disagreement is a clock
step or a suspend and resume: slots jumped over follow the task's catch-up policy; after a
step back nothing is re-run because each task's next slot is computed after the newest slot
it already ran (and the database's unique key on (task, slot) is the last word).

The loop decides when a run is due; the rest it delegates: `plan` computes (due and missed
slots, catch-up, overlap, jumps, the reload diff), `Starts` starts runs (overlap policy, the
parallel limit, waiting starts), `Upkeep` does the periodic chores (task file, heartbeat,
retention, watchdog), the background writer (`BackgroundWrites`) writes the rows of runs that
never start, `JobStopper` ends the running jobs at shutdown, and `serve.log` turns a snapshot
of the loop into its report.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from cronctl import timefmt
from cronctl.clock import Clock
from cronctl.errors import StoreError
from cronctl.model import DEFAULT_KEEP_DAYS, Task
from cronctl.records import Run, Status, Trigger
from cronctl.runner.locks import LockFolder
from cronctl.runner.requests import RunRequest, StopSignal, retry_request, should_retry
from cronctl.schedule import Schedule
from cronctl.serve import GRACE, KILL_GRACE, plan
from cronctl.serve import log as serve_log
from cronctl.serve.catchup import after_outage, after_step_back, catch_up, newest
from cronctl.serve.heaps import SlotHeap, TimerHeap
from cronctl.serve.inbox import Inbox
from cronctl.serve.outage import Outage
from cronctl.serve.reload import TaskFileWatcher
from cronctl.serve.renames import RenameFollower, carry_over
from cronctl.serve.starts import LOCK_POLL, Launcher, Starts, run_request
from cronctl.serve.stopping import JobStopper
from cronctl.serve.systemd import SystemdNotifier
from cronctl.serve.taskstate import TaskState, snapshot
from cronctl.serve.upkeep import Upkeep
from cronctl.serve.workers import SHUTDOWN_REASON, Completion, Handle
from cronctl.serve.writes import BackgroundWrites
from cronctl.taskfile import TaskFile

log = logging.getLogger("cronctl.serve")

FIRE_AHEAD = 0.05
"""Seconds before its instant a slot may be fired: long enough for a burst of 500 runs to be
claimed and prepared before their instant on a 2-core machine (docs/performance.md, round 7)."""


class SlotReader(Protocol):
    """What the loop reads of the history, once, at start: where each task's catch-up starts
    (the newest slot that has a run, of each task that has one)."""

    def latest_slots(self, tasks: Collection[str]) -> dict[str, datetime]: ...


class Scheduler:
    """serve's scheduling loop: `start`, then `run` until a stop is requested (see above)."""

    def __init__(
        self,
        tasks: Mapping[str, Task],
        *,
        clock: Clock,
        launcher: Launcher,
        store: SlotReader,
        recorder: BackgroundWrites,
        rng: random.Random | None = None,
        systemd: SystemdNotifier | None = None,
        watcher: TaskFileWatcher | None = None,
        grace: float = GRACE,
        kill_grace: float = KILL_GRACE,
        keep_days: int = DEFAULT_KEEP_DAYS,
        max_parallel: int = 100_000,
        on_reload: Callable[[TaskFile], None] | None = None,
        locks: LockFolder | None = None,
        renames: RenameFollower | None = None,
        outage: Outage | None = None,
        fire_ahead: float = FIRE_AHEAD,
    ) -> None:
        self.clock = clock
        self.fire_ahead = fire_ahead
        self.store = store
        self.recorder = recorder
        self.rng = rng or random.Random()
        systemd = systemd or SystemdNotifier({})
        self.inbox = Inbox()
        self.starts = Starts(
            launcher,
            self.inbox.done,
            clock=clock,
            recorder=recorder,
            max_parallel=max_parallel,
            locks=locks,
        )
        self.upkeep = Upkeep(
            recorder,
            systemd,
            watcher,
            keep_days=keep_days,
            on_reload=on_reload,  # called with each newly loaded TaskFile (notifier settings)
        )
        self.stopper = JobStopper(
            self.starts,
            self.inbox,
            clock,
            systemd,
            grace=grace,
            kill_grace=kill_grace,
            upkeep=self.upkeep,
        )

        self.renames = renames  # tasks renamed by `cronctl rename` (serve/renames.py)
        self.outage = outage  # the database out of reach: its slots caught up after
        if outage is not None:
            outage.wake = self.inbox.wake
        self._initial = dict(tasks)
        self.states: dict[str, TaskState] = {}
        self.dependents: dict[str, list[str]] = {}
        # The `after` links found to close a cycle, each logged once per load of the task file
        # (a cycle of `@every 10s` tasks would otherwise log a warning every 10 s).
        self._cycles_said: set[tuple[str, str]] = set()
        self.slots = SlotHeap()
        self.timers = TimerHeap()
        self._last: tuple[datetime, float] | None = None
        self._latest: dict[str, datetime] = {}  # the newest slots, during `start` only

    # ---------------------------------------------------------------- from other threads

    @property
    def stop_requested(self) -> bool:
        return self.inbox.stop_requested

    def request_stop(self) -> None:
        """First call: shut down gracefully. Second call: skip the grace."""
        self.inbox.request_stop()

    def request_reload(self) -> None:
        self.inbox.request_reload()

    def request_report(self) -> None:
        """Log what the loop is doing (SIGUSR1): see `report`."""
        self.inbox.request_report()

    # ---------------------------------------------------------------- start-up

    def start(self) -> None:
        """Schedule every task: catch up what passed while serve was down, run @reboot tasks."""
        now = self.clock.now()
        mono = self.clock.monotonic()
        self._last = (now, mono)
        self.upkeep.start(mono)
        self._latest = self._latest_slots(self._initial.values())
        first_slots = plan.FirstSlots()
        for task in self._initial.values():
            self._add(task, now, startup=True, first_slot=first_slots)
        self._initial = {}
        self._latest = {}
        self._rebuild_dependents()
        self.starts.flush()

    def _latest_slots(self, tasks: Collection[Task]) -> dict[str, datetime]:
        """Each enabled task's newest slot, in one read (docs/performance.md, "100,000 tasks")."""
        names = [task.name for task in tasks if task.enabled]
        try:
            return self.store.latest_slots(names)
        except StoreError as exc:
            log.error("cannot read the tasks' newest slots (%s); no catch-up", exc.message)
            return {}

    def _add(
        self,
        task: Task,
        now: datetime,
        *,
        startup: bool,
        first_slot: Callable[[Schedule, datetime, datetime | None], datetime | None] = (
            plan.first_slot_after
        ),
    ) -> None:
        try:
            schedule = task.parsed_schedule()  # parsed once, held by the task itself
        except ValueError as exc:  # validated by the task file; kept safe anyway
            log.error("task %s: schedule not usable: %s", task.name, exc)
            return
        state = TaskState(task, schedule, self.slots.new_generation())
        self.states[task.name] = state
        if not task.enabled:
            return
        if schedule.is_reboot:
            if startup:
                self.starts.start(state, run_request(task, Trigger.REBOOT))
            return
        if startup:
            state.last_slot = self._latest.get(task.name)
            if state.last_slot is not None and state.last_slot < now:
                slots, total = plan.slots_between(schedule, state.last_slot, now)
                catch_up(
                    state,
                    slots,
                    total,
                    "while serve was not running",
                    starts=self.starts,
                    recorder=self.recorder,
                )
        self.slots.schedule(state, first_slot(schedule, now, state.last_slot))

    def _rebuild_dependents(self) -> None:
        self.dependents = plan.dependents(state.task for state in self.states.values())
        self._cycles_said = set()

    # ---------------------------------------------------------------- the loop

    def run(self) -> None:
        """Loop until a stop is requested, then shut down (grace, then stop the jobs)."""
        if self._last is None:
            self.start()
        while not self.inbox.stop_requested:
            timeout = self.step()
            if timeout > 0 and not self.inbox.stop_requested:
                self.clock.sleep(timeout, wake=self.inbox.wake)
            self.inbox.wake.clear()
        self.shutdown()

    def step(self) -> float:
        """Do everything that is due now; return how long the loop may sleep."""
        now = self.clock.now()
        mono = self.clock.monotonic()
        jump = None
        if self._last is not None:
            jump = plan.detect_jump(self._last[0], self._last[1], now, mono)
        self._last = (now, mono)
        if jump is not None:
            self._on_jump(jump, now)
        self._drain_completions()
        if self.outage is not None:  # the database is back: catch up what it missed
            after_outage(self.outage, self.states, starts=self.starts, recorder=self.recorder)
        self._fire_slots(now, jump.expected if jump is not None and jump.forward else None)
        self._fire_timers(mono)
        self.starts.flush()  # what is due starts first; the rest of the step can wait a moment
        loaded = self.upkeep.poll_task_file(mono, force=self.inbox.take_reload())
        if loaded is not None:
            renamed = self.renames.pending() if self.renames is not None else {}
            carried = self.apply(loaded.tasks, now, renamed)
            if carried and self.renames is not None:
                self.renames.carried(carried, mono)
            self.recorder.tasks_loaded(now)  # `status` tells which version serve runs
            self.upkeep.reloaded(loaded)
        self.upkeep.chores(now, mono, self.status_line, self._keep_runs)
        if self.renames is not None:
            self.renames.sweep(mono, self.states)  # rows late under a renamed task's old name
        if self.inbox.take_report():
            for line in self.report(now, mono):
                log.info("%s", line)
        return self._sleep_for(now, mono)

    def _sleep_for(self, now: datetime, mono: float) -> float:
        deadline = self.upkeep.seconds_to_next(mono)
        slot = self.slots.next_at()
        if slot is not None:
            deadline = min(deadline, slot - self.fire_ahead - now.timestamp())
        timer = self.timers.next_at()
        if timer is not None:
            deadline = min(deadline, timer - mono)
        if self.starts.polling:  # a lock elsewhere, a run on another host: they end unheard
            deadline = min(deadline, LOCK_POLL)
        return max(0.0, deadline)

    def _on_jump(self, jump: plan.Jump, now: datetime) -> None:
        direction = "forward" if jump.forward else "back"
        log.warning(
            "the wall clock moved %s by %.1fs (clock step, or suspend and resume);"
            " schedules recomputed",
            direction,
            abs(jump.skew),
        )
        if not jump.forward:  # forward: _fire_slots sees the slots jumped over (all due now)
            after_step_back(self.states, self.slots, now)

    def _fire_slots(self, now: datetime, jumped_after: datetime | None) -> None:
        why = "when the wall clock jumped" if jumped_after is not None else "while serve was busy"
        # Slots up to FIRE_AHEAD away are fired now: their runs are claimed and prepared before
        # the instant and spawned at it (docs/architecture.md, "Firing ahead").
        for state, slot in self.slots.due(now.timestamp() + self.fire_ahead, self.states):
            if slot > now and not self.starts.decided_ahead(state):
                self.slots.hold(state, slot, self.fire_ahead)  # decided at its instant
                continue
            name = state.task.name
            if state.last_slot is not None and slot <= state.last_slot:
                self.slots.schedule(
                    state, plan.first_slot_after(state.schedule, now, state.last_slot)
                )
                continue
            due, nxt = plan.overdue(state.schedule, slot, now, jumped_after)
            fire = due.fire
            if due.passed:
                if fire is not None and state.task.catch_up == "once" and fire > due.passed[-1]:
                    # The run of the newest slot, starting now, is the one catch-up run. (After
                    # a forward jump the slot due on time is older than the slots jumped over:
                    # then those get their own catch-up run, after it.)
                    log.info(
                        "task %s: %d older slots passed %s; the run starting now covers them",
                        name,
                        len(due.passed),
                        why,
                    )
                else:
                    fire = catch_up(
                        state,
                        due.passed,
                        due.passed_total,
                        why,
                        fire,
                        starts=self.starts,
                        recorder=self.recorder,
                    )
                state.last_slot = newest(state.last_slot, due.passed[-1])
            if fire is not None:
                state.last_slot = newest(state.last_slot, fire)
                self._fire(state, fire)
            self.slots.schedule(state, nxt)

    def _fire(self, state: TaskState, slot: datetime) -> None:
        request = run_request(state.task, Trigger.SCHEDULE, scheduled_at=slot)
        delay = plan.jitter_delay(state.task.jitter, self.rng)
        if delay > 0:
            self._push_timer(delay, "start", request)
        else:
            self.starts.start(state, request)

    def _push_timer(
        self, delay: float, kind: str, request: RunRequest, chain: frozenset[str] = frozenset()
    ) -> None:
        self.timers.push(self.clock.monotonic() + delay, kind, request, chain)

    def _fire_timers(self, mono: float) -> None:
        for _, _, kind, name, request, chain in self.timers.due(mono):
            state = self.states.get(name)
            if state is None or not state.task.enabled:
                log.info("task %s: %s dropped, the task is gone or disabled", name, kind)
                why = "was removed" if state is None else "was disabled"
                self._unstarted(request, kind, f"the task {why} before its jittered start", mono)
                continue
            self.starts.start(state, dataclasses.replace(request, task=state.task), chain)

    def _unstarted(self, request: RunRequest, kind: str, why: str, due: float) -> None:
        """A jittered start that will never happen is recorded `missed`, so that its slot does
        not vanish without a row (README.md#what-serve-guarantees); `due` is on the monotonic
        clock. A retry has its run's row already: the failed attempt before it."""
        if kind != "start" or request.scheduled_at is None:
            return
        at = self.clock.now() + timedelta(seconds=due - self.clock.monotonic())
        shown = timefmt.local(at, request.task.timezone)
        reason = f"{why} at {shown:%H:%M:%S} {shown.tzname() or ''}".rstrip()
        self.recorder.record_missed(request.task, (request.scheduled_at,), reason)

    # ---------------------------------------------------------------- runs that ended

    def _drain_completions(self) -> None:
        completions = self.inbox.completions
        while completions:
            self._completed(completions.popleft())

    def _completed(self, completion: Completion) -> None:
        handle = completion.handle
        name = handle.task_name
        self.starts.completed(handle)
        state = self.states.get(name)
        run = completion.run
        if not self.starts.closed and run is not None and state is not None and state.task.enabled:
            self._ended(state, handle, run)
        if state is not None and not self.starts.of(name):
            self.starts.next_waiting(state)

    def _ended(self, state: TaskState, handle: Handle, run: Run) -> None:
        """A run of an enabled task ended: its retry when due, the tasks `after` it on success."""
        name = state.task.name
        stopped = handle.request.stop is not None and handle.request.stop.is_set()
        if not stopped and should_retry(run, handle.request.retry_limit):
            attempt = run.attempt + 1
            delay = state.task.retry_delay_for(attempt)
            log.info("task %s: attempt %d of run %s in %ss", name, attempt, run.id, delay)
            retry = dataclasses.replace(
                retry_request(handle.request, attempt),
                stop=StopSignal(SHUTDOWN_REASON),
            )
            self._push_timer(delay, "retry", retry, handle.chain)
        if run.status == Status.SUCCEEDED:
            self._trigger_dependents(name, handle.chain | {name})

    def _trigger_dependents(self, name: str, chain: frozenset[str]) -> None:
        for dependent in self.dependents.get(name, ()):
            state = self.states.get(dependent)
            if state is None or not state.task.enabled:
                continue
            if dependent in chain:
                if (dependent, name) not in self._cycles_said:
                    self._cycles_said.add((dependent, name))
                    log.warning(
                        "task %s: not started after %s: `after` forms a cycle"
                        " (said once until the task file is reloaded)",
                        dependent,
                        name,
                    )
                continue
            self.starts.start(state, run_request(state.task, Trigger.AFTER), chain)

    # ---------------------------------------------------------------- reload

    def apply(
        self, tasks: Mapping[str, Task], now: datetime, renamed: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Switch to a new set of tasks; running jobs are left alone. A task of `renamed`
        (OLD -> NEW) keeps its state under NEW; returns the renames carried over."""
        carried = carry_over(
            self.states, self.starts, self.slots, self.timers, renamed or {}, tasks
        )
        changes = plan.task_changes({name: s.task for name, s in self.states.items()}, tasks)
        for name in changes.removed:
            state = self.states.pop(name)
            self.starts.drop_lock_waiters(name, "removed from the task file")
            if state.queued is not None or state.backlog_size:
                log.info("task %s: removed; its waiting runs are dropped", name)
        for name, edit in changes.edits:
            if edit is plan.Edit.ADDED:
                self._add(tasks[name], now, startup=False)
            else:
                self._change(self.states[name], tasks[name], now, edit is plan.Edit.RETIMED)
        self._rebuild_dependents()
        log.info("task file reloaded: %s", changes.summary() or "no task changed")
        self.upkeep.tell_status(self.status_line)
        return carried

    def _change(self, state: TaskState, task: Task, now: datetime, retimed: bool) -> None:
        state.task = task
        if not retimed:
            return
        try:
            state.schedule = task.parsed_schedule()
        except ValueError as exc:
            log.error("task %s: schedule not usable: %s", task.name, exc)
            return
        self.slots.renew(state)  # the old heap entry is stale now
        state.next_slot = None
        if not task.enabled:
            state.queued = None
            state.drop_backlog()
            self.starts.drop_lock_waiters(task.name, "disabled")
            return
        if state.schedule.is_reboot:
            return  # @reboot runs when serve starts, not when a task file changes
        # A new schedule starts from now: no catch-up of slots it would have had before.
        self.slots.schedule(state, plan.first_slot_after(state.schedule, now, state.last_slot))

    # ---------------------------------------------------------------- reporting

    def _keep_runs(self) -> dict[str, int]:
        return {name: state.task.keep_runs for name, state in self.states.items()}

    def report(self, now: datetime, mono: float) -> list[str]:
        """Return the loop's state as log lines (SIGUSR1): see `serve_log.report`."""
        view = snapshot(self.states, self.starts, self.timers.pending(), mono)
        return serve_log.report(view, now)

    def status_line(self) -> str:
        line = serve_log.status_line(
            ((state.task, state.next_slot) for state in self.states.values()),
            sum(len(handles) for handles in self.starts.running.values()),
        )
        down = self.outage is not None and self.outage.down  # systemd's STATUS= says it too
        return f"the history database is out of reach, nothing starts; {line}" if down else line

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Start nothing new; wait up to `grace` for running jobs, then stop them."""
        self.starts.close(SHUTDOWN_REASON)
        self.slots.clear()
        for due, _, kind, _name, request, _chain in sorted(self.timers.pending()):
            self._unstarted(request, kind, "serve stopped before its jittered start", due)
        self.timers.clear()
        for state in self.states.values():
            state.queued = None
            state.drop_backlog()
        self.stopper.stop_jobs(self._drain_completions)
