"""Schedules in English: a full sentence, and a compact form for a table column.

Descriptions are built from the values each field selects (H already resolved), so they say
what the schedule does, not how it was written: `*/45` in minutes is "at minutes 0 and 45",
because it fires at :00 and :45, 15 minutes apart across the hour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from cronctl.durations import format_duration
from cronctl.schedule.fields import Field
from cronctl.schedule.spec import CronSpec
from cronctl.schedule.words import COUNTING, MONTH_NAMES, WEEKDAY_NAMES, join, ordinal

_MAX_LISTED_TIMES = 6  # up to this many times of day are listed, as "at 09:00 and 17:00"
_MAX_SHORT_TIMES = 3
_NATURAL = {value: value for value in range(60)}
_MONDAY_FIRST = {weekday: (weekday + 6) % 7 for weekday in range(7)}


def describe_cron(spec: CronSpec, short: bool = False) -> str:
    """Return a cron schedule as an English sentence, or in the compact form when `short`."""
    return _short_cron(spec) if short else _sentence(spec)


def describe_every(seconds: int, short: bool = False) -> str:
    if short:
        return f"every {format_duration(seconds)}"
    return f"Every {_spoken_duration(seconds)} (at whole multiples since the Unix epoch)."


def describe_reboot(short: bool = False) -> str:
    return "at serve start" if short else "Once each time cronctl serve starts."


# Full sentences


def _sentence(spec: CronSpec) -> str:
    times, listed = _times(spec)
    months = join(_runs_text(sorted(spec.months), MONTH_NAMES.__getitem__))
    days, named_months = _days(spec, months if len(spec.months) < 12 else None)
    text = " ".join(part for part in (times, days or ("every day" if listed else "")) if part)
    if len(spec.months) < 12 and not named_months:
        both = spec.days.restricts_dates and spec.days.restricts_weekdays
        text += ("," if both else "") + f" in {months}"
    return text[0].upper() + text[1:] + "."


def _times(spec: CronSpec) -> tuple[str, bool]:
    """Return the time-of-day phrase, and whether it lists the times (a daily pattern)."""
    minutes, hours = spec.minutes, spec.hours
    if len(hours) < 24 and len(minutes) * len(hours) <= _MAX_LISTED_TIMES:
        return "at " + join([_clock(h, m) for h in hours for m in minutes]), True
    step = _minute_step(minutes)
    if step is None:
        hours_text = "every hour" if len(hours) == 24 else _hours_phrase(hours)
        return f"at {_minutes_list(minutes)} past {hours_text}", False
    every = "every minute" if step == 1 else f"every {step} minutes"
    if len(hours) < 24 and _is_one_run(hours):
        first, last = _clock(hours[0], minutes[0]), _clock(hours[-1], minutes[-1])
        return f"{every} from {first} through {last}", False
    every += f" from minute {minutes[0]}" if minutes[0] else ""
    return (every if len(hours) == 24 else f"{every} during {_hours_phrase(hours)}"), False


def _minutes_list(minutes: tuple[int, ...]) -> str:
    noun = "minute" if len(minutes) == 1 else "minutes"
    return f"{noun} {join(_runs_text(minutes, str))}"


def _hours_phrase(hours: tuple[int, ...]) -> str:
    step = _hour_step(hours)
    if step is not None:
        start = f" from {hours[0]:02d}:00" if hours[0] else ""
        return f"every {ordinal(step)} hour{start}"
    noun = "hour" if len(hours) == 1 else "hours"
    return f"{noun} {join(_runs_text(hours, str))}"


def _days(spec: CronSpec, months: str | None) -> tuple[str, bool]:
    """Return the day phrase ("on the 1st of the month", "" for every day), and whether it
    names the `months` (when given, for a schedule that runs on dates of those months)."""
    dom, dow = spec.day_of_month, spec.day_of_week
    restricts_dates, restricts_weekdays = spec.days.restricts_dates, spec.days.restricts_weekdays
    if spec.days.combine_by_or:
        if not (restricts_dates and restricts_weekdays):
            return "", False  # either field alone already matches every day
        return f"on {_dates(dom)}, and on {_weekdays(dow)}", False
    if restricts_dates and restricts_weekdays:
        return f"on {_dates(dom)}, if it falls on {_weekdays(dow, alternatives=True)}", False
    if restricts_dates:
        return f"on {_dates(dom, months or 'the month')}", months is not None
    return (f"on {_weekdays(dow)}" if restricts_weekdays else ""), False


def _dates(dom: Field, of: str = "the month") -> str:
    days = sorted(dom.values)
    step = _day_step(days)
    if step is not None and not dom.month_days:
        start = f" from the {ordinal(days[0])}" if days[0] > 1 else ""
        return f"every {ordinal(step)} day of {of}{start}"
    items = _runs_text(days, ordinal)
    if dom.last_day:
        items.append("last day")
    phrases = [f"the {join(items)}"] if items else []
    return f"{join(phrases + _month_day_phrases(dom))} of {of}"


def _month_day_phrases(dom: Field) -> list[str]:
    """Phrases for `L-n`, `nW`, `LW` and `L-nW`: "the weekday nearest the 15th"..."""
    forms = dom.month_days
    phrases = [f"the {_before_last(n)}" for n in sorted(forms.before_last) if n]
    phrases += [f"the weekday nearest the {ordinal(n)}" for n in sorted(forms.nearest_weekday)]
    for n in sorted(forms.nearest_weekday_before_last):
        phrases.append(f"the weekday nearest the {_before_last(n)}" if n else "the last weekday")
    return phrases


def _before_last(days: int) -> str:
    """`L-n` in words: "day before the last day", "day 3 days before the last day"."""
    return "day before the last day" if days == 1 else f"day {days} days before the last day"


def _weekdays(dow: Field, alternatives: bool = False) -> str:
    plain = sorted(dow.values, key=_MONDAY_FIRST.__getitem__)
    items = _runs_text(plain, WEEKDAY_NAMES.__getitem__, order=_MONDAY_FIRST)
    if len(plain) == 1:
        items = [f"{'a' if alternatives else 'every'} {items[0]}"]
    items += _nth_weekdays(dow.nth_weekdays)
    items += [
        f"the last {WEEKDAY_NAMES[w]}"
        for w in sorted(dow.last_weekdays, key=_MONDAY_FIRST.__getitem__)
    ]
    text = join(items, "or" if alternatives else "and")
    return f"{text} of the month" if dow.nth_weekdays or dow.last_weekdays else text


def _nth_weekdays(nth: frozenset[tuple[int, int]]) -> list[str]:
    """Return ["the first and third Friday", ...] for `FRI#1,FRI#3`, by weekday."""
    groups = []
    for weekday in sorted({w for w, _ in nth}, key=_MONDAY_FIRST.__getitem__):
        counts = [COUNTING[n] for w, n in sorted(nth) if w == weekday]
        groups.append(f"the {join(counts)} {WEEKDAY_NAMES[weekday]}")
    return groups


def _spoken_duration(seconds: int) -> str:
    """Return "5 minutes", "2 hours", "90 seconds": the largest unit that divides exactly."""
    units = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))
    size, unit = next((size, unit) for size, unit in units if seconds % size == 0)
    count = seconds // size
    return unit if count == 1 else f"{count} {unit}s"


# Compact forms, for the `cronctl list` column


def _short_cron(spec: CronSpec) -> str:
    times, listed = _short_times(spec)
    days = _short_days(spec)
    months = _compact(sorted(spec.months), lambda m: MONTH_NAMES[m][:3])
    months = months if len(spec.months) < 12 else ""
    if listed:
        if not days and not months:
            return f"daily at {times}"
        return " ".join(part for part in (days or "daily", months, times) if part)
    return ", ".join(part for part in (times, days, months) if part)


def _short_times(spec: CronSpec) -> tuple[str, bool]:
    minutes, hours = spec.minutes, spec.hours
    if len(hours) < 24 and len(minutes) * len(hours) <= _MAX_SHORT_TIMES:
        return ",".join(_clock(h, m) for h in hours for m in minutes), True
    step = _minute_step(minutes)
    if step is None:
        at_minutes = _compact(minutes, lambda m: f":{m:02d}")
        return f"{'hourly' if len(hours) == 24 else _short_hours(hours)} at {at_minutes}", False
    every = "every min" if step == 1 else f"every {step} min"
    if len(hours) < 24 and _is_one_run(hours):
        return f"{every} {_clock(hours[0], minutes[0])}-{_clock(hours[-1], minutes[-1])}", False
    every += f" from :{minutes[0]:02d}" if minutes[0] else ""
    return (every if len(hours) == 24 else f"{every}, {_short_hours(hours)}"), False


def _short_hours(hours: tuple[int, ...]) -> str:
    step = _hour_step(hours)
    if step is None:
        return f"{'hour' if len(hours) == 1 else 'hours'} {_compact(hours, str)}"
    return f"every {step}h" + (f" from {hours[0]:02d}:00" if hours[0] else "")


def _short_days(spec: CronSpec) -> str:
    dom, dow = spec.day_of_month, spec.day_of_week
    dates = _short_dates(dom) if spec.days.restricts_dates else ""
    weekdays = _short_weekdays(dow) if spec.days.restricts_weekdays else ""
    if spec.days.combine_by_or:
        return f"{dates} + {weekdays}" if dates and weekdays else ""
    if dates and weekdays:
        return f"{dates} if {weekdays}"
    return dates or weekdays


def _short_dates(dom: Field) -> str:
    days = sorted(dom.values)
    step = _day_step(days)
    if step is not None:
        return f"every {ordinal(step)} day" + (f" from {ordinal(days[0])}" if days[0] > 1 else "")
    parts = [_compact(days, ordinal)] if days else []
    forms = dom.month_days
    parts += ["last day" if n == 0 else f"last day-{n}" for n in sorted(forms.before_last)]
    parts += [f"wkday near {ordinal(n)}" for n in sorted(forms.nearest_weekday)]
    for n in sorted(forms.nearest_weekday_before_last):
        parts.append(f"wkday near last day-{n}" if n else "last wkday")
    return ",".join(parts)


def _short_weekdays(dow: Field) -> str:
    plain = sorted(dow.values, key=_MONDAY_FIRST.__getitem__)
    parts = [_compact(plain, lambda w: WEEKDAY_NAMES[w][:3], order=_MONDAY_FIRST)] if plain else []
    parts += [f"{ordinal(n)} {WEEKDAY_NAMES[w][:3]}" for w, n in sorted(dow.nth_weekdays)]
    parts += [f"last {WEEKDAY_NAMES[w][:3]}" for w in sorted(dow.last_weekdays)]
    return ",".join(parts)


# Shared helpers


def _step_of(values: Sequence[int], low: int, high: int) -> int | None:
    """Return n when `values` are every n-th value from a start below low+n up to high."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if values[0] - low >= step or list(values) != list(range(values[0], high + 1, step)):
        return None
    return step


