"""`Schedule`: one schedule string of a task, in the task's time zone (README.md#schedules)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from cronctl.errors import ScheduleError, UsageError
from cronctl.schedule import describe as english
from cronctl.schedule.cron import next_fire
from cronctl.schedule.every import next_slot, parse_every
from cronctl.schedule.spec import CronSpec, parse_cron
from cronctl.schedule.zones import instant_of, load_zone, zoned


class Schedule:
    """A parsed schedule: a cron expression or macro, `@every DURATION`, or `@reboot`.

    Time is always an argument: `next_after(dt)` answers for the instant `dt`.
    """

    # 100,000 tasks hold 100,000 of these (docs/performance.md, "100,000 tasks").
    __slots__ = ("text", "zone", "timezone", "name", "cron", "interval_seconds")

    def __init__(
        self,
        text: str,
        zone: ZoneInfo,
        name: str | None,
        cron: CronSpec | None = None,
        interval_seconds: int | None = None,
    ) -> None:
        self.text = text
        self.zone = zone
        self.timezone = zone.key
        self.name = name
        self.cron = cron
        self.interval_seconds = interval_seconds

    @classmethod
    def parse(cls, text: str, timezone: str = "UTC", name: str | None = None) -> Schedule:
        """Parse `text`; raise ScheduleError (a ValueError) saying why it is refused."""
        if not isinstance(text, str):
            raise ScheduleError(f"a schedule is text, not {type(text).__name__}")
        if cls is Schedule:
            # A CLI write validates the file before and after the change: the second time every
            # schedule is one it has just parsed. A Schedule never changes once made.
            return _parse_cached(text, timezone, name)
        return cls._parse(text, timezone, name)

    @classmethod
    def _parse(cls, text: str, timezone: str, name: str | None) -> Schedule:
        zone = load_zone(timezone)
        # Only ASCII blanks around the schedule are cron's; a no-break or other Unicode space
        # (str.strip would drop it silently) is refused with its code point.
        stripped = text.strip(" \t")
        _check_characters(stripped)
        keyword, _, argument = stripped.replace("\t", " ").partition(" ")
        keyword, argument = keyword.lower(), argument.strip()
        if keyword == "@every":
            return cls(text, zone, name, interval_seconds=parse_every(argument))
        if keyword.startswith("@") and argument:
            raise ScheduleError(f"'{keyword}' takes no argument; got '{argument}'")
        if keyword == "@reboot":
            return cls(text, zone, name)
        return cls(text, zone, name, cron=parse_cron(stripped, name))

    @property
    def is_reboot(self) -> bool:
        return self.cron is None and self.interval_seconds is None

    @property
    def on_whole_minutes(self) -> bool:
        """Whether every slot is on a whole minute: cron and `@reboot` are, `@every` is when its
        interval is a multiple of a minute (slots are multiples of it since the epoch). Times of
        the others are shown with their seconds (`@every 90s`, `@every 2s`)."""
        return self.interval_seconds is None or self.interval_seconds % 60 == 0

    @property
    def is_wildcard(self) -> bool:
        """True for a cron schedule whose minute or hour field starts with '*'
        (README.md#daylight-saving-time)."""
        return self.cron is not None and self.cron.wildcard

    def next_after(self, dt: datetime) -> datetime | None:
        """Return the first fire time strictly after `dt`, in the schedule's zone.

        A naive `dt` is a wall time in the schedule's zone. None for `@reboot`, which has no
        fire times. Compare results as instants (`.timestamp()`, or after `.astimezone(UTC)`):
        Python compares two datetimes of the same zone by wall time and ignores `fold`, so
        01:00 EST (second pass) would sort before 01:30 EDT. None too when the next fire time
        would fall past the end of year 9999, the last year Python's datetime holds.
        """
        try:
            instant = self._next_instant(instant_of(dt, self.zone))
            return None if instant is None else zoned(instant, self.zone)
        except OverflowError:  # past 9999-12-31, in UTC or in the zone
            return None

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """Return the next `count` fire times after `after` ([] for `@reboot`)."""
        if count < 0:
            raise UsageError(f"count must be 0 or more, not {count}")
        times: list[datetime] = []
        cursor = after
        while len(times) < count:
            moment = self.next_after(cursor)
            if moment is None:
                break
            times.append(moment)
            cursor = moment
        return times

    def describe(self, short: bool = False) -> str:
        """Return the schedule in English: a sentence, or a compact form for a table."""
        if self.cron is not None:
            return english.describe_cron(self.cron, short)
        if self.interval_seconds is not None:
            return english.describe_every(self.interval_seconds, short)
        return english.describe_reboot(short)

    def __repr__(self) -> str:
        return f"Schedule.parse({self.text!r}, timezone={self.timezone!r}, name={self.name!r})"

    def _next_instant(self, after: datetime) -> datetime | None:
        if self.cron is not None:
            return next_fire(self.cron, self.zone, after)
        if self.interval_seconds is not None:
            return next_slot(self.interval_seconds, after)
        return None


def _check_characters(text: str) -> None:
    if not text:
        raise ScheduleError("the schedule is empty", hint="e.g. '0 2 * * *' or '@daily'")
    for char in text:
        if not char.isascii():
            raise ScheduleError(
                f"the schedule contains {char!r} (U+{ord(char):04X}); cron uses ASCII digits, "
                "English names and the symbols * , - / # ( )"
            )
        if not char.isprintable() and char != "\t":
            raise ScheduleError(f"the schedule contains the control character {char!r}")


def _parse_cached(text: str, timezone: str, name: str | None) -> Schedule:
    if "H" in text:  # `H` hashes the task's name: this schedule is the task's own
        return _parse_named(text, timezone, name)
    # Thousands of tasks share a few schedules: they share the parsed cron fields too (one
    # parse, one CronSpec), each with its own name (docs/performance.md, "100,000 tasks").
    shared = _parse_shared(text, timezone)
    if shared.name == name:
        return shared
    return Schedule(text, shared.zone, name, shared.cron, shared.interval_seconds)


@functools.lru_cache(maxsize=4096)
def _parse_shared(text: str, timezone: str) -> Schedule:
    return Schedule._parse(text, timezone, None)


@functools.lru_cache(maxsize=65536)
def _parse_named(text: str, timezone: str, name: str | None) -> Schedule:
    return Schedule._parse(text, timezone, name)


Answer = TypeVar("Answer")


class SharedAnswers(Generic[Answer]):
    """A function of a schedule asked of many tasks, answered once for the tasks that share
    their parsed schedule (the same cron fields or interval, the same zone): `list` of
    100,000 tasks of a few dozen schedules describes and searches a few dozen, not 100,000
    (docs/performance.md, "100,000 tasks"). A schedule with `H` is its task's own."""

    def __init__(self, answer: Callable[[Schedule], Answer]) -> None:
        self._answer = answer
        # The cron fields are held beside the answer so that their id is not reused.
        self._known: dict[tuple[int, int | None, ZoneInfo], tuple[object, Answer]] = {}

    def __call__(self, schedule: Schedule) -> Answer:
        key = (id(schedule.cron), schedule.interval_seconds, schedule.zone)
        found = self._known.get(key)
        if found is None or found[0] is not schedule.cron:
            found = self._known[key] = (schedule.cron, self._answer(schedule))
        return found[1]
