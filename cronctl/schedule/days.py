"""Which days of a month a schedule runs on: day-of-month and day-of-week combined."""

from __future__ import annotations

import calendar
import functools

from cronctl.schedule.fields import Field
from cronctl.schedule.monthdays import is_last_weekday

_SHORT_MONTHS = {2: (28, 29), 4: (30,), 6: (30,), 9: (30,), 11: (30,)}


def month_lengths(month: int) -> tuple[int, ...]:
    """Return the lengths `month` can have, in days."""
    return _SHORT_MONTHS.get(month, (31,))


class DayRule:
    """Day-of-month and day-of-week fields, combined the way Vixie cron combines them.

    When both fields are restricted, a day matching *either* runs the task: `0 0 1,15 * MON`
    is the 1st, the 15th and every Monday. Cron (and POSIX crontab) reads the two fields as
    alternative ways of naming days, which lets one line say "these dates, and also these
    weekdays"; an intersection such as "Friday the 13th" cannot be written at all.
    When either field starts with `*` it counts as unrestricted and the fields combine by AND.
    Vixie cron looks only at that first character, so `*/2` still filters days yet makes the
    combination AND: `0 0 */2 * MON` is the odd days that are Mondays.
    """

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def of(day_of_month: Field, day_of_week: Field) -> DayRule:
        """Return the (shared) rule for these two fields: its day tables are worth keeping."""
        return DayRule(day_of_month, day_of_week)

    def __init__(self, day_of_month: Field, day_of_week: Field) -> None:
        self.day_of_month = day_of_month
        self.day_of_week = day_of_week
        self.combine_by_or = not (day_of_month.starts_with_star or day_of_week.starts_with_star)
        self._tables: dict[tuple[int, int], tuple[int, ...]] = {}

    @property
    def restricts_dates(self) -> bool:
        """False when day-of-month selects all of 1-31 (`*`, `1-31`, `*/1`...)."""
        return len(self.day_of_month.values) < 31

    @property
    def restricts_weekdays(self) -> bool:
        """False when day-of-week selects every weekday."""
        return len(self.day_of_week.values) < 7

    def days_in(self, year: int, month: int) -> tuple[int, ...]:
        """Return the matching days of `month` in `year`, in order."""
        first_weekday, length = calendar.monthrange(year, month)
        return self._days(length, (first_weekday + 1) % 7)

    def can_fire(self, months: frozenset[int]) -> bool:
        """Return whether some year has a matching day in one of `months`.

        Every (month length, weekday of the 1st) pair that a month can have occurs in the
        Gregorian calendar, so checking those 28 shapes is exact.
        """
        lengths = {n for m in months for n in month_lengths(m)}
        return any(self._days(n, first) for n in lengths for first in range(7))

    def _days(self, length: int, first_weekday: int) -> tuple[int, ...]:
        """Matching days of a month of `length` days whose 1st is `first_weekday` (0=Sunday).

        The days a month offers depend only on these two, so there are at most 28 tables.
        """
        key = (length, first_weekday)
        if key not in self._tables:
            dates = self.day_of_month.values | self.day_of_month.month_days.days(
                length, first_weekday
            )
            self._tables[key] = tuple(
                day
                for day in range(1, length + 1)
                if self._matches(day, day in dates, length, first_weekday)
            )
        return self._tables[key]

    def _matches(self, day: int, by_date: bool, length: int, first_weekday: int) -> bool:
        dow = self.day_of_week
        weekday = (first_weekday + day - 1) % 7
        by_weekday = (
            weekday in dow.values
            or (weekday, (day + 6) // 7) in dow.nth_weekdays
            or (weekday in dow.last_weekdays and is_last_weekday(day, length))
        )
        return (by_date or by_weekday) if self.combine_by_or else (by_date and by_weekday)
