"""Days counted from the end of the month, and the weekday nearest a day (README.md#schedules).

The forms Quartz, cronsim and Cronos accept beyond Vixie cron, each one item of a list:

- day-of-month `L` (the last day), `L-n` (n days before it), `nW` (the weekday, Monday to
  Friday, nearest day n), `LW` (the last weekday) and `L-nW` (the weekday nearest `L-n`);
- day-of-week `nL` / `FRIL` (the last Friday of the month).

Which days they select depends only on the month's length and the weekday of its 1st, like
every other day rule (days.DayRule keeps one table for each of the 28 shapes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from cronctl.errors import ScheduleError, excerpt

# `L-n` takes n up to 30: L-30 is the 1st of a 31-day month, as in Cronos.
MAX_BEFORE_LAST = 30
_BEFORE_LAST = re.compile(r"L(?:-(?P<n>[0-9]{1,4}))?(?P<w>W)?", re.IGNORECASE)
_NEAREST = re.compile(r"(?P<day>[0-9]{1,4})W", re.IGNORECASE)
SATURDAY, SUNDAY = 6, 0


@dataclass(frozen=True)
class MonthDays:
    """The day-of-month items of a field that count from the end of the month or move to a
    weekday. Offsets count days before the last day (`L` is 0, `L-3` is 3)."""

    before_last: frozenset[int] = frozenset()  # L, L-n
    nearest_weekday: frozenset[int] = frozenset()  # nW: n
    nearest_weekday_before_last: frozenset[int] = frozenset()  # LW (0), L-nW (n)

    def __bool__(self) -> bool:
        return bool(self.before_last or self.nearest_weekday or self.nearest_weekday_before_last)

    def days(self, length: int, first_weekday: int) -> frozenset[int]:
        """The days these items select in a month of `length` days whose 1st is
        `first_weekday` (0 = Sunday)."""
        targets = [length - n for n in self.before_last]
        nearest = [*self.nearest_weekday, *(length - n for n in self.nearest_weekday_before_last)]
        targets += [nearest_weekday(day, length, first_weekday) for day in nearest]
        return frozenset(day for day in targets if day >= 1)


NO_MONTH_DAYS = MonthDays()


def nearest_weekday(day: int, length: int, first_weekday: int) -> int:
    """The weekday (Monday to Friday) nearest `day`, never in another month: a Saturday moves
    to Friday, a Sunday to Monday, except that the 1st on a Saturday moves to Monday the 3rd
    and a last day on a Sunday to Friday two days before (Quartz's rule). 0 when the month has
    no day `day` (no run that month: Cronos's answer, and Quartz's)."""
    if not 1 <= day <= length:
        return 0
    weekday = (first_weekday + day - 1) % 7
    if weekday == SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == SUNDAY:
        return day + 1 if day < length else day - 2
    return day


def parse_month_day(item: str) -> MonthDays | None:
    """Parse one day-of-month item of these forms; None when `item` is none of them."""
    if match := _BEFORE_LAST.fullmatch(item):
        offset = 0 if match["n"] is None else int(match["n"])
        if offset > MAX_BEFORE_LAST:
            raise ScheduleError(
                f"day-of-month field: '{excerpt(item)}' counts {offset} days back from the last "
                f"day; L-n takes n from 0 to {MAX_BEFORE_LAST}"
            )
        if match["w"]:
            return MonthDays(nearest_weekday_before_last=frozenset({offset}))
        return MonthDays(before_last=frozenset({offset}))
    if match := _NEAREST.fullmatch(item):
        day = int(match["day"])
        if not 1 <= day <= 31:
            raise ScheduleError(
                f"day-of-month field: '{excerpt(item)}' is out of range: {day} is not in 1-31"
            )
        return MonthDays(nearest_weekday=frozenset({day}))
    return None


def merge(parts: list[MonthDays]) -> MonthDays:
    if not parts:
        return NO_MONTH_DAYS
    return MonthDays(
        shared(frozenset().union(*(p.before_last for p in parts))),
        shared(frozenset().union(*(p.nearest_weekday for p in parts))),
        shared(frozenset().union(*(p.nearest_weekday_before_last for p in parts))),
    )


SetT = TypeVar("SetT", bound=frozenset[Any])
_SHARED: dict[frozenset[Any], frozenset[Any]] = {}


def shared(values: SetT) -> SetT:
    """One object for each set of values a field holds. A field with `H` is each task's own,
    yet it resolves to one of a few dozen sets: 100,000 tasks held 30 MB of equal (mostly
    empty: 216 bytes each) frozensets (docs/performance.md, "100,000 tasks")."""
    found = _SHARED.get(values)
    if found is None:
        if len(_SHARED) >= 4096:
            _SHARED.clear()
        found = _SHARED[values] = values
    return found  # type: ignore[return-value]  # equal to `values`, of its type


def is_last_weekday(day: int, length: int) -> bool:
    """Whether `day` is the last of its weekday in a month of `length` days (`5L`)."""
    return day + 7 > length
