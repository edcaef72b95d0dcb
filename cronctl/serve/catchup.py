"""The catch-up policy applied to slots that passed unseen (README.md#what-serve-guarantees):
while serve was not running, while it was busy, or when the wall clock jumped forward."""

from __future__ import annotations

import logging
from datetime import datetime

from cronctl import timefmt
from cronctl.records import Trigger
from cronctl.serve import plan
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
) -> datetime | None:
    """Apply the task's catch-up policy to `slots` that passed unseen.

    `then` is a newer slot due now as a plain scheduled run; returns it unless the
    policy took it over (under `all` it runs after the caught-up slots, in order).
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
        log.info("task %s: %s slots passed %s; recorded as missed", task.name, count, why)
        recorder.record_missed(task, decision.missed, f"the slot passed {why}")
    if decision.run:
        log.info(
            "task %s: catching up %s that passed %s",
            task.name,
            timefmt.counted(len(decision.run), "slot"),
            why,
        )
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
