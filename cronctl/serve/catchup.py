"""The catch-up policy applied to slots that passed unseen (README.md#what-serve-guarantees):
while serve was not running, while it was busy, when the wall clock jumped forward, or while
the history's database could not be reached (`after_outage`, serve/outage.py); and the next
slots after the wall clock stepped back (`after_step_back`: nothing runs twice)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from cronctl import timefmt
from cronctl.records import Trigger
from cronctl.serve import plan
from cronctl.serve.heaps import SlotHeap
from cronctl.serve.outage import Outage
from cronctl.serve.starts import Starts, run_request
from cronctl.serve.taskstate import TaskState
from cronctl.serve.writes import BackgroundWrites

log = logging.getLogger("cronctl.serve")


def newest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def catch_up(
    state: TaskState,
    slots: list[datetime],
    total: int | None,
    why: str,
    then: datetime | None = None,
    *,
    starts: Starts,
    recorder: BackgroundWrites,
    quiet: bool = False,
) -> datetime | None:
    """Apply the task's catch-up policy to `slots` that passed unseen.

    `then` is a newer slot due now as a plain scheduled run; returns it unless the
    policy took it over (under `all` it runs after the caught-up slots, in order). `quiet`:
    the caller logs one line for every task (`after_outage`).
    """
    if not slots:
        return then
    task = state.task
    decision = plan.catch_up(task.catch_up, slots, total)
    state.last_slot = newest(state.last_slot, slots[-1])
    if decision.missed:
        count = f"{len(decision.missed)}" + (
            f" of {total}" if total and total > len(decision.missed) else ""
        )
        if not quiet:
            log.info("task %s: %s slots passed %s; recorded as missed", task.name, count, why)
        recorder.record_missed(task, decision.missed, f"the slot passed {why}")
    if decision.run and not quiet:
        log.info(
            "task %s: catching up %s that passed %s",
            task.name,
            timefmt.counted(len(decision.run), "slot"),
            why,
        )
    if decision.run:
        runs = [(slot, Trigger.CATCH_UP) for slot in decision.run]
        if then is not None:
            # Slot order: after a forward jump the slot that was due on time is older than
            # the slots jumped over, and runs first.
            runs = sorted([*runs, (then, Trigger.SCHEDULE)], key=lambda run: run[0])
            then = None
        requests = [run_request(task, trigger, scheduled_at=slot) for slot, trigger in runs]
        if len(requests) == 1:
            starts.start(state, requests[0])
        else:
            state.backlog.extend(requests)
            if not starts.of(task.name):
                starts.next_waiting(state)
    if decision.dropped and task.catch_up != "once" and not quiet:
        more = f"{decision.dropped}" if total is not None else "more"
        log.warning(
            "task %s: %s older slots passed %s and were left alone (at most %d a task)",
            task.name,
            more,
            why,
            plan.MAX_CATCH_UP,
        )
    return then


def after_outage(
    outage: Outage,
    states: Mapping[str, TaskState],
    *,
    starts: Starts,
    recorder: BackgroundWrites,
) -> None:
    """When the database is reachable again after `outage`: apply each task's catch-up
    policy to its slots left unclaimed, as at serve's start (`skip`: recorded `missed`,
    `once`: the newest runs, `all`: each runs), and log one line of it all. Other hosts may
    catch up the same slots: the unique slot index records and runs each once across them (a
    `missed` row or a claim of a slot that has a row is dropped)."""
    unclaimed = outage.take()
    if unclaimed is None:
        return
    host = outage.host
    began, ended = unclaimed.began, unclaimed.ended
    if began is not None and ended is not None:
        why = (
            f"while the history database was unreachable from host {host}"
            f" (from {timefmt.iso_seconds(began)} to {timefmt.iso_seconds(ended)})"
        )
    else:
        why = f"while host {host} reconnected to the history database"
    outcome = {"missed": 0, "run": 0, "left": 0}
    for name, slots in sorted(unclaimed.slots.items()):
        state = states.get(name)
        if state is None or not state.task.enabled:
            outcome["left"] += unclaimed.total(name)
            continue
        total = unclaimed.total(name)
        decision = plan.catch_up(state.task.catch_up, slots, total)
        outcome["missed"] += len(decision.missed)
        outcome["run"] += len(decision.run)
        outcome["left"] += total - len(decision.missed) - len(decision.run)
        catch_up(state, slots, total, why, starts=starts, recorder=recorder, quiet=True)
    tasks = timefmt.counted(len(unclaimed.slots), "task")
    what = (
        f"{timefmt.counted(unclaimed.count, 'slot')} of {tasks} went unclaimed here:"
        f" {outcome['missed']} to record missed (catch_up skip), {outcome['run']} to run"
        f" (once, all), {outcome['left']} left alone (the older ones under once, beyond"
        f" {plan.MAX_CATCH_UP} a task, or their task is gone); a slot another host recorded"
        " keeps its row"
        if unclaimed.count
        else "no slot went unclaimed"
    )
    if unclaimed.others:  # a retry or an `after` run has no slot to catch up: it is lost
        what += f"; {timefmt.counted(unclaimed.others, 'other run')} (retries, after) not started"
    if began is not None and ended is not None:
        lasted = timefmt.span((ended - began).total_seconds())
        log.info(
            "the history database is back after %s out of reach from host %s (%s to %s); %s",
            lasted,
            host,
            timefmt.iso_seconds(began),
            timefmt.iso_seconds(ended),
            what,
        )
    else:
        log.info("the connection to the history database was lost and opened again; %s", what)


def after_step_back(states: Mapping[str, TaskState], slots: SlotHeap, now: datetime) -> None:
    """The wall clock stepped back to `now`: each task's next slot is after its newest slot
    already run, so nothing repeats; tasks that have not run yet wait for their next slot from
    the new time."""
    for state in states.values():
        if state.task.enabled and state.next_slot is not None and not state.schedule.is_reboot:
            nxt = plan.first_slot_after(state.schedule, now, state.last_slot)
            if nxt != state.next_slot:
                slots.renew(state)
                slots.schedule(state, nxt)
