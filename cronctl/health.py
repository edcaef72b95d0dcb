"""The data behind `cronctl status`: pure functions of the history, the task file and `now`
(`metrics` reads the same figures: cronctl/metrics.py; `prune`'s report: cronctl/pruning.py).

What "healthy" means (the help of `cronctl status` and the README say the same):

* serve is running: it has a heartbeat row, it has not recorded a stop, its heartbeat is at
  most STALE_AFTER (60 s) old, and, when it ran on this host, its process still exists (a
  serve ended by `kill -9` records no stop; `local_serve_probe` sees it gone at once);
* no run of an enabled task of the task file failed (failed, timed_out, killed, abandoned,
  error) in the last hour; failures of a disabled task, or of a task no longer in the file,
  are listed apart and counted for nothing (while the file is invalid, every task counts);
* no enabled task is overdue (below);
* no enabled task is failing: FAILING_STREAK (2) or more runs in a row failed, a run being one
  trigger with its retries (the streak rules of `cronctl.notify.rules`).

Failures and failing streaks that a task's acknowledgement covers (`cronctl ack`: they ended
before it) are listed as acknowledged and make nothing unhealthy (cronctl/acks.py).

Failures are grouped by task (`FailureGroup`: the failures of the last hour and of the last
day, and the newest of them): a dashboard, not one row per failed run.

Missed runs of the last day and failures of the last day are reported but do not by
themselves make the machine unhealthy (a missed slot means serve was down, which the first
rule already caught while it happened).

Overdue: an enabled task, not `@reboot`, with no run in progress, whose next slot after a
reference instant is more than OVERDUE_AFTER (1 min) plus its jitter in the past. The
reference is the latest of: the task's latest recorded slot (else its latest run), serve's
start, and the task file's last change. Slots before serve started are catch-up's business,
and a task added or re-enabled by an edit is not due before the edit: so neither is reported
as overdue, at the price of not seeing a slot that passed before the file's last edit.

Problems are one line each, for plain output and JSON alike: their times are ISO 8601 to the
second (README.md#a-five-minute-tour), never relative.

An invalid task file is a problem too: serve keeps running the last valid tasks it loaded
(`ServeState.tasks_loaded_at` says since when) while no edit can reach it. Whatever the file
says, the history stays readable: `status` then judges serve and the failures of the last hour
from the history alone (overdue and failing need the tasks' schedules and retries: not judged).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cronctl import timefmt
from cronctl.acks import unseen_last_hour
from cronctl.divergence import Divergence, divergence_json, fleet_divergences, problem_lines
from cronctl.failures import (
    STDERR_HEAD_BYTES,
    Failure,
    FailureCounter,
    FailureGroup,
    ack_json,
    covers,
    failure_groups,
    failure_json,
    first_line,
    group_json,
)
from cronctl.history import (
    Acknowledgements,
    HealthReader,
    RunReader,
    ServeStateRecorder,
    TaskDefinitions,
)
from cronctl.locations import host_name
from cronctl.overdue import Failing, Overdue, RecentRuns, failing_tasks, overdue_tasks
from cronctl.records import FAILURE_STATUSES, ServeState, to_millisecond
from cronctl.shapes import run_json
from cronctl.taskfile import TaskFile

STALE_AFTER = timedelta(seconds=60)
MISSED_WINDOW = timedelta(days=1)
LIST_LIMIT = 100  # failures listed per window, newest first


# --------------------------------------------------------------------------------- status


class MachineHistory(RunReader, HealthReader, ServeStateRecorder, Protocol):
    """What `status` and `metrics` read: runs, the health figures and serve's row."""


class StatusHistory(
    MachineHistory, RecentRuns, FailureCounter, Acknowledgements, TaskDefinitions, Protocol
):
    """What `status` reads: the above, the failures counted per task, the acknowledgements,
    the live hosts' task definitions."""


