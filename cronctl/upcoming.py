"""What `cronctl upcoming` reports, as data: the next fire times of the tasks, merged in time
order (README.md#watching-live).

Pure: the tasks and the moment are arguments, the last run of a task comes from a function
passed in (called only for the rows returned). Fire times are the scheduler's own
(`Schedule.next_after`, as `list`, `show` and serve compute them): each task's zone, daylight
saving (README.md#daylight-saving-time) and `@every` slots are theirs.

The merge is a heap of one cursor per task, each holding only its next fire time: a row costs
one `next_after` of one task and a heap step, so 10,000 tasks cost one fire time each, not
`count` each sorted together (docs/performance.md#latest-figures).

What is left out: disabled tasks, and `@reboot` tasks (they run when serve starts, at no time
that can be told in advance). A task that also runs `after` others is listed at its own
schedule's times; the runs an `after` link will start depend on another task's success and
are not predicted (`after` is in the JSON). A slot whose jittered start is still pending when
`upcoming` runs is not listed: only slots after now are.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cronctl import timefmt
from cronctl.model import Task
from cronctl.records import Run

DEFAULT_COUNT = 10
# `--within` alone lists every fire time in its window, up to this many (`@every 1s` over a
# day would be 86,400 rows); the caller says when the list was cut.
MAX_ROWS = 10_000


@dataclass(frozen=True)
class Fire:
    """One upcoming start of a task: its slot, in the task's zone, and, with a jitter, the end
    of the window serve starts it in (serve waits a random [0, jitter) after the slot)."""

    task: Task
    at: datetime
    window_end: datetime | None
    summary: str  # the schedule in words, short form
    last: Run | None = None

    @property
    def timezone(self) -> str:
        return self.task.timezone


@dataclass(frozen=True)
class Upcoming:
    fires: list[Fire]
    cut: bool  # more fire times were within the bounds than the rows returned


def is_upcoming(task: Task) -> bool:
    """Whether a task has fire times to list: enabled, and not `@reboot`."""
    return task.enabled and not task.parsed_schedule().is_reboot


def _cursors(tasks: Iterable[Task], now: datetime) -> list[tuple[float, str, datetime, Task]]:
    heap = []
    for task in tasks:
        if not is_upcoming(task):
            continue
        first = task.parsed_schedule().next_after(now)
        if first is not None:
            heap.append((first.timestamp(), task.name, first, task))
    heapq.heapify(heap)
    return heap


def merged_fires(tasks: Iterable[Task], now: datetime) -> Iterator[tuple[datetime, Task]]:
    """Yield (fire time, task) for every upcoming task, in time order; ties by task name.

    Instants are compared as timestamps: two datetimes of one zone compare by wall time, which
    would put 01:00 EST (second pass) before 01:30 EDT (Schedule.next_after says so)."""
    heap = _cursors(tasks, now)
    while heap:
        stamp, name, moment, task = heap[0]
        yield moment, task
        following = task.parsed_schedule().next_after(moment)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.timestamp(), name, following, task))


def upcoming(
    tasks: Iterable[Task],
    now: datetime,
    *,
    count: int | None = DEFAULT_COUNT,
    within: timedelta | None = None,
    last_run: Callable[[str], Run | None] | None = None,
) -> Upcoming:
    """The next fire times of `tasks` after `now`, merged in time order, at most `count` of
    them (None: no count) and none later than `now + within` (None: no bound). With neither,
    the default count. `last_run` gives each listed task's newest run."""
    if count is None and within is None:
        count = DEFAULT_COUNT
    limit = MAX_ROWS if count is None else min(count, MAX_ROWS)
    horizon = None if within is None else now + within
    fires: list[Fire] = []
    cut = False
    last_runs: dict[str, Run | None] = {}
    for moment, task in merged_fires(tasks, now):
        if horizon is not None and moment > horizon:
            break
        if len(fires) >= limit:
            cut = count is None or count > MAX_ROWS
            break
        if last_run is not None and task.name not in last_runs:
            last_runs[task.name] = last_run(task.name)
        end = moment + timedelta(seconds=task.jitter) if task.jitter else None
        summary = task.parsed_schedule().describe(short=True)
        fires.append(Fire(task, moment, end, summary, last_runs.get(task.name)))
    return Upcoming(fires, cut)


def fire_json(fire: Fire) -> dict[str, Any]:
    """One row of `upcoming --json`: times in the task's zone with their offset."""
    zone = fire.timezone
    last = fire.last
    window = None
    if fire.window_end is not None:
        window = {
            "start": timefmt.iso(timefmt.local(fire.at, zone)),
            "end": timefmt.iso(timefmt.local(fire.window_end, zone)),
        }
    return {
        "task": fire.task.name,
        "at": timefmt.iso(timefmt.local(fire.at, zone)),
        "timezone": zone,
        "schedule": fire.task.schedule,
        "means": fire.summary,
        "jitter_seconds": fire.task.jitter,
        "jitter_window": window,
        "after": list(fire.task.after),
        "last_run": None
        if last is None
        else {
            "id": last.id,
            "status": last.status,
            "started_at": timefmt.iso(
                None if last.started_at is None else timefmt.local(last.started_at, zone)
            ),
        },
    }
