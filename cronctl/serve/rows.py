"""The rows serve's background writer (`Recorder`, serve/storage.py) writes: of runs that never
ran (`skipped`, `missed`), told to the run listeners once written, and the serve's own chores
(heartbeat, tasks loaded, task definitions, retention, stop, checkpoint). Module functions, not
Recorder methods: tests/serve/fakes.py writes the same rows at once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cronctl.errors import SlotTakenError
from cronctl.history import History
from cronctl.listeners import RunEvents
from cronctl.model import DEFAULT_KEEP_RUNS, Task
from cronctl.model.digest import TaskDigest, task_digests
from cronctl.records import Run, Status, Trigger
from cronctl.runner.requests import RunRequest
from cronctl.serve.arenas import trim_heap
from cronctl.serve.fleet import TaskOf, report_heartbeat, tell_declared

log = logging.getLogger("cronctl.serve")


def write_skipped(
    store: History, events: RunEvents, request: RunRequest, reason: str, now: datetime
) -> None:
    """Record a due run that was not started (overlap policy) and tell the listeners."""
    run_id = store.start_run(
        request.task.name,
        request.trigger,
        started_at=now,
        attempt=request.attempt,
        scheduled_at=request.scheduled_at,
        status=Status.SKIPPED,
        reason=reason,
    )
    run = store.finish_run(run_id, status=Status.SKIPPED, finished_at=now, reason=reason)
    tell(events, request.task, run)


def write_missed(
    store: History, events: RunEvents, task: Task, slots: tuple[datetime, ...], reason: str
) -> None:
    """Record each slot that passed unrun as `missed` (a slot with a run already is left)."""
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
        tell(events, task, store.get_run(run_id))


def tell(events: RunEvents, task: Task, run: Run) -> None:
    """Report a row that never ran to the listeners; a failing listener must not stop the
    recorder from writing the next rows."""
    try:
        events.run_finished(task, run, final=True)
    except Exception:
        log.exception("a run listener failed on run %s", run.id)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def heartbeat(now: datetime, events: RunEvents, task_of: TaskOf, store: History) -> None:
    beat = store.heartbeat(now)  # serve/fleet.py: the lease and the others
    report_heartbeat(beat)
    tell_declared(beat, task_of, events)


def no_task(name: str) -> Task | None:
    """The Recorder's `task_of` until serve has its tasks: none known."""
    del name
    return None


def tasks_loaded(now: datetime, store: History) -> None:
    store.tasks_loaded(now)


def task_definitions(
    tasks: tuple[Task, ...], now: datetime, digests: dict[str, TaskDigest], store: History
) -> None:
    if not digests:  # kept for the write's next attempt, if the database refuses this one
        digests.update(task_digests(tasks))
    changed = store.record_definitions(digests, now=now)
    log.debug("task definitions recorded: %d of %d rows written", changed, len(tasks))
    digests.clear()
    # What the digests and rows took goes back to the system: at 100,000 tasks, serve held
    # 138 MB 5 s after READY without this, 126 MB with it (121 MB before digests; medians).
    trim_heap()


def retention(now: datetime, keep_days: int, keep_runs: dict[str, int], store: History) -> None:
    removed = store.prune(
        now=now, keep_days=keep_days, keep_runs=keep_runs, default_keep_runs=DEFAULT_KEEP_RUNS
    )
    if removed:
        log.info("retention: removed %d old runs", sum(removed.values()))
    store.checkpoint()


def serve_stopped(now: datetime, store: History) -> None:
    store.serve_stopped(now)


def checkpoint(store: History) -> None:
    store.checkpoint()