@dataclass(frozen=True)
class ServeHealth:
    known: bool  # serve has run at least once against this database
    running: bool
    stale: bool
    pid: int | None = None
    hostname: str | None = None
    version: str | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    stopped_at: datetime | None = None
    uptime_seconds: float | None = None
    heartbeat_age_seconds: float | None = None
    gone: bool = False  # its process no longer exists, though it recorded no stop
    tasks_loaded_at: datetime | None = None  # when it last put a valid task file in force
    # A shared history (README.md#more-than-one-machine): how long the others wait for its
    # heartbeat, and when and by which host it was declared dead (its lease ran out).
    lease_seconds: float | None = None
    declared_dead_at: datetime | None = None
    declared_dead_by: str | None = None
    # Another host's serve missing two heartbeats (serve/fleet.py `late_after`): cut off from
    # the database, stopped or its host gone, its lease perhaps not run out yet.
    late: bool = False


@dataclass(frozen=True)
class InvalidTaskFile:
    """A task file that does not load: its path and the loader's one-line error."""

    path: Path
    error: str


@dataclass(frozen=True)
class Missed:
    task: str
    count: int
    latest_slot: datetime | None


@dataclass(frozen=True)
class Health:
    now: datetime
    serve: ServeHealth
    failures_last_hour: list[Failure]
    failures_last_day: list[Failure]
    overdue: list[Overdue]
    missed: list[Missed]
    failing: list[Failing]
    problems: list[str] = field(default_factory=list)
    invalid_task_file: InvalidTaskFile | None = None
    failure_groups: list[FailureGroup] = field(default_factory=list)
    serves: list[ServeHealth] = field(default_factory=list)  # every serve, by host
    divergent: list[Divergence] = field(default_factory=list)  # tasks the live hosts differ on

    @property
    def healthy(self) -> bool:
        return not self.problems


ServeProbe = Callable[[ServeState], "bool | None"]
"""Whether serve's recorded process still exists: True, False, or None when it cannot tell."""


def local_serve_probe(state: ServeState) -> bool | None:
    """Does the serve recorded in `state` still exist? Only a serve that ran on this host and
    recorded no stop is looked at (signal 0 to its pid); for any other, None. The one check
    here that asks the system, passed in by the commands (`status`, `metrics`)."""
    if state.stopped_at is not None or state.hostname != host_name():
        return None
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a process of another user has the pid; serve or not, it exists
        return None
    return True


def serve_health(state: ServeState | None, now: datetime, alive: bool | None = None) -> ServeHealth:
    """serve's state as `status` tells it; `alive` is what a probe said of its process."""
    if state is None:
        return ServeHealth(known=False, running=False, stale=False)
    age = (now - state.heartbeat_at).total_seconds()
    stale = (
        state.stopped_at is not None
        or age > STALE_AFTER.total_seconds()
        or alive is False
        or state.declared_dead_at is not None  # by another host: its lease ran out
    )
    running = not stale
    return ServeHealth(
        known=True,
        running=running,
        stale=stale,
        pid=state.pid,
        hostname=state.hostname,
        version=state.version,
        started_at=state.started_at,
        heartbeat_at=state.heartbeat_at,
        stopped_at=state.stopped_at,
        uptime_seconds=max(0.0, (now - state.started_at).total_seconds()) if running else None,
        heartbeat_age_seconds=max(0.0, age),
        gone=alive is False,
        tasks_loaded_at=state.tasks_loaded_at,
        lease_seconds=state.lease_seconds,
        declared_dead_at=state.declared_dead_at,
        declared_dead_by=state.declared_dead_by,
    )


def probed_serve_health(
    store: ServeStateRecorder, now: datetime, probe: ServeProbe | None
) -> ServeHealth:
    state = store.serve_state()
    alive = probe(state) if probe is not None and state is not None else None
    return serve_health(state, now, alive)


def fleet_health(
    store: ServeStateRecorder, now: datetime, probe: ServeProbe | None, known: ServeHealth
) -> list[ServeHealth]:
    """Every serve of the history, by host (one on a SQLite history); `known` is the one
    already judged (not probed again)."""
    return [
        known
        if (state.hostname, state.pid, state.started_at)
        == (known.hostname, known.pid, known.started_at)
        else _judged_late(serve_health(state, now, probe(state) if probe is not None else None))
        for state in store.serves()
    ]


def _judged_late(serve: ServeHealth) -> ServeHealth:
    return dataclasses.replace(serve, late=True) if _late(serve) else serve


