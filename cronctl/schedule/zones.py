"""Time zones: loading one by IANA name, and finding the instants where its offset changes.

zoneinfo answers "what is the UTC offset at this instant" but does not list its transitions, so
they are found by probing once a day through a year and bisecting to the second where the offset
changed. In tzdata no two offset changes are less than about four days apart (the closest pair:
Africa/Freetown, 1939), so a daily probe cannot step over one. Results are cached per zone and
year. Instants here are naive datetimes in UTC; wall times are naive datetimes in the zone.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronctl.errors import ScheduleError

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Transition:
    """A change of UTC offset: `at` is the first instant (naive UTC) on the new offset."""

    at: datetime
    before: timedelta
    after: timedelta

    @property
    def is_gap(self) -> bool:
        """True when clocks jump forward: wall times [at+before, at+after) do not exist.

        Otherwise clocks go back and wall times [at+after, at+before) happen twice.
        """
        return self.after > self.before


def load_zone(name: str) -> ZoneInfo:
    """Return the zone named `name`; raise ScheduleError when there is none."""
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ScheduleError(
        f"unknown time zone '{name}'",
        hint="use an IANA zone name such as Europe/Berlin, America/New_York or UTC",
    )


def instant_of(dt: datetime, zone: ZoneInfo) -> datetime:
    """Return the instant of `dt` as naive UTC; a naive `dt` is a wall time in `zone`."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return dt.astimezone(UTC).replace(tzinfo=None)


def zoned(instant: datetime, zone: ZoneInfo) -> datetime:
    """Return the instant (naive UTC) as an aware time in `zone`, `fold` set in a repeat."""
    return zone.fromutc(instant.replace(tzinfo=zone))


def transitions_between(zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Transition]:
    """Yield the transitions with start < at <= end, in order."""
    for year in range(start.year, end.year + 1):
        for transition in _transitions_in_year(zone, year):
            if start < transition.at <= end:
                yield transition


def next_transition(zone: ZoneInfo, start: datetime, end: datetime) -> Transition | None:
    """Return the first transition with start < at <= end, or None."""
    return next(transitions_between(zone, start, end), None)


@functools.lru_cache(maxsize=512)
def _transitions_in_year(zone: ZoneInfo, year: int) -> tuple[Transition, ...]:
    """Transitions with Jan 1 `year` < at <= Jan 1 `year`+1 (UTC)."""
    start = datetime(year, 1, 1)
    days = (datetime(year + 1, 1, 1) - start).days if year < MAXYEAR else 364
    found = []
    earlier, before = start, _offset(zone, start)
    for day in range(1, days + 1):
        later = start + day * _DAY
        after = _offset(zone, later)
        if after != before:
            found.append(Transition(_first_instant_on(zone, earlier, later, before), before, after))
        earlier, before = later, after
    return tuple(found)


def _first_instant_on(
    zone: ZoneInfo, earlier: datetime, later: datetime, before: timedelta
) -> datetime:
    """Bisect to the first second after `earlier` whose offset is no longer `before`."""
    while later - earlier > _SECOND:
        middle = earlier + (later - earlier) // _SECOND // 2 * _SECOND
        if _offset(zone, middle) == before:
            earlier = middle
        else:
            later = middle
    return later


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = zoned(instant, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return offset
