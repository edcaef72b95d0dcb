"""Several serves on one history (README.md#more-than-one-machine): the lease, and what a
heartbeat learns about the others.

Every serve tries every slot; the history's unique slot index lets the first claim win, so
nothing here decides who runs what. What is here is failover: each serve's heartbeat renews
its lease (`serve --lease`, default 30 s) and, on a shared PostgreSQL history, declares dead
every serve whose lease ran out without a clean stop, recording that serve's `running` runs
`abandoned` (cronctl/store/postgres/records.py does both in one transaction, on the
database's clock). A serve that was declared dead and comes back learns it from its own
heartbeat: it says so once, at error level, and goes on; the ends of the runs the others
abandoned are not recorded over (the store's end write only ends a `running` row).

Each serve is judged by its own lease (kept in its row): hosts need not agree on one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from cronctl import timefmt
from cronctl.records import Heartbeat

if TYPE_CHECKING:  # `status` imports this module for `late_after`: kept light
    from cronctl.history import History
    from cronctl.listeners import RunEvents
    from cronctl.model import Task
    from cronctl.serve.taskstate import TaskState

log = logging.getLogger("cronctl.serve")

HEARTBEAT_INTERVAL = 15.0
"""Seconds between heartbeats when the lease allows (serve/upkeep.py beats)."""

# Three heartbeats a lease: a serve stays alive to the others through two lost or late ones
# (a busy database, a loaded host).
BEATS_PER_LEASE = 3
# `status` calls another host's serve late once two of its heartbeats are missing, and never
# sooner than LATE_FLOOR (a loaded host's beat may be a second or two behind).
LATE_BEATS = 2
LATE_FLOOR = 5.0


def heartbeat_interval(lease: float) -> float:
    """How often serve beats for `lease`: HEARTBEAT_INTERVAL, or a third of the lease when
    that is shorter. A dead serve's runs are abandoned within lease + one heartbeat."""
    return min(HEARTBEAT_INTERVAL, lease / BEATS_PER_LEASE)


def late_after(lease: float) -> float:
    """Seconds after which `status` reports a serve with this lease as late: two heartbeats
    missing, at least LATE_FLOOR."""
    return max(LATE_FLOOR, LATE_BEATS * heartbeat_interval(lease))


def report_heartbeat(beat: Heartbeat | None) -> None:
    """Log what a heartbeat found: this serve declared dead meanwhile, serves it declared."""
    if beat is None:
        return
    if beat.declared_dead_at is not None:
        log.error(
            "this serve had been declared dead by host %s at %s (its heartbeat was late by more"
            " than its lease: was it stopped, or cut off from the database?); the runs it had"
            " going were recorded abandoned there and their ends here are not recorded over;"
            " serving on",
            beat.declared_dead_by,
            timefmt.iso_seconds(beat.declared_dead_at),
        )
    for dead in beat.declared:
        log.warning(
            "host %s stopped heartbeating at %s: declared dead, %s recorded abandoned;"
            " its slots are run by the serves left",
            dead.host,
            timefmt.iso_seconds(dead.heartbeat_at),
            timefmt.counted(len(dead.runs), "run"),
        )


def overlap_across_hosts(store: History, tasks: Iterable[Task]) -> None:
    """Tell the claims which tasks' `overlap` holds across hosts (at start and each reload):
    `skip` records the slot `skipped` while the task runs on another host, `queue` and
    `replace` leave the claim to that host and try again (serve/starts.py)."""
    from cronctl.model import Overlap  # here: the module stays light for `status`

    skips: list[str] = []
    waits: list[str] = []
    for task in tasks:
        if task.overlap is Overlap.SKIP:
            skips.append(task.name)
        elif task.overlap in (Overlap.QUEUE, Overlap.REPLACE):
            waits.append(task.name)
    store.skip_while_running_elsewhere(skips)
    store.wait_while_running_elsewhere(waits)


TaskOf = Callable[[str], "Task | None"]
"""The task of this serve's task file by its name (None: it has none of that name)."""


def tell_declared(beat: Heartbeat | None, task_of: TaskOf, events: RunEvents) -> None:
    """Tell the run listeners (notifications) about the runs this heartbeat recorded
    `abandoned` for the serves it declared dead, as about any run that ended: only the
    survivor that declared a serve dead has them, so each is told once across the fleet.
    A run of a task this host's file does not hold is only logged."""
    if beat is None:
        return
    for dead in beat.declared:
        for run in dead.runs:
            task = task_of(run.task)
            if task is None:
                log.warning(
                    "run %s of %s (host %s) abandoned: no task %s here to notify for",
                    run.id,
                    run.task,
                    dead.host,
                    run.task,
                )
                continue
            try:
                events.run_finished(task, run, final=True)
            except Exception:  # a listener must not stop the heartbeats
                log.exception("a run listener failed on run %s", run.id)


def task_lookup(states: Mapping[str, TaskState]) -> TaskOf:
    """`TaskOf` over the scheduler's tasks (read from the recorder's thread: a dict's `get`
    is atomic, and a task removed meanwhile is simply not found)."""

    def task_of(name: str) -> Task | None:
        state = states.get(name)
        return None if state is None else state.task

    return task_of