def _fleet_problems(serves: list[ServeHealth], serve: ServeHealth) -> list[str]:
    """The serves of other hosts that are not running without having stopped cleanly."""
    problems = []
    for other in serves:
        if other.hostname == serve.hostname or other.stopped_at is not None:
            continue
        if other.declared_dead_at is not None:
            problems.append(
                f"serve on {other.hostname} was declared dead by {other.declared_dead_by} at"
                f" {timefmt.iso_seconds(other.declared_dead_at)} (no heartbeat for"
                f" {timefmt.span(other.heartbeat_age_seconds or 0)})"
            )
        elif other.stale or other.late:
            problems.append(_late_problem(other))
    return problems


def _late(serve: ServeHealth) -> bool:
    """Whether another host's serve missed two heartbeats (serve/fleet.py `late_after`): cut
    off from the database, stopped, or its host gone; its lease may not have run out yet."""
    from cronctl.serve.fleet import late_after  # light: the lease rule, not serve itself

    lease = serve.lease_seconds
    age = serve.heartbeat_age_seconds
    live = serve.stopped_at is None and serve.declared_dead_at is None
    return live and lease is not None and age is not None and age > late_after(lease)


def _late_problem(serve: ServeHealth) -> str:
    age = serve.heartbeat_age_seconds or 0
    problem = f"serve on {serve.hostname}: its last heartbeat is {timefmt.span(age)} old"
    lease = serve.lease_seconds
    if lease is None:
        return problem
    if age > lease:
        return f"{problem}, past its lease of {lease:g} s"
    return f"{problem}, late (lease {lease:g} s)"


def _failures(store: RecentRuns, since: datetime) -> list[Failure]:
    runs = store.runs(statuses=FAILURE_STATUSES, since=since, limit=LIST_LIMIT)
    heads = store.stderr_heads([r.id for r in runs], STDERR_HEAD_BYTES) if runs else {}
    return [Failure(run, first_line(heads.get(run.id, b""))) for run in runs]


def task_file_changed_at(taskfile: TaskFile | InvalidTaskFile) -> datetime | None:
    try:
        return datetime.fromtimestamp(os.stat(taskfile.path).st_mtime, tz=UTC)
    except OSError:
        return None


def health(
    taskfile: TaskFile | InvalidTaskFile,
    store: StatusHistory,
    now: datetime,
    probe: ServeProbe | None = None,
) -> Health:
    """Return the state of the machine's scheduling: what `cronctl status` shows. `probe`
    tells whether serve's process still exists (`local_serve_probe`). For an invalid task file,
    what the history alone tells, and the file as a problem (see the module docstring)."""
    serve = probed_serve_health(store, now, probe)
    last_day = _failures(store, now - timedelta(days=1))
    # The hour's failures are the newest of the day's (the same order and limit): no second
    # read. The hour starts where a `since` query would start it (at the millisecond).
    hour_ago = to_millisecond(now - timedelta(hours=1))
    last_hour = [
        f for f in last_day if f.run.started_at is not None and f.run.started_at >= hour_ago
    ]
    invalid = taskfile if isinstance(taskfile, InvalidTaskFile) else None
    tasks = [] if isinstance(taskfile, InvalidTaskFile) else list(taskfile.tasks.values())
    overdue = overdue_tasks(
        tasks,
        store,
        now,
        serve_started_at=serve.started_at,
        file_changed_at=task_file_changed_at(taskfile),
    )
    missed = [
        Missed(task, count, latest)
        for task, count, latest in store.missed_counts(now - MISSED_WINDOW)
    ]
    acks = store.acks()
    failing = [
        dataclasses.replace(f, acknowledged=acks.get(f.task))
        if covers(acks.get(f.task), f.last_run)
        else f
        for f in failing_tasks(tasks, store)
    ]
    groups = failure_groups(taskfile, store, now, acks)
    counted_last_hour = unseen_last_hour(groups, last_hour, acks)
    unseen_failing = [f for f in failing if f.acknowledged is None]

    problems = [] if invalid is None else _invalid_file_problems(invalid, serve)
    if not serve.known:
        problems.append("serve has never run with this database")
    elif serve.stopped_at is not None:
        problems.append(
            f"serve is not running (it stopped at {timefmt.iso_seconds(serve.stopped_at)})"
        )
    elif serve.gone:
        problems.append(
            f"serve (pid {serve.pid}) is not running: it ended without recording a stop (killed?)"
        )
    elif serve.stale:
        problems.append(
            f"serve's last heartbeat is {timefmt.span(serve.heartbeat_age_seconds or 0)} old:"
            " it is not running"
        )
    serves = fleet_health(store, now, probe, serve)
    problems += _fleet_problems(serves, serve)
    divergent = fleet_divergences(store, [s.hostname for s in serves if s.running and s.hostname])
    problems += problem_lines(divergent)
    if counted_last_hour:
        problems.append(f"{timefmt.counted(counted_last_hour, 'failed run')} in the last hour")
    if overdue:
        problems.append(
            f"{timefmt.counted(len(overdue), 'task')} overdue: {', '.join(o.task for o in overdue)}"
        )
    if unseen_failing:
        problems.append(
            f"{timefmt.counted(len(unseen_failing), 'task')} failing repeatedly:"
            f" {', '.join(f.task for f in unseen_failing)}"
        )
    report = Health(
        now, serve, last_hour, last_day, overdue, missed, failing, problems, invalid, groups, serves
    )
    return dataclasses.replace(report, divergent=divergent)