def _minute_step(minutes: Sequence[int]) -> int | None:
    """Return n when the task fires every n minutes, evenly, across hour boundaries too.

    n must divide 60: `*/45` fires at :00 and :45, which is not "every 45 minutes".
    """
    if len(minutes) == 60:
        return 1
    step = _step_of(minutes, 0, 59)
    return step if step and 60 % step == 0 else None


def _hour_step(hours: Sequence[int]) -> int | None:
    step = _step_of(hours, 0, 23)
    return step if step and 24 % step == 0 else None


def _day_step(days: Sequence[int]) -> int | None:
    """Return n for "every n-th day of the month" (it restarts each month, so any n counts)."""
    return _step_of(days, 1, 31) if len(days) > 2 else None


def _clock(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _is_one_run(values: tuple[int, ...]) -> bool:
    return values[-1] - values[0] == len(values) - 1


def _runs(values: Sequence[int], order: Mapping[int, int]) -> list[tuple[int, int]]:
    """Group `values` into runs of consecutive positions in `order`."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and order[value] == order[runs[-1][1]] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _runs_text(
    values: Sequence[int], name: Callable[[int], str], order: Mapping[int, int] = _NATURAL
) -> list[str]:
    """Name each value, writing runs of three or more as "a through b"."""
    items = []
    for first, last in _runs(values, order):
        if order[last] - order[first] >= 2:
            items.append(f"{name(first)} through {name(last)}")
        else:
            items += [name(first)] if first == last else [name(first), name(last)]
    return items


def _compact(
    values: Sequence[int], name: Callable[[int], str], order: Mapping[int, int] = _NATURAL
) -> str:
    """Like _runs_text, in the compact form "a-b,c"."""
    return ",".join(item.replace(" through ", "-") for item in _runs_text(values, name, order))
