"""The days of a cron schedule as `OnCalendar=` weekday and date parts (systemd.time(7)).

Each day item becomes one or more alternatives, each a set of weekdays (or any) and a date
after the month: `15` is `-15`, `L` is `~01` and `L-3` is `~04` (`~` counts back from the last
day, at most 28 days: `~28`), `FRI#1` is `Fri -01..07`, `5L` is `Fri ~07/1` (the last seven
days), `LW` is `Mon..Fri ~01` or `Fri ~02,03` (a Friday one or two days before a last day that
falls on a weekend), `15W` is `Mon..Fri -15`, `Fri -14` or `Mon -16`. A nearest weekday from
the 28th on depends on the month's length (`30W` moves to the 29th in April, not in May) and
`L-nW` on both, so they have no exact equivalent: NotExportable, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from cronctl.export import NotExportable, compress

if TYPE_CHECKING:
    from cronctl.schedule.fields import Field

WEEKDAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONDAY_FIRST = (1, 2, 3, 4, 5, 6, 0)  # systemd orders weekdays Mon..Sun
_ALL_WEEKDAYS = frozenset(range(7))
_MONDAY_TO_FRIDAY = frozenset(range(1, 6))
_FRIDAY, _MONDAY = frozenset({5}), frozenset({1})
_MAX_FROM_END = 28  # systemd refuses `~29` and above
# The nearest weekday of day n moves within n-1..n+1, or to the 3rd for the 1st: exact while
# n + 1 exists in every month, so that n is never a month's last day.
_LAST_NEAREST_DAY = 27
CalendarDay: TypeAlias = tuple[str | None, str]  # (weekday part or None, date part)


def two(values: Iterable[int], low: int, high: int) -> str:
    return compress(values, low, high, sep="..", width=2)


def weekday_names(values: Iterable[int]) -> str:
    """Return cron weekdays (0 = Sunday) in systemd's Mon..Sun notation: `Mon..Fri`, `Sat,Sun`."""
    positions = sorted(_MONDAY_FIRST.index(v) for v in set(values))
    parts: list[str] = []
    start = previous = positions[0]
    for value in [*positions[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        names = [WEEKDAY_NAMES[_MONDAY_FIRST[p]] for p in range(start, previous + 1)]
        parts.append(f"{names[0]}..{names[-1]}" if len(names) >= 3 else ",".join(names))
        if value is not None:
            start = previous = value
    return ",".join(parts)


@dataclass(frozen=True)
class _Day:
    """One alternative: the weekdays it is limited to (None: any) and the date after the month
    (`-01,15`, `~01`, `-*`); `days` are its days of the month when it names them."""

    weekdays: frozenset[int] | None
    date: str
    days: frozenset[int] | None = None


def calendar_days(dom: Field, dow: Field, months: str, combine_by_or: bool) -> list[CalendarDay]:
    """Return (weekday part, date part) pairs that together match the days cron does."""
    dates = _date_alternatives(dom)
    weekdays = _weekday_alternatives(dow)
    if combine_by_or:
        return [_calendar_day(day.weekdays, day.date, months) for day in dates + weekdays]
    days: list[CalendarDay] = []
    for date in dates:
        for weekday in weekdays:
            day = _both(date, weekday, months)
            if day is None:
                continue
            if day == ("", ""):
                raise NotExportable(
                    f"day-of-month '{dom.text}' together with day-of-week '{dow.text}' has no "
                    "OnCalendar equivalent"
                )
            days.append(day)
    return days


def _calendar_day(weekdays: frozenset[int] | None, date: str, months: str) -> CalendarDay:
    names = None if weekdays is None or weekdays == _ALL_WEEKDAYS else weekday_names(weekdays)
    return names, f"*-{months}{date}"


def _nth_window(n: int) -> frozenset[int]:
    return frozenset(range(7 * n - 6, min(7 * n, 31) + 1))


def _date_alternatives(dom: Field) -> list[_Day]:
    dates: list[_Day] = []
    if dom.values:
        dates.append(_Day(None, f"-{two(dom.values, 1, 31)}", dom.values))
    forms = dom.month_days
    for n in sorted(forms.before_last):
        if n + 1 > _MAX_FROM_END:
            raise NotExportable(
                f"'L-{n}' ({n} days before the last day of the month) has no OnCalendar "
                f"equivalent: systemd's '~' counts at most {_MAX_FROM_END} days from the end"
            )
        dates.append(_Day(None, f"~{n + 1:02d}"))
    for n in sorted(forms.nearest_weekday):
        dates += _nearest_weekday(n)
    for n in sorted(forms.nearest_weekday_before_last):
        if n:
            raise NotExportable(
                f"'L-{n}W' (the weekday nearest {n} days before the last day of the month) has "
                "no OnCalendar equivalent"
            )
        dates += [_Day(_MONDAY_TO_FRIDAY, "~01"), _Day(_FRIDAY, "~02,03")]
    return dates


def _nearest_weekday(n: int) -> list[_Day]:
    if n > _LAST_NEAREST_DAY:
        raise NotExportable(
            f"'{n}W' (the weekday nearest the {n}th) has no OnCalendar equivalent: where it "
            "moves depends on the month's length"
        )
    if n == 1:  # a Saturday 1st moves forward to Monday the 3rd, never back
        return [_Day(_MONDAY_TO_FRIDAY, "-01"), _Day(_MONDAY, "-02,03")]
    return [
        _Day(_MONDAY_TO_FRIDAY, f"-{n:02d}"),
        _Day(_FRIDAY, f"-{n - 1:02d}"),
        _Day(_MONDAY, f"-{n + 1:02d}"),
    ]


def _weekday_alternatives(dow: Field) -> list[_Day]:
    weekdays: list[_Day] = []
    if dow.values:
        weekdays.append(_Day(dow.values, "-*"))
    for day, n in sorted(dow.nth_weekdays):
        window = _nth_window(n)
        weekdays.append(_Day(frozenset({day}), f"-{two(window, 1, 31)}", window))
    for day in sorted(dow.last_weekdays):
        weekdays.append(_Day(frozenset({day}), "~07/1"))  # one of the last seven days
    return weekdays


def _both(date: _Day, weekday: _Day, months: str) -> CalendarDay | None:
    """The day matching both (cron's AND), None when no day can, ("", "") when systemd
    cannot say it."""
    assert weekday.weekdays is not None
    if weekday.date == "-*":  # plain weekdays: they limit the date's weekdays
        limited = weekday.weekdays if date.weekdays is None else date.weekdays & weekday.weekdays
        return _calendar_day(limited, date.date, months) if limited else None
    if date.date == "-*" and date.weekdays is None:  # every day: the weekday item's own days
        return _calendar_day(weekday.weekdays, weekday.date, months)
    if date.days is None or date.weekdays is not None or weekday.days is None:
        return "", ""
    in_window = date.days & weekday.days
    if not in_window:
        return None
    return _calendar_day(weekday.weekdays, f"-{two(in_window, 1, 31)}", months)
