"""The scheduler: a heap of next fire times, slept on, and the decisions of SPEC section 5.

One thread (the caller of `run`) owns every piece of state here; job threads and signal
handlers only append to `_completions` or set flags, then set `_wake`. Two heaps:

* slots, keyed by wall-clock instant (UTC seconds): the next fire time of each task;
* timers, keyed by the monotonic clock: retries after their delay, starts delayed by jitter.

Each wake compares wall-clock progress with monotonic progress. A disagreement is a clock
step or a suspend and resume: slots jumped over follow the task's catch-up policy; after a
step back nothing is re-run because each task's next slot is computed after the newest slot
it already ran (and the database's unique key on (task, slot) is the last word).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from cronctl import timefmt
from cronctl.clock import Clock
from cronctl.errors import StoreError
from cronctl.listeners import NoEvents, RunEvents
from cronctl.model import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS, Task
from cronctl.records import Status, Trigger
from cronctl.runner.execute import RunRequest, StopSignal, retry_request, should_retry
from cronctl.serve import GRACE, KILL_GRACE, plan
from cronctl.serve.reload import POLL_INTERVAL, SETTLE, TaskFileWatcher
from cronctl.serve.systemd import SystemdNotifier
from cronctl.serve.workers import REPLACED_REASON, SHUTDOWN_REASON, Completion, Done, Handle
from cronctl.store import HistoryStore, SlotTakenError

log = logging.getLogger("cronctl.serve")

HEARTBEAT_INTERVAL = 15.0
POLL_SLACK = 0.1
PRUNE_INTERVAL = 3600.0
STOP_WAIT_MARGIN = 5.0  # seconds beyond kill_grace we wait for stopped jobs to be recorded


class Launcher(Protocol):
    def launch(self, handles: list[Handle], done: Done) -> None:
        """Start the runs (claim each, then run it); report each end through `done`."""


class Recorder(Protocol):
    def submit(
        self, label: str, write: Callable[[HistoryStore], None], *, replace: bool = False
    ) -> None: ...


class TaskState:
    """What the loop knows about one task of the task file."""

    __slots__ = ("backlog", "gen", "last_slot", "next_slot", "queued", "schedule", "task")

    def __init__(self, task: Task, schedule: Any, gen: int) -> None:
        self.task = task
        self.schedule = schedule
        self.gen = gen  # heap entries of older generations are stale
        self.next_slot: datetime | None = None
        self.last_slot: datetime | None = None  # newest slot run, missed or claimed
        self.queued: tuple[RunRequest, frozenset[str]] | None = None  # overlap queue/replace
        self.backlog: deque[RunRequest] = deque()  # catch-up `all`: run one after the other


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _tell(events: RunEvents, task: Task, run: Any) -> None:
    """Report a row that never ran to the listeners; a failing listener must not stop the
    recorder from writing the next rows."""
    try:
        events.run_finished(task, run, final=True)
    except Exception:
        log.exception("a run listener failed on run %s", run.id)


def _newest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


class Scheduler:
    def __init__(
        self,
        tasks: Mapping[str, Task],
        *,
        clock: Clock,
        launcher: Launcher,
        store: Any,  # HistoryStore or SerialStore: read at start-up for each task's newest slot
        recorder: Recorder,
        events: RunEvents | None = None,
        rng: random.Random | None = None,
        systemd: SystemdNotifier | None = None,
        watcher: TaskFileWatcher | None = None,
        grace: float = GRACE,
        kill_grace: float = KILL_GRACE,
        keep_days: int = DEFAULT_KEEP_DAYS,
        max_parallel: int = 100_000,
        on_reload: Callable[[Any], None] | None = None,
    ) -> None:
        self.clock = clock
        self.launcher = launcher
        self.store = store
        self.recorder = recorder
        self.events = events or NoEvents()
        self.rng = rng or random.Random()
        self.systemd = systemd or SystemdNotifier({})
        self.watcher = watcher
        self.grace = grace
        self.kill_grace = kill_grace
        self.keep_days = keep_days
        self.max_parallel = max(1, max_parallel)
        self.on_reload = on_reload  # called with each newly loaded TaskFile (notifier settings)

        self._initial = dict(tasks)
        self.states: dict[str, TaskState] = {}
        self.dependents: dict[str, list[str]] = {}
        self._slots: list[tuple[float, int, str, int, datetime]] = []
        self._timers: list[tuple[float, int, str, str, RunRequest, frozenset[str]]] = []
        self._seq = itertools.count()
        self._gen = itertools.count(1)

        self.running: dict[str, list[Handle]] = {}
        self._active = 0  # launched and not yet completed
        self._waiting: deque[Handle] = deque()  # over max_parallel: launched as others end
        self._completions: deque[Completion] = deque()
        self._outbox: list[Handle] = []  # decided this step, handed to the launcher at its end
        self._wake = threading.Event()

        self._stop_requested = False
        self._hurry = False
        self._reload_requested = False
        self._report_requested = False
        self.stopping = False
        self._last: tuple[datetime, float] | None = None
        self._next_poll = 0.0
        self._next_heartbeat = 0.0
        self._next_prune = 0.0
        self._next_watchdog = 0.0
        self._next_cap_warning = 0.0
        self.started = 0  # runs launched since start, for the SIGUSR1 report

    # ---------------------------------------------------------------- from other threads

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        """First call: shut down gracefully. Second call: skip the grace."""
        if self._stop_requested:
            self._hurry = True
        self._stop_requested = True
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._wake.set()

    def request_report(self) -> None:
        """Log what the loop is doing (SIGUSR1): see `report`."""
        self._report_requested = True
        self._wake.set()

    def _done(self, completion: Completion) -> None:
        self._completions.append(completion)
        self._wake.set()

    # ---------------------------------------------------------------- start-up

    def start(self) -> None:
        """Schedule every task: catch up what passed while serve was down, run @reboot tasks."""
        now = self.clock.now()
        mono = self.clock.monotonic()
        self._last = (now, mono)
        self._next_poll = mono + POLL_INTERVAL
        self._next_heartbeat = mono + HEARTBEAT_INTERVAL
        self._next_prune = mono  # retention at start, then hourly
        self._next_watchdog = mono
        for task in self._initial.values():
            self._add(task, now, startup=True)
        self._initial = {}
        self._rebuild_dependents()
        self._flush()

    def _latest_slot(self, name: str) -> datetime | None:
        try:
            return self.store.latest_slot(name)
        except StoreError as exc:
            log.error("task %s: cannot read its newest slot (%s); no catch-up", name, exc.message)
            return None

    def _add(self, task: Task, now: datetime, *, startup: bool) -> None:
        try:
            schedule = self._schedule_of(task)
        except ValueError as exc:  # validated by the task file; kept safe anyway
            log.error("task %s: schedule not usable: %s", task.name, exc)
            return
        state = TaskState(task, schedule, next(self._gen))
        self.states[task.name] = state
        if not task.enabled:
            return
        if schedule.is_reboot:
            if startup:
                self._start(state, self._request(task, Trigger.REBOOT))
            return
        if startup:
            state.last_slot = self._latest_slot(task.name)
            if state.last_slot is not None and state.last_slot < now:
                slots, total = plan.slots_between(schedule, state.last_slot, now)
                self._catch_up(state, slots, total, "while serve was not running")
        self._schedule_next(state, plan.first_slot_after(schedule, now, state.last_slot))

    def _schedule_of(self, task: Task) -> Any:
        """Return the task's Schedule (parsed once, held by the task itself)."""
        return task.parsed_schedule()

    def _schedule_next(self, state: TaskState, slot: datetime | None) -> None:
        state.next_slot = slot
        if slot is not None:
            heapq.heappush(
                self._slots, (slot.timestamp(), next(self._seq), state.task.name, state.gen, slot)
            )

    def _rebuild_dependents(self) -> None:
        dependents: dict[str, list[str]] = {}
        for state in self.states.values():
            if state.task.enabled:
                for upstream in state.task.after:
                    dependents.setdefault(upstream, []).append(state.task.name)
        self.dependents = dependents

    # ---------------------------------------------------------------- the loop

    def run(self) -> None:
        """Loop until a stop is requested, then shut down (grace, then stop the jobs)."""
        if self._last is None:
            self.start()
        while not self._stop_requested:
            timeout = self.step()
            if timeout > 0 and not self._stop_requested:
                self.clock.sleep(timeout, wake=self._wake)
            self._wake.clear()
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
        self._fire_slots(now, jump.expected if jump is not None and jump.forward else None)
        self._fire_timers(mono)
        self._flush()  # what is due starts first; the rest of the step can wait a moment
        # Up to POLL_SLACK early: a poll due just after a slot rides on the slot's wake-up
        # instead of waking the loop again while the slot's jobs are starting.
        if self._reload_requested or mono >= self._next_poll - POLL_SLACK:
            self._poll_task_file(now, force=self._reload_requested)
            self._reload_requested = False
            settling = self.watcher is not None and self.watcher.settling
            self._next_poll = mono + (SETTLE if settling else POLL_INTERVAL)
        self._housekeeping(now, mono)
        if self._report_requested:
            self._report_requested = False
            for line in self.report(now, mono):
                log.info("%s", line)
        return self._sleep_for(now, mono)

    def report(self, now: datetime, mono: float) -> list[str]:
        """Return the loop's state as log lines: a summary, then one line per task (its next
        slot, runs going with their ids, starts waiting for a free place, timers pending)."""
        timers: dict[str, list[str]] = {}
        for due, _, kind, name, _request, _chain in sorted(self._timers):
            timers.setdefault(name, []).append(f"{kind} in {timefmt.span(max(0.0, due - mono))}")
        waiting: dict[str, int] = {}
        for handle in self._waiting:
            waiting[handle.task] = waiting.get(handle.task, 0) + 1
        lines = [
            f"state: {timefmt.counted(len(self.states), 'task')}, {timefmt.counted(self._active, 'run')} going"
            f" ({len(self._waiting)} waiting for a free place, at most {self.max_parallel}),"
            f" {timefmt.counted(len(self._timers), 'timer')},"
            f" {timefmt.counted(self.started, 'run')} started since serve started"
        ]
        for name in sorted(self.states):
            state = self.states[name]
            parts = []
            if not state.task.enabled:
                parts.append("disabled")
            elif state.next_slot is not None:
                shown = timefmt.local(state.next_slot, state.task.timezone).isoformat()
                parts.append(f"next {shown} ({timefmt.relative(state.next_slot, now)})")
            elif not state.schedule.is_reboot:
                parts.append("no next slot")
            going = self.running.get(name, [])
            if going:
                ids = ", ".join(
                    str(h.run_id) if h.run_id is not None else "starting" for h in going
                )
                parts.append(f"running: run {ids}")
            if waiting.get(name):
                parts.append(f"{waiting[name]} waiting to start")
            if state.queued is not None:
                parts.append("1 queued behind the running one")
            if state.backlog:
                parts.append(f"{len(state.backlog)} catch-up runs to go")
            parts.extend(timers.get(name, []))
            lines.append(f"state: task {name}: {'; '.join(parts) or 'idle'}")
        return lines

    def _sleep_for(self, now: datetime, mono: float) -> float:
        deadline = self._next_poll - mono
        if self._slots:
            deadline = min(deadline, self._slots[0][0] - now.timestamp())
        if self._timers:
            deadline = min(deadline, self._timers[0][0] - mono)
        if self.systemd.watchdog_interval:
            deadline = min(deadline, self._next_watchdog - mono)
        return max(0.0, deadline)

    def _on_jump(self, jump: plan.Jump, now: datetime) -> None:
        direction = "forward" if jump.forward else "back"
        log.warning(
            "the wall clock moved %s by %.1fs (clock step, or suspend and resume);"
            " schedules recomputed",
            direction,
            abs(jump.skew),
        )
        if jump.forward:
            return  # _fire_slots sees the slots jumped over (all due now) and applies catch-up
        # Back: each task's next slot is after its newest slot already run, so nothing repeats;
        # tasks that have not run yet simply wait for their next slot from the new time.
        for state in self.states.values():
            if state.task.enabled and state.next_slot is not None and not state.schedule.is_reboot:
                nxt = plan.first_slot_after(state.schedule, now, state.last_slot)
                if nxt != state.next_slot:
                    state.gen = next(self._gen)
                    self._schedule_next(state, nxt)

    def _fire_slots(self, now: datetime, jumped_after: datetime | None) -> None:
        limit = now.timestamp()
        while self._slots and self._slots[0][0] <= limit:
            _, _, name, gen, slot = heapq.heappop(self._slots)
            state = self.states.get(name)
            if state is None or state.gen != gen or not state.task.enabled:
                continue  # stale entry: the task changed, was removed or disabled
            if state.last_slot is not None and slot <= state.last_slot:
                self._schedule_next(
                    state, plan.first_slot_after(state.schedule, now, state.last_slot)
                )
                continue
            due, nxt = plan.overdue(state.schedule, slot, now, jumped_after)
            fire = due.fire
            if due.passed:
                why = (
                    "when the wall clock jumped"
                    if jumped_after is not None
                    else "while serve was busy"
                )
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
                    fire = self._catch_up(state, due.passed, due.passed_total, why, then=fire)
                state.last_slot = _newest(state.last_slot, due.passed[-1])
            if fire is not None:
                state.last_slot = _newest(state.last_slot, fire)
                self._fire(state, fire)
            self._schedule_next(state, nxt)

    def _fire(self, state: TaskState, slot: datetime) -> None:
        request = self._request(state.task, Trigger.SCHEDULE, scheduled_at=slot)
        delay = plan.jitter_delay(state.task.jitter, self.rng)
        if delay > 0:
            self._push_timer(delay, "start", request)
        else:
            self._start(state, request)

    def _push_timer(
        self, delay: float, kind: str, request: RunRequest, chain: frozenset[str] = frozenset()
    ) -> None:
        due = self.clock.monotonic() + delay
        heapq.heappush(
            self._timers, (due, next(self._seq), kind, request.task.name, request, chain)
        )

    def _fire_timers(self, mono: float) -> None:
        while self._timers and self._timers[0][0] <= mono:
            _, _, kind, name, request, chain = heapq.heappop(self._timers)
            state = self.states.get(name)
            if state is None or not state.task.enabled:
                log.info("task %s: %s dropped, the task is gone or disabled", name, kind)
                continue
            self._start(state, dataclasses.replace(request, task=state.task), chain)

    # ---------------------------------------------------------------- catch-up

    def _catch_up(
        self,
        state: TaskState,
        slots: list[datetime],
        total: int | None,
        why: str,
        then: datetime | None = None,
    ) -> datetime | None:
        """Apply the task's catch-up policy to `slots` that passed unseen.

        `then` is a newer slot due now as a plain scheduled run; returns it unless the
        policy took it over (under `all` it runs after the caught-up slots, in order).
        """
        if not slots:
            return then
        task = state.task
        decision = plan.catch_up(task.catch_up, slots, total)
        state.last_slot = _newest(state.last_slot, slots[-1])
        if decision.missed:
            count = f"{len(decision.missed)}" + (
                f" of {total}" if total and total > len(decision.missed) else ""
            )
            log.info("task %s: %s slots passed %s; recorded as missed", task.name, count, why)
            self._record_missed(task, decision.missed, f"the slot passed {why}")
        if decision.run:
            log.info(
                "task %s: catching up %s that passed %s",
                task.name,
                timefmt.counted(len(decision.run), "slot"),
                why,
            )
            requests = [self._request(task, Trigger.CATCH_UP, scheduled_at=s) for s in decision.run]
            if len(requests) == 1 and then is None:
                self._start(state, requests[0])
            else:
                if then is not None:
                    # Slot order: after a forward jump the slot that was due on time is older
                    # than the slots jumped over, and runs first.
                    requests.append(self._request(task, Trigger.SCHEDULE, scheduled_at=then))
                    requests.sort(key=lambda request: request.scheduled_at)
                    then = None
                state.backlog.extend(requests)
                if not self.running.get(task.name):
                    self._next_waiting(state)
        if decision.dropped and task.catch_up != "once":
            more = f"{decision.dropped}" if total is not None else "more"
            log.warning(
                "task %s: %s older slots passed %s and were left alone (at most %d a task)",
                task.name,
                more,
                why,
                plan.MAX_CATCH_UP,
            )
        return then

    # ---------------------------------------------------------------- starting runs

    def _request(
        self, task: Task, trigger: str, *, scheduled_at: datetime | None = None
    ) -> RunRequest:
        return RunRequest(
            task,
            trigger,
            scheduled_at=None if scheduled_at is None else _utc(scheduled_at),
            stop=StopSignal(SHUTDOWN_REASON),
        )

    def _start(
        self, state: TaskState, request: RunRequest, chain: frozenset[str] = frozenset()
    ) -> None:
        """Start `request` now, or skip, queue or replace per the task's overlap policy."""
        if self.stopping:
            return
        running = self.running.get(state.task.name, [])
        decision = plan.overlap(
            state.task.overlap,
            [h.run_id for h in running],
            state.queued is not None,
            is_retry=request.trigger == Trigger.RETRY,
        )
        if decision.action is plan.Action.START:
            self._launch(request, chain)
        elif decision.action is plan.Action.SKIP:
            self._record_skipped(request, decision.reason or "previous run still running")
        elif decision.action is plan.Action.QUEUE:
            log.info(
                "task %s: %s run waits for the running one to end", state.task.name, request.trigger
            )
            state.queued = (request, chain)
        else:  # REPLACE
            if decision.drop_queued and state.queued is not None:
                self._record_skipped(state.queued[0], "replaced by a newer run before it started")
            for handle in running:
                log.info(
                    "task %s: stopping run %s, replaced by a newer run",
                    state.task.name,
                    handle.run_id,
                )
                handle.stop(REPLACED_REASON)
            state.queued = (request, chain)

    def _launch(self, request: RunRequest, chain: frozenset[str]) -> None:
        handle = Handle(request, chain)
        self.running.setdefault(request.task.name, []).append(handle)
        if self._active >= self.max_parallel:
            self._waiting.append(handle)
            mono = self.clock.monotonic()
            if mono >= self._next_cap_warning:
                self._next_cap_warning = mono + 300
                log.warning(
                    "%d jobs run at once, the most the open-file limit allows;"
                    " more wait their turn "
                    "(raise LimitNOFILE= / ulimit -n to allow more)",
                    self._active,
                )
            return
        self._go(handle)

    def _go(self, handle: Handle) -> None:
        self._active += 1
        self.started += 1
        self._outbox.append(handle)

    def _flush(self) -> None:
        """Hand this step's new runs to the launcher in one batch (claimed in chunks before
        their threads compete for the interpreter; see ThreadLauncher)."""
        if self._outbox:
            handles, self._outbox = self._outbox, []
            self.launcher.launch(handles, self._done)

    def _next_waiting(self, state: TaskState) -> None:
        """Nothing of the task runs any more: start its catch-up backlog, else its queued run."""
        if self.stopping:
            return
        if state.backlog:
            self._launch(state.backlog.popleft(), frozenset())
        elif state.queued is not None:
            request, chain = state.queued
            state.queued = None
            self._launch(dataclasses.replace(request, task=state.task), chain)

    # ---------------------------------------------------------------- runs that ended

    def _drain_completions(self) -> None:
        while self._completions:
            self._completed(self._completions.popleft())

    def _completed(self, completion: Completion) -> None:
        handle = completion.handle
        name = handle.task
        self._forget(handle)
        self._active -= 1
        while self._waiting and self._active < self.max_parallel:
            waiting = self._waiting.popleft()
            if waiting in self.running.get(waiting.task, []):
                self._go(waiting)
        state = self.states.get(name)
        run = completion.run
        if not self.stopping and run is not None and state is not None and state.task.enabled:
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
        if state is not None and name not in self.running:
            self._next_waiting(state)

    def _forget(self, handle: Handle) -> None:
        """Take `handle` out of `running`; a task with nothing running has no entry."""
        handles = self.running.get(handle.task, [])
        if handle in handles:
            handles.remove(handle)
            if not handles:
                del self.running[handle.task]

    def _trigger_dependents(self, name: str, chain: frozenset[str]) -> None:
        for dependent in self.dependents.get(name, ()):
            state = self.states.get(dependent)
            if state is None or not state.task.enabled:
                continue
            if dependent in chain:
                log.warning("task %s: not started after %s: `after` forms a cycle", dependent, name)
                continue
            self._start(state, self._request(state.task, Trigger.AFTER), chain)

    # ---------------------------------------------------------------- rows without a job

    def _record_skipped(self, request: RunRequest, reason: str) -> None:
        task, now = request.task, self.clock.now()
        log.debug("task %s: %s run skipped: %s", task.name, request.trigger, reason)
        events = self.events

        def write(store: HistoryStore) -> None:
            run_id = store.start_run(
                task.name,
                request.trigger,
                started_at=now,
                attempt=request.attempt,
                scheduled_at=request.scheduled_at,
                status=Status.SKIPPED,
                reason=reason,
            )
            store.finish_run(run_id, status=Status.SKIPPED, finished_at=now, reason=reason)
            _tell(events, task, store.get_run(run_id))

        self.recorder.submit(f"skipped run of {task.name}", write)

    def _record_missed(self, task: Task, slots: tuple[datetime, ...], reason: str) -> None:
        events = self.events

        def write(store: HistoryStore) -> None:
            for slot in slots:
                try:
                    run_id = store.start_run(
                        task.name,
                        Trigger.CATCH_UP,
                        started_at=_utc(slot),
                        scheduled_at=_utc(slot),
                        status=Status.MISSED,
                        reason=reason,
                    )
                except SlotTakenError:
                    continue
                _tell(events, task, store.get_run(run_id))

        self.recorder.submit(f"missed slots of {task.name}", write)

    # ---------------------------------------------------------------- reload

    def _poll_task_file(self, now: datetime, *, force: bool) -> None:
        if self.watcher is None:
            return
        loaded = self.watcher.poll(force=force)
        if loaded is not None:
            self.apply(loaded.tasks, now)
            if self.on_reload is not None:
                try:
                    self.on_reload(loaded)
                except Exception:
                    log.exception("a reload listener failed")

    def apply(self, tasks: Mapping[str, Task], now: datetime) -> None:
        """Switch to a new set of tasks; running jobs are left alone."""
        added, removed, changed = [], [], []
        for name in list(self.states):
            if name not in tasks:
                state = self.states.pop(name)
                if state.queued is not None or state.backlog:
                    log.info("task %s: removed; its waiting runs are dropped", name)
                removed.append(name)
        for name, task in tasks.items():
            state = self.states.get(name)
            if state is None:
                self._add(task, now, startup=False)
                added.append(name)
            elif state.task != task:
                changed.append(name)
                self._change(state, task, now)
        self._rebuild_dependents()
        if added or removed or changed:
            parts = [
                f"{label} {', '.join(names)}"
                for label, names in (("added", added), ("removed", removed), ("changed", changed))
                if names
            ]
            log.info("task file reloaded: %s", "; ".join(parts))
        else:
            log.info("task file reloaded: no task changed")
        if self.systemd.enabled:
            self.systemd.status(self.status_line())

    def _change(self, state: TaskState, task: Task, now: datetime) -> None:
        old = state.task
        state.task = task
        timing = (old.schedule, old.timezone, old.enabled) != (
            task.schedule,
            task.timezone,
            task.enabled,
        )
        if not timing:
            return
        try:
            state.schedule = self._schedule_of(task)
        except ValueError as exc:
            log.error("task %s: schedule not usable: %s", task.name, exc)
            return
        state.gen = next(self._gen)  # the old heap entry is stale now
        state.next_slot = None
        if not task.enabled:
            state.queued = None
            state.backlog.clear()
            return
        if state.schedule.is_reboot:
            return  # @reboot runs when serve starts, not when a task file changes
        # A new schedule starts from now: no catch-up of slots it would have had before.
        self._schedule_next(state, plan.first_slot_after(state.schedule, now, state.last_slot))

    # ---------------------------------------------------------------- housekeeping

    def _housekeeping(self, now: datetime, mono: float) -> None:
        if mono >= self._next_heartbeat:
            self._next_heartbeat = mono + HEARTBEAT_INTERVAL
            self.recorder.submit(
                "heartbeat", lambda store, at=now: store.heartbeat(at), replace=True
            )
            if self.systemd.enabled:
                self.systemd.status(self.status_line())
        if mono >= self._next_prune:
            self._next_prune = mono + PRUNE_INTERVAL
            self._prune(now)
        if self.systemd.watchdog_interval and mono >= self._next_watchdog:
            self._next_watchdog = mono + self.systemd.watchdog_interval
            self.systemd.watchdog()

    def _prune(self, now: datetime) -> None:
        keep = {name: state.task.keep_runs for name, state in self.states.items()}
        keep_days = self.keep_days

        def write(store: HistoryStore) -> None:
            removed = store.prune(
                now=now, keep_days=keep_days, keep_runs=keep, default_keep_runs=DEFAULT_KEEP_RUNS
            )
            if removed:
                log.info("retention: removed %d old runs", sum(removed.values()))
            store.checkpoint()

        self.recorder.submit("retention", write, replace=True)

    def status_line(self) -> str:
        enabled = sum(1 for s in self.states.values() if s.task.enabled)
        running = sum(len(h) for h in self.running.values())
        text = f"{timefmt.counted(enabled, 'task')}, {running} running"
        upcoming = [s for s in self.states.values() if s.next_slot is not None]
        if upcoming:
            first = min(upcoming, key=lambda s: s.next_slot)
            at = first.next_slot.astimezone(first.task.parsed_zone).isoformat(timespec="seconds")
            text += f"; next: {first.task.name} at {at}"
        return text

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Start nothing new; wait up to `grace` for running jobs, then stop them."""
        self.stopping = True
        self._slots.clear()
        self._timers.clear()
        for handle in self._waiting:  # never launched
            self._forget(handle)
        self._waiting.clear()
        for state in self.states.values():
            state.queued = None
            state.backlog.clear()
        for handles in self.running.values():
            for handle in handles:
                if handle.run_id is None:  # handed over but not yet claimed: do not start it
                    handle.stop(SHUTDOWN_REASON)
        self._drain_completions()
        if self._active:
            status = f"stopping: waiting up to {self.grace:g}s for {self._active} running jobs"
            log.info("%s", status)
        else:
            status = "stopping"
        self.systemd.stopping(status)
        self._wait_for_jobs(self.grace, hurry_ends=True)
        if self._active:
            log.warning("stopping %d running jobs", self._active)
            for handles in self.running.values():
                for handle in handles:
                    handle.stop(SHUTDOWN_REASON)
            self._wait_for_jobs(self.kill_grace + STOP_WAIT_MARGIN, hurry_ends=False)
        if self._active:
            log.error(
                "%d jobs did not end; their runs will be marked abandoned at the next start",
                self._active,
            )

    def _wait_for_jobs(self, seconds: float, *, hurry_ends: bool) -> None:
        deadline = self.clock.monotonic() + seconds
        while self._active and not (hurry_ends and self._hurry):
            self._drain_completions()
            left = deadline - self.clock.monotonic()
            if not self._active or left <= 0:
                break
            self.clock.sleep(min(left, 1.0), wake=self._wake)
            self._wake.clear()
        self._drain_completions()