def _invalid_file_problems(invalid: InvalidTaskFile, serve: ServeHealth) -> list[str]:
    """The invalid task file as problems: what is wrong, and what serve runs meanwhile."""
    problems = [f"the task file is invalid: {invalid.error}"]
    if serve.running:
        loaded = serve.tasks_loaded_at
        if loaded is None:  # a serve from before load times were recorded
            problems.append("serve keeps running the last valid version of the task file it loaded")
        else:
            problems.append(
                "serve keeps running the version of the task file it loaded at"
                f" {timefmt.iso_seconds(loaded)}"
            )
    return problems


def serve_json(serve: ServeHealth) -> dict[str, Any]:
    return {
        "running": serve.running,
        "pid": serve.pid,
        "hostname": serve.hostname,
        "version": serve.version,
        "started_at": timefmt.iso(serve.started_at),
        "uptime_seconds": None if serve.uptime_seconds is None else round(serve.uptime_seconds, 3),
        "heartbeat_at": timefmt.iso(serve.heartbeat_at),
        "stopped_at": timefmt.iso(serve.stopped_at),
        "stale": serve.stale,
        "tasks_loaded_at": timefmt.iso(serve.tasks_loaded_at),
    }


def fleet_json(serve: ServeHealth) -> dict[str, Any]:
    """What `serves` adds to each serve's keys: its heartbeat's age, lease, death."""
    age = serve.heartbeat_age_seconds
    return {
        "heartbeat_age_seconds": None if age is None else round(age, 3),
        "lease_seconds": serve.lease_seconds,
        "late": serve.late,
        "declared_dead_at": timefmt.iso(serve.declared_dead_at),
        "declared_dead_by": serve.declared_dead_by,
    }


def health_json(report: Health) -> dict[str, Any]:
    serve = report.serve
    return {
        "healthy": report.healthy,
        "problems": list(report.problems),
        "checked_at": timefmt.iso(report.now),
        "serve": serve_json(serve),
        "serves": [serve_json(s) | fleet_json(s) for s in report.serves],
        "task_file": {
            "valid": report.invalid_task_file is None,
            "error": None if report.invalid_task_file is None else report.invalid_task_file.error,
        },
        "failures_by_task": [group_json(g) for g in report.failure_groups],
        "failures_last_hour": [failure_json(f) for f in report.failures_last_hour],
        "failures_last_day": [failure_json(f) for f in report.failures_last_day],
        "overdue": [
            {
                "task": o.task,
                "slot": timefmt.iso(timefmt.local(o.slot, o.timezone)),
                "late_seconds": round(o.late_seconds, 3),
            }
            for o in report.overdue
        ],
        "missed": [
            {"task": m.task, "count": m.count, "latest_slot": timefmt.iso(m.latest_slot)}
            for m in report.missed
        ],
        "failing": [
            {
                "task": f.task,
                "consecutive_failures": f.consecutive,
                "last_run": run_json(f.last_run),
            }
            | ack_json(f.acknowledged)
            for f in report.failing
        ],
        "divergent": [divergence_json(d) for d in report.divergent],
    }
