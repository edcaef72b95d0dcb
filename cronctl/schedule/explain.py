"""`explain`: what a schedule means, its next fire times, and remarks on cron's rules and DST."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronctl.durations import format_duration
from cronctl.errors import UsageError
from cronctl.schedule.schedule import Schedule
from cronctl.schedule.spec import CronSpec
from cronctl.schedule.words import MONTH_NAMES, WEEKDAY_NAMES, join
from cronctl.schedule.zones import Transition, instant_of, transitions_between, zoned

_MINUTE = timedelta(minutes=1)
_MAX_LISTED_RUNS = 6
# How each field's H values are named in notes: "minute 37", "day 12", "March", "Wednesday".
_HASH_WORDS: tuple[tuple[str, Callable[[int], str]], ...] = (
    ("minute", str),
    ("hour", str),
    ("day", str),
    ("", MONTH_NAMES.__getitem__),
    ("", WEEKDAY_NAMES.__getitem__),
)


@dataclass(frozen=True)
class Explanation:
    """The answer of `cronctl explain`: README.md#json names its JSON keys."""

    expression: str
    timezone: str
    description: str
    next: list[datetime]
    notes: list[str]
    on_whole_minutes: bool = True  # False: the times are shown with their seconds

    def to_json(self) -> dict[str, object]:
        return {
            "expression": self.expression,
            "timezone": self.timezone,
            "description": self.description,
            "next": [time.isoformat() for time in self.next],
            "notes": list(self.notes),
        }


def explain(
    text: str,
    timezone: str = "UTC",
    count: int = 5,
    start: datetime | None = None,
    name: str | None = None,
) -> Explanation:
    """Explain `text` in `timezone`: its meaning and the next `count` fire times after `start`.

    `start` is required (core code never reads the clock); a naive one is a wall time in the zone.
    """
    if start is None:
        raise UsageError("explain needs start, the time to count fire times from")
    schedule = Schedule.parse(text, timezone, name)
    times = schedule.upcoming(start, count)
    if len(times) < count and not schedule.is_reboot:
        # Every schedule that parses fires at least once in 28 years, so fewer times than asked
        # means the end of year 9999, the last instant Python's datetime holds.
        raise UsageError(
            "the fire times asked for go past the year 9999, the last one cronctl can show",
            hint="use an earlier --from or a smaller --count",
        )
    notes = _rule_notes(schedule)
    if times:
        shifts = transitions_between(
            schedule.zone, instant_of(start, schedule.zone), instant_of(times[-1], schedule.zone)
        )
        notes += [_transition_note(schedule, shift) for shift in shifts]
    return Explanation(
        text, schedule.timezone, schedule.describe(), times, notes, schedule.on_whole_minutes
    )


def _rule_notes(schedule: Schedule) -> list[str]:
    if schedule.interval_seconds is not None:
        every = format_duration(schedule.interval_seconds)
        return [
            (
                f"slots are whole multiples of {every} since 1970-01-01 00:00 UTC, so restarts and "
                "daylight saving time do not move them"
            )
        ]
    if schedule.cron is None:
        return ["@reboot has no fire times: the task runs once each time cronctl serve starts"]
    return _day_rule_notes(schedule.cron) + _hash_notes(schedule.cron, schedule.name)


def _day_rule_notes(spec: CronSpec) -> list[str]:
    dom, dow = spec.day_of_month, spec.day_of_week
    if not (spec.days.restricts_dates and spec.days.restricts_weekdays):
        return []  # one of the fields matches every day: nothing to combine
    if spec.days.combine_by_or:
        return [
            (
                f"days combine by OR: day-of-month '{dom.text}' and day-of-week '{dow.text}' are "
                "both restricted, so a day matching either one runs the task (cron's rule)"
            )
        ]
    starred = dom if dom.starts_with_star else dow
    return [
        (
            f"days combine by AND: '{starred.text}' starts with '*', so a day must match both "
            f"day-of-month '{dom.text}' and day-of-week '{dow.text}' (cron's rule)"
        )
    ]


def _hash_notes(spec: CronSpec, name: str | None) -> list[str]:
    notes = []
    for field, (noun, word) in zip(spec.fields, _HASH_WORDS, strict=True):
        for item, values in field.hashed:
            resolved = join([word(value) for value in values])
            if noun:
                resolved = f"{noun if len(values) == 1 else noun + 's'} {resolved}"
            notes.append(f"{item} resolved to {resolved} from the task name '{name}'")
    return notes


