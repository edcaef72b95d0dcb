"""Pure scheduling decisions: which slots are due or missed, catch-up, overlap, jitter, jumps,
and what a reload of the task file changed.

Nothing here reads a clock, the database or the task file: every function takes what it needs,
so the rules can be tested exhaustively and cheaply.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cronctl.model import Task
from cronctl.schedule import Schedule

MAX_CATCH_UP = 100
"""At most this many missed slots of one task are recorded (`skip`) or run (`all`)."""
MAX_SCAN = 200_000
"""A bound on schedule steps per search, so no schedule can stall the loop."""
JUMP_THRESHOLD = 1.0
"""Seconds of disagreement between wall-clock and monotonic progress that count as a jump."""
_FIRST_WINDOW = 60.0


def next_slot(schedule: Schedule, moment: datetime) -> datetime | None:
    """Return the schedule's first fire time strictly after `moment`, as a UTC instant.

    Every slot the scheduler handles goes through here. Schedule.next_after answers in the
    task's zone, and Python compares two datetimes of one zone by their wall time, ignoring
    `fold`: 02:00 CET (the second pass of a repeated hour) would sort before 02:30 CEST, and
    adding a timedelta would move the wall time, not the instant. In UTC both are exact.
    """
    slot = schedule.next_after(moment)
    return None if slot is None else slot.astimezone(UTC)


def slots_between(
    schedule: Schedule, after: datetime, until: datetime, limit: int = MAX_CATCH_UP
) -> tuple[list[datetime], int | None]:
    """Return the newest `limit` fire times s with after < s <= until, oldest first.

    The second value is how many such slots there are in all, or None when the search stopped
    after finding `limit` of them (there are at least `limit`). The search walks back from
    `until` in growing windows, so a task that last ran a year ago costs a few hundred steps,
    not one per missed minute.
    """
    if limit <= 0 or until <= after:
        return [], 0
    interval = schedule.interval_seconds
    if interval:
        return _every_slots(schedule, after, until, limit, interval)
    window = _FIRST_WINDOW
    while True:
        start = max(after, until - timedelta(seconds=window))
        found: deque[datetime] = deque(maxlen=limit)
        count = 0
        slot = next_slot(schedule, start)
        while slot is not None and slot <= until and count < MAX_SCAN:
            found.append(slot)
            count += 1
            slot = next_slot(schedule, slot)
        if start == after:
            return list(found), count
        if count >= limit or count >= MAX_SCAN:
            return list(found), None
        window *= 4


def _every_slots(
    schedule: Schedule, after: datetime, until: datetime, limit: int, interval: int
) -> tuple[list[datetime], int]:
    first = next_slot(schedule, after)
    if first is None or first > until:
        return [], 0
    step = timedelta(seconds=interval)
    total = int((until - first) // step) + 1
    skip = max(0, total - limit)
    start = first + skip * step
    return [start + i * step for i in range(total - skip)], total


def first_slot_after(
    schedule: Schedule, moment: datetime, floor: datetime | None = None
) -> datetime | None:
    """Return the first slot strictly after `moment` and after `floor` (the newest slot already
    run: after a clock step back a slot that ran is never due again)."""
    if floor is not None and floor > moment:
        moment = floor
    return next_slot(schedule, moment)


class FirstSlots:
    """`first_slot_after` for many tasks at one instant (serve's start, a reload): tasks that
    share a parsed schedule (the same cron fields or interval, the same zone) share the answer.

    At 100,000 tasks of a few dozen schedules this is a dictionary look-up a task instead of
    a search (docs/performance.md, "100,000 tasks"). `H` schedules are each task's own and
    are searched for each.
    """

    def __init__(self) -> None:
        # (id of the cron fields, interval, zone, instant) -> (the cron fields, the slot); the
        # fields are held so that their id is not reused while the entry lives.
        self._known: dict[tuple[int, int | None, object, datetime], tuple[object, datetime | None]]
        self._known = {}

    def __call__(
        self, schedule: Schedule, moment: datetime, floor: datetime | None = None
    ) -> datetime | None:
        if floor is not None and floor > moment:
            moment = floor
        key = (id(schedule.cron), schedule.interval_seconds, schedule.zone, moment)
        found = self._known.get(key)
        if found is None or found[0] is not schedule.cron:
            found = (schedule.cron, next_slot(schedule, moment))
            self._known[key] = found
        return found[1]


# ------------------------------------------------------------------------------ catch-up


@dataclass(frozen=True)
class CatchUp:
    """What to do with slots that passed unseen: record them `missed`, or run them."""

    run: tuple[datetime, ...] = ()
    missed: tuple[datetime, ...] = ()
    dropped: int = 0  # older slots beyond the cap (or a lower bound of them) left alone


def catch_up(
    policy: str, slots: list[datetime], total: int | None, limit: int = MAX_CATCH_UP
) -> CatchUp:
    """Apply a task's `catch_up` policy to its missed `slots` (oldest first, newest `limit`)."""
    if not slots:
        return CatchUp()
    slots = slots[-limit:]
    beyond = (total - len(slots)) if total is not None else 1  # None: at least one more
    if policy == "once":
        return CatchUp(run=(slots[-1],))
    if policy == "all":
        return CatchUp(run=tuple(slots), dropped=max(0, beyond))
    return CatchUp(missed=tuple(slots), dropped=max(0, beyond))


# ------------------------------------------------------------------------------ overlap


class Action(enum.Enum):
    START = "start"  # nothing of the task runs (or `allow`): start it now
    SKIP = "skip"  # record the new run `skipped`
    QUEUE = "queue"  # start it when the running one ends
    REPLACE = "replace"  # stop the running ones, start it when they ended


@dataclass(frozen=True)
class OverlapDecision:
    action: Action
    reason: str | None = None
    drop_queued: bool = False  # the run already waiting is dropped (recorded skipped)


def overlap(
    policy: str, running_ids: list[int | None], queued: bool, *, is_retry: bool = False
) -> OverlapDecision:
    """Decide what happens to a new run of a task while `running_ids` of it still run.

    `queued` says whether a run of the task already waits. A retry never stops a newer run:
    under `replace` it waits instead.
    """
    if not running_ids or policy == "allow":
        return OverlapDecision(Action.START)
    previous = running_ids[-1]
    still = (
        f"previous run {previous} still running"
        if previous is not None
        else "previous run still running"
    )
    if policy == "queue" or (policy == "replace" and is_retry):
        if queued:
            return OverlapDecision(Action.SKIP, f"{still} and another run is already waiting")
        return OverlapDecision(Action.QUEUE)
    if policy == "replace":
        return OverlapDecision(Action.REPLACE, drop_queued=queued)
    return OverlapDecision(Action.SKIP, still)


# ------------------------------------------------------------------------------ time


def jitter_delay(jitter: int, rng: random.Random) -> float:
    """Return a random delay in [0, jitter) seconds (0 without jitter)."""
    if jitter <= 0:
        return 0.0
    return rng.uniform(0.0, float(jitter)) % float(jitter)


@dataclass(frozen=True)
class Jump:
    """The wall clock moved by `skew` seconds more than the monotonic clock (negative: back).

    `expected` is where the wall clock would be without the jump: slots up to it were due
    anyway; slots between it and the new wall time were jumped over.
    """

    skew: float
    expected: datetime

    @property
    def forward(self) -> bool:
        return self.skew > 0


def detect_jump(
    last_wall: datetime,
    last_mono: float,
    wall: datetime,
    mono: float,
    threshold: float = JUMP_THRESHOLD,
) -> Jump | None:
    """Compare wall-clock and monotonic progress since the last wake; return the jump, if any.

    Suspend and resume shows as a forward jump: Linux's monotonic clock stops while suspended.
    """
    elapsed = mono - last_mono
    skew = (wall - last_wall).total_seconds() - elapsed
    if abs(skew) <= threshold:
        return None
    return Jump(skew=skew, expected=last_wall + timedelta(seconds=elapsed))


@dataclass
class Overdue:
    """Slots of one task found due when the loop looked: the newest runs normally, the rest
    passed unseen (a stalled loop, a jump) and follow the catch-up policy."""

    fire: datetime | None
    passed: list[datetime] = field(default_factory=list)
    passed_total: int | None = 0


def overdue(
    schedule: Schedule, slot: datetime, now: datetime, jumped_after: datetime | None
) -> tuple[Overdue, datetime | None]:
    """Split the due `slot` and any later slots up to `now`; return them and the next slot.

    `jumped_after`: a forward jump happened and slots after this instant were jumped over, so
    they all count as passed (catch-up policy), none fires as a plain scheduled run.
    """
    if jumped_after is None:
        # On time (the usual case): the slot after this one is still to come, so none passed
        # unseen and it is the next slot.
        first = next_slot(schedule, slot)
        if first is None or first > now:
            return Overdue(slot), first
    later, total = slots_between(schedule, slot, now)
    nxt = next_slot(schedule, now) if later else next_slot(schedule, slot)
    if jumped_after is not None:
        passed = [s for s in [slot, *later] if s > jumped_after]
        normal = [s for s in [slot, *later] if s <= jumped_after]
        fire = normal[-1] if normal else None
        count = None if total is None else total + 1 - (1 if fire is not None else 0)
        return Overdue(fire, (normal[:-1] + passed)[-MAX_CATCH_UP:], count), nxt
    if not later:
        return Overdue(slot), nxt
    passed = [slot, *later[:-1]][-MAX_CATCH_UP:]
    return Overdue(later[-1], passed, total), nxt


# ------------------------------------------------------------------------------ reload


class Edit(enum.Enum):
    ADDED = "added"
    CHANGED = "changed"  # settings only: its slots stand
    RETIMED = "retimed"  # schedule, zone or enabled changed: its slots are computed anew


@dataclass(frozen=True)
class TaskChanges:
    """What a new task file changed: tasks removed, then each added or changed task in the
    new file's order (the order the loop applies them in)."""

    removed: tuple[str, ...] = ()
    edits: tuple[tuple[str, Edit], ...] = ()

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(name for name, edit in self.edits if edit is Edit.ADDED)

    @property
    def changed(self) -> tuple[str, ...]:
        """Changed tasks, retimed or not."""
        return tuple(name for name, edit in self.edits if edit is not Edit.ADDED)

    def summary(self) -> str:
        """`added a, b; removed c; changed d`, or "" when no task changed."""
        return "; ".join(
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if names
        )


def retimed(old: Task, new: Task) -> bool:
    """Whether `new` fires at other instants than `old` (its slots must be computed anew)."""
    return (old.schedule, old.timezone, old.enabled) != (new.schedule, new.timezone, new.enabled)


def task_changes(old: Mapping[str, Task], new: Mapping[str, Task]) -> TaskChanges:
    """Compare the tasks in force with a newly loaded set."""
    removed = tuple(name for name in old if name not in new)
    edits: list[tuple[str, Edit]] = []
    for name, task in new.items():
        before = old.get(name)
        if before is None:
            edits.append((name, Edit.ADDED))
        elif before != task:
            edits.append((name, Edit.RETIMED if retimed(before, task) else Edit.CHANGED))
    return TaskChanges(removed, tuple(edits))


def dependents(tasks: Iterable[Task]) -> dict[str, list[str]]:
    """Return, for each task named in an `after`, the enabled tasks to start after it."""
    found: dict[str, list[str]] = {}
    for task in tasks:
        if task.enabled:
            for upstream in task.after:
                found.setdefault(upstream, []).append(task.name)
    return found
