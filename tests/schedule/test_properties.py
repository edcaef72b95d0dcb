"""Property tests over random expressions, zones and starts (mostly near DST transitions).

The oracle is independent of the implementation: each generated field carries the values it
must select (expanded here from the grammar), and whether the task fires at an instant is
decided minute by minute from zoneinfo and README.md#schedules:
- the wall time must match the fields, days combined by AND when dom or dow starts with '*',
  else by OR;
- a wildcard task (minute or hour field starts with '*') fires at every matching wall time that
  exists, in both passes of a repeated hour; a fixed-time task only in the first pass;
- a fixed-time task also fires at the first instant after a gap when a wall time in the gap
  matches;
- those two DST rules hold for shifts of up to 3 hours: across a larger clock change (h17) a
  fixed-time task follows the wall clock like a wildcard one.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronctl.errors import ScheduleError
from cronctl.schedule import Schedule

ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham")
# h17: zones with clock changes of more than 3 hours (and Casey's 3-hour ones, still DST's
# rule), with the years scanned for them.
BIG_JUMP_ZONES = {
    "Pacific/Apia": 2011,  # 2011-12-30 skipped
    "Pacific/Kwajalein": 1969,  # 1969-09-30 01:00-23:59 lived twice
    "Antarctica/Vostok": 1994,  # 7 hours back in February, 7 forward in November
    "Antarctica/Casey": 2009,  # 3 hours forward (2009-10-18) and back (2010-03-05)
}
LONGEST_DST_SHIFT = timedelta(hours=3)
MINUTE = timedelta(minutes=1)
WINDOW = timedelta(days=3)  # checked minute by minute after each start
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class Expected:
    """A generated field: its text and the values it must select."""

    text: str
    values: frozenset[int]
    last_day: bool = False
    nth: frozenset[tuple[int, int]] = field(default_factory=frozenset)


def _transitions(zone: ZoneInfo, year: int = 2026) -> list[datetime]:
    """Instants in `year` and the next where `zone` changes offset, found by an hourly scan."""
    found, instant = [], datetime(year, 1, 1, tzinfo=UTC)
    while instant.year < year + 2:
        if (
            instant.astimezone(zone).utcoffset()
            != (instant - timedelta(hours=1)).astimezone(zone).utcoffset()
        ):
            found.append(instant)
        instant += timedelta(hours=1)
    return found


TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES}
TRANSITIONS.update({name: _transitions(ZoneInfo(name), y) for name, y in BIG_JUMP_ZONES.items()})


# Strategies build Expected fields; names stand in for numbers where a field has them.


def _number(value: int, names: tuple[str, ...], low: int) -> st.SearchStrategy[str]:
    texts = [str(value)]
    if names and value - low < len(names):
        name = names[value - low]
        texts += [name, name.lower(), name.capitalize()]
    return st.sampled_from(texts)


@st.composite
def _item(
    draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] = (), near: int | None = None
) -> Expected:
    """One item; values are drawn from [low, high], or often from [low, near] when given."""
    kind = draw(st.sampled_from(["star-step", "value", "range", "range-step", "value-step"]))
    a = draw(
        st.integers(low, high) if near is None else st.integers(low, near) | st.integers(low, high)
    )
    a_text = draw(_number(a, names, low))
    step = draw(st.integers(1, high - low + 2))
    if kind == "star-step":
        return Expected(f"*/{step}", frozenset(range(low, high + 1, step)))
    if kind == "value":
        return Expected(a_text, frozenset({a}))
    if kind == "value-step":
        return Expected(f"{a_text}/{step}", frozenset(range(a, high + 1, step)))
    b = draw(
        st.integers(a, high)
        if near is None
        else st.integers(a, max(a, near)) | st.integers(a, high)
    )
    b_text = draw(_number(b, names, low))
    if kind == "range":
        return Expected(f"{a_text}-{b_text}", frozenset(range(a, b + 1)))
    return Expected(f"{a_text}-{b_text}/{step}", frozenset(range(a, b + 1, step)))


def _combine(items: list[Expected]) -> Expected:
    return Expected(
        ",".join(item.text for item in items),
        frozenset().union(*(item.values for item in items)),
        any(item.last_day for item in items),
        frozenset().union(*(item.nth for item in items)),
    )


def _field(item: st.SearchStrategy[Expected], low: int, high: int) -> st.SearchStrategy[Expected]:
    star = Expected("*", frozenset(range(low, high + 1)))
    listed = st.lists(item, min_size=1, max_size=3).map(_combine)
    return st.one_of(st.just(star), listed)


_LAST = st.just(Expected("L", frozenset(), last_day=True))


@st.composite
def _nth(draw: st.DrawFn) -> Expected:
    weekday, n = draw(st.integers(0, 7)), draw(st.integers(1, 5))
    text = draw(_number(weekday, WEEKDAYS, 0))
    return Expected(f"{text}#{n}", frozenset(), nth=frozenset({(weekday % 7, n)}))


@dataclass(frozen=True)
class Cron:
    minute: Expected
    hour: Expected
    dom: Expected
    month: Expected
    dow: Expected

    @property
    def text(self) -> str:
        return " ".join(f.text for f in (self.minute, self.hour, self.dom, self.month, self.dow))

    @property
    def wildcard(self) -> bool:
        return self.minute.text.startswith("*") or self.hour.text.startswith("*")

    def day_matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7  # cron: 0 = Sunday
        weekdays = {v % 7 for v in self.dow.values}
        length = calendar.monthrange(day.year, day.month)[1]
        by_date = day.day in self.dom.values or (self.dom.last_day and day.day == length)
        by_weekday = weekday in weekdays or (weekday, (day.day + 6) // 7) in self.dow.nth
        if self.dom.text.startswith("*") or self.dow.text.startswith("*"):
            return by_date and by_weekday
        return by_date or by_weekday

    def matches(self, wall: datetime) -> bool:
        return (
            wall.minute in self.minute.values
            and wall.hour in self.hour.values
            and wall.month in self.month.values
            and self.day_matches(wall.date())
        )

    def fires_at(self, instant: datetime, zone: ZoneInfo) -> bool:
        instant = instant.astimezone(UTC)  # aware arithmetic in a zone would be wall-clock
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None)
        if self.matches(wall):
            return self.wildcard or local.fold == 0 or _shift(local) > LONGEST_DST_SHIFT
        if self.wildcard:
            return False
        skipped = (instant - MINUTE).astimezone(zone).replace(tzinfo=None) + MINUTE
        if wall - skipped > LONGEST_DST_SHIFT:
            return False  # a change of calendar: the skipped wall times have no run
        while skipped < wall:  # only when clocks jumped forward just before `instant`
            if self.matches(skipped):
                return True
            skipped += MINUTE
        return False

    def fires_ever(self) -> bool:
        """Whether a day matches in 2000-2028: every month shape occurs in those years."""
        day = date(2000, 1, 1)
        while day.year < 2029:
            if day.month in self.month.values and self.day_matches(day):
                return True
            day += timedelta(days=1)
        return False


def _shift(local: datetime) -> timedelta:
    """How far clocks went back in the repeat holding `local` (0 outside a second pass)."""
    first, second = local.replace(fold=0).utcoffset(), local.utcoffset()
    assert first is not None and second is not None
    return first - second


crons = st.builds(
    Cron,
    minute=_field(_item(0, 59), 0, 59),
    # Transitions happen between 00:00 and 04:00 local in the zones tested: aim there often.
    hour=_field(_item(0, 23, near=4), 0, 23),
    dom=st.one_of(
        st.just(Expected("*", frozenset(range(1, 32)))),
        st.lists(st.one_of(_item(1, 31), _LAST), min_size=1, max_size=3).map(_combine),
    ),
    month=st.one_of(
        st.just(Expected("*", frozenset(range(1, 13)))), _field(_item(1, 12, MONTHS), 1, 12)
    ),
    dow=st.one_of(
        st.just(Expected("*", frozenset(range(8)))),
        st.lists(st.one_of(_item(0, 7, WEEKDAYS), _nth()), min_size=1, max_size=3).map(_combine),
    ),
)


@st.composite
def starts(draw: st.DrawFn, zones: tuple[str, ...] = ZONES) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(zones))
    if draw(st.integers(0, 3)):
        base = draw(st.sampled_from(TRANSITIONS[zone]))
        shift = timedelta(seconds=draw(st.integers(-86400, 12 * 3600)))
    else:
        base = datetime(BIG_JUMP_ZONES.get(zone, 2026), 1, 1, tzinfo=UTC)
        shift = timedelta(seconds=draw(st.integers(0, 2 * 365 * 86400)))
    start = base + shift
    if draw(st.booleans()):
        start = start.astimezone(ZoneInfo(zone))
    return zone, start


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cron=crons, where=starts())
def test_next_after_is_the_first_matching_time(cron: Cron, where: tuple[str, datetime]) -> None:
    _check_first_matching_time(cron, *where)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cron=crons, where=starts(tuple(BIG_JUMP_ZONES)))
def test_h17_next_after_is_the_first_matching_time_across_big_jumps(
    cron: Cron, where: tuple[str, datetime]
) -> None:
    _check_first_matching_time(cron, *where)


def _check_first_matching_time(cron: Cron, name: str, start: datetime) -> None:
    zone = ZoneInfo(name)
    try:
        schedule = Schedule.parse(cron.text, name)
    except ScheduleError as error:
        assert "never fires" in str(error) and not cron.fires_ever(), (cron.text, error)
        return
    result = schedule.next_after(start)
    assert result is not None
    # As instants: Python compares two times of one zone by wall time, ignoring `fold`.
    assert result.timestamp() > start.timestamp()
    assert result.tzinfo == zone
    assert result.second == 0 and result.microsecond == 0
    assert cron.fires_at(result, zone), (cron.text, result.isoformat())
    instant = start.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    end = min(result.astimezone(UTC), start.astimezone(UTC) + WINDOW)
    while instant < end:
        assert not cron.fires_at(instant, zone), (cron.text, instant.astimezone(zone).isoformat())
        instant += MINUTE


# Where croniter's meaning equals ours (README.md#schedules) (UTC, no a-a ranges, day fields that
# are either `*` or plain lists and ranges), cronctl must agree with it: croniter as a reference.


@st.composite
def _plain_item(draw: st.DrawFn, low: int, high: int) -> str:
    a = draw(st.integers(low, high - 1))
    b = draw(st.integers(a + 1, high))
    return draw(st.sampled_from([str(a), f"{a}-{b}", f"{a}-{b}/{draw(st.integers(1, b - a))}"]))


def _plain_field(low: int, high: int, steps: bool) -> st.SearchStrategy[str]:
    listed = st.lists(_plain_item(low, high), min_size=1, max_size=3).map(",".join)
    star_steps = st.integers(2, high - low).map(lambda n: f"*/{n}") if steps else st.nothing()
    return st.one_of(st.just("*"), listed, star_steps)


plain_crons = st.tuples(
    _plain_field(0, 59, True),
    _plain_field(0, 23, True),
    _plain_field(1, 28, False),
    _plain_field(1, 12, True),
    _plain_field(0, 6, False),
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(text=plain_crons, seconds=st.integers(0, 2 * 365 * 86400))
def test_agrees_with_croniter_where_their_meanings_coincide(text: str, seconds: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    ours = Schedule.parse(text).upcoming(start, 5)
    reference = croniter(text, start)
    assert ours == [reference.get_next(datetime) for _ in range(5)]