def _transition_note(schedule: Schedule, shift: Transition) -> str:
    if shift.is_big_jump:
        return _big_jump_note(schedule, shift)
    zone = schedule.zone
    old_wall, new_wall = shift.at + shift.before, shift.at + shift.after
    old_name = zoned(shift.at - _MINUTE, zone).tzname()
    new_name = zoned(shift.at, zone).tzname()
    verb = "jump" if shift.is_gap else "go back"
    head = (
        f"{old_wall:%Y-%m-%d}: clocks {verb} from {old_wall:%H:%M} {old_name} "
        f"to {new_wall:%H:%M} {new_name}"
    )
    if schedule.cron is None:
        return f"{head}; @every slots are absolute instants, so only their wall-clock times shift"
    first, end = (old_wall, new_wall) if shift.is_gap else (new_wall, old_wall)
    span = f"{first:%H:%M}-{end - _MINUTE:%H:%M}"
    runs = _walls_between(schedule.cron, first, end)
    if not runs:
        repeat = "" if shift.is_gap else f"; {span} happens twice"
        return f"{head}{repeat}; this task has no run in {span}, so it is unaffected"
    its_runs = f"the {_listing(runs)} run" if len(runs) == 1 else f"its runs at {_listing(runs)}"
    if shift.is_gap and schedule.cron.wildcard:
        return f"{head}; wall times {span} do not exist, so {its_runs} are skipped"
    if shift.is_gap:
        once = "fires" if len(runs) == 1 else "fire once,"
        return f"{head}; {its_runs} {once} at {new_wall:%H:%M} {new_name} instead"
    if schedule.cron.wildcard:
        return f"{head}; {span} happens twice; the task fires in both passes ({_listing(runs)})"
    fires = "fires" if len(runs) == 1 else "fire"
    return f"{head}; {span} happens twice; {its_runs} {fires} only in the first pass ({old_name})"


def _big_jump_note(schedule: Schedule, shift: Transition) -> str:
    """The note on a clock change of more than 3 hours, which cron's DST rules leave out: every
    task follows the wall clock (README.md#daylight-saving-time)."""
    old_wall, new_wall = shift.at + shift.before, shift.at + shift.after
    old_name = zoned(shift.at - _MINUTE, schedule.zone).tzname()
    new_name = zoned(shift.at, schedule.zone).tzname()
    hours = abs(shift.after - shift.before) / timedelta(hours=1)
    head = (
        f"{old_wall:%Y-%m-%d}: clocks {'jump' if shift.is_gap else 'go back'} {hours:g} hours, "
        f"from {old_wall:%Y-%m-%d %H:%M} {old_name} to {new_wall:%Y-%m-%d %H:%M} {new_name}; "
        "a change of more than 3 hours is not daylight saving, so every task follows the "
        "wall clock"
    )
    if schedule.cron is None:
        return f"{head}; @every slots are absolute instants, so only their wall-clock times shift"
    first, end = (old_wall, new_wall) if shift.is_gap else (new_wall, old_wall)
    last = end - _MINUTE
    span = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
    if first.date() == last.date():
        span = f"{first:%Y-%m-%d %H:%M} to {last:%H:%M}"
    happen = "do not exist" if shift.is_gap else "happen twice"
    runs = _walls_between(schedule.cron, first, end)
    if not runs:
        return f"{head}; wall times {span} {happen}; this task has no run in them"
    if len(runs) == 1:
        its_runs, verb = f"the {_listing(runs)} run", "is" if shift.is_gap else "fires"
    else:
        its_runs, verb = f"its runs at {_listing(runs)}", "are" if shift.is_gap else "fire"
    outcome = "skipped" if shift.is_gap else "in both passes"
    return f"{head}; wall times {span} {happen}, so {its_runs} {verb} {outcome}"


def _walls_between(spec: CronSpec, first: datetime, end: datetime) -> list[datetime]:
    """Matching wall times in [first, end)."""
    walls = []
    wall = spec.next_wall(first, inclusive=True)
    while wall is not None and wall < end:
        walls.append(wall)
        wall = spec.next_wall(wall)
    return walls


def _listing(walls: list[datetime]) -> str:
    if len(walls) > _MAX_LISTED_RUNS:
        return f"{walls[0]:%H:%M} to {walls[-1]:%H:%M} ({len(walls)} runs)"
    return join([f"{wall:%H:%M}" for wall in walls])
