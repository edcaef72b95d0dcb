"""A five-field cron expression: parsed, checked that it can fire, and searched in wall time."""

from __future__ import annotations

from bisect import bisect_left
from datetime import MAXYEAR, datetime, timedelta

from cronctl import timefmt
from cronctl.errors import ScheduleError, excerpt
from cronctl.schedule.days import DayRule, month_lengths
from cronctl.schedule.fields import KINDS, Field, parse_field
from cronctl.schedule.words import MONTH_NAMES, join

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = "minute hour day-of-month month day-of-week"
_MINUTE = timedelta(minutes=1)


class CronSpec:
    """The five fields of a cron expression, with what the search needs precomputed."""

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.minute, self.hour, self.day_of_month, self.month, self.day_of_week = fields
        self.days = DayRule.of(self.day_of_month, self.day_of_week)
        self.minutes = tuple(sorted(self.minute.values))
        self.hours = tuple(sorted(self.hour.values))
        self.months = frozenset(self.month.values)
        # README.md#daylight-saving-time: a task is *wildcard* when its minute or hour field starts
        # with '*': it follows the wall clock as it comes, losing wall times a jump skips and
        # running in both passes of a repeated hour. Otherwise it is *fixed-time*: each matching
        # wall time runs once, even when a clock change skips or repeats it.
        self.wildcard = self.minute.starts_with_star or self.hour.starts_with_star

    def next_wall(self, after: datetime, inclusive: bool = False) -> datetime | None:
        """Return the first matching wall time after `after` (or at it, when `inclusive`).

        Naive wall times, no time zone: a calendar search that skips whole months. None when
        nothing matches before year 10000.
        """
        start = after.replace(second=0, microsecond=0)
        if start < after or not inclusive:
            start += _MINUTE
        year, month, day = start.year, start.month, start.day
        hour, minute = start.hour, start.minute
        while year <= MAXYEAR:
            if month in self.months:
                days = self.days.days_in(year, month)
                i = bisect_left(days, day)
                if i < len(days) and days[i] == day:
                    time = self._time_at_or_after(hour, minute)
                    if time is not None:
                        return datetime(year, month, day, *time)
                    i += 1
                if i < len(days):
                    return datetime(year, month, days[i], self.hours[0], self.minutes[0])
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
            day, hour, minute = 1, 0, 0
        return None

    def _time_at_or_after(self, hour: int, minute: int) -> tuple[int, int] | None:
        i = bisect_left(self.hours, hour)
        if i < len(self.hours) and self.hours[i] == hour:
            j = bisect_left(self.minutes, minute)
            if j < len(self.minutes):
                return hour, self.minutes[j]
            i += 1
        return (self.hours[i], self.minutes[0]) if i < len(self.hours) else None


def _field_count_hint(fields: int) -> str | None:
    if fields > len(KINDS):
        return "no seconds or year field; the command goes in the task's `command`"
    if fields == 1:
        # `cronctl add b * * * * * cmd` unquoted: the shell split the schedule into words (and
        # `*` into file names), so the schedule argument is one field.
        return "quote the schedule so that it is one word: '*/30 * * * *'"
    return None


def parse_cron(text: str, name: str | None) -> CronSpec:
    """Parse five whitespace-separated fields, or a macro standing for them."""
    if text.startswith("@"):
        if text.lower() not in MACROS:
            known = " ".join([*MACROS, "@every DURATION", "@reboot"])
            raise ScheduleError(f"unknown macro '{excerpt(text)}'", hint=f"known macros: {known}")
        text = MACROS[text.lower()]
    parts = text.split()
    if len(parts) != len(KINDS):
        raise ScheduleError(
            f"'{excerpt(text)}' has {timefmt.counted(len(parts), 'field')}; a cron schedule "
            f"has 5: {FIELD_NAMES}",
            hint=_field_count_hint(len(parts)),
        )
    fields = tuple(parse_field(part, kind, name) for part, kind in zip(parts, KINDS, strict=True))
    # Equal fields are one object (fields.parse_field): the same five are the same CronSpec,
    # which holds them, so their ids stay theirs while it is kept.
    key = tuple(map(id, fields))
    spec = _SPECS.get(key)
    if spec is None:
        spec = CronSpec(fields)
        if not spec.days.can_fire(spec.months):
            raise ScheduleError(f"'{excerpt(text)}' never fires: {_why_never(spec)}")
        if len(_SPECS) >= _SPECS_KEPT:
            _SPECS.clear()
        _SPECS[key] = spec
    return spec


_SPECS: dict[tuple[int, ...], CronSpec] = {}
_SPECS_KEPT = 65536


def _why_never(spec: CronSpec) -> str:
    dom, dow = spec.day_of_month, spec.day_of_week
    months = sorted(spec.months)
    longest = max(max(month_lengths(m)) for m in months)
    in_months = join([MONTH_NAMES[m] for m in months], "or") if len(months) < 12 else "any month"
    if dom.values and not dom.month_days and min(dom.values) > longest:
        days = [str(day) for day in sorted(dom.values)]
        subject = f"day {days[0]} does" if len(days) == 1 else f"days {join(days)} do"
        return f"{subject} not occur in {in_months}"
    if not spec.days.restricts_weekdays:
        return f"day-of-month '{dom.text}' selects no day in {in_months}"
    return (
        f"no day in {in_months} matches both day-of-month '{dom.text}' and day-of-week "
        f"'{dow.text}' (they combine by AND because one of them starts with '*')"
    )
