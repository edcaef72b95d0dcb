"""An interpreter for the peer cases of tests/data/peer-cases/ (see its README.md).

Each case is asked of `cronctl.Schedule` (the library API) and answered with an `Outcome`:
cronctl agrees, rejects the expression (ValueError) where the peer gives it a meaning, accepts
an expression the peer calls invalid, or gives another answer (`detail` says which). Anything
but ValueError escaping `Schedule.parse` is a crash and propagates.

How a case is read:
- `next`: fire times after `start` (`inclusive`: at or after, i.e. after start - 1 µs); `steps`
  give the n-th time (n counts from 1; skipped n are not checked); `expect` is a time with an
  offset (an instant), a naive time (a wall time in the case's zone), None (no next time), or a
  partial dict of wall-time fields (`year` ... `second`, `weekday_sun0`, `isoweekday`), or
  `{"any_of": [...]}`.
- `prev`: the same, backwards (cronctl has no `previous`: the times are found forward from
  ever earlier points; strictly before `start`).
- `range`: the fire times between `start` and `stop`, both included unless `include_start` /
  `include_stop` say otherwise (croniter_range's default); `expect` gives `count`, `items` by
  index (negative from the end) or `nonempty`.
- `fires_at`: whether `at` is a fire time.
- `fields`: the values each field selects (dom `L`, `L-n`, `nW`, `LW`, `L-nW` and dow `n#k`,
  `nL` as strings; a `#` item whose weekday the field already selects adds nothing).
- `equiv`: whether `expr` and `expr2` are the same schedule: the same minutes, hours and
  matching days.
- `valid` / `invalid`: whether `Schedule.parse` accepts the expression.
- `never`: no fire time: cronctl refuses the schedule as one that never fires, or finds none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronctl.schedule import Schedule

DATA = Path(__file__).parent.parent / "data" / "peer-cases"
PEER_FILES = ("cronsim", "croniter", "cronos", "robfig", "cronparser")
_MICROSECOND = timedelta(microseconds=1)
_PREV_LIMIT = timedelta(days=366 * 30)

AGREE, REJECTED, ACCEPTED, DIFFERS = "agree", "rejected", "accepted", "differs"


@dataclass(frozen=True)
class Outcome:
    """How cronctl answered one case: AGREE, REJECTED, ACCEPTED or DIFFERS, and why."""

    kind: str
    detail: str = ""


def load_cases(peer: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((DATA / f"{peer}.json").read_text("utf-8"))
    return cases


def load_verdicts() -> dict[str, dict[str, str]]:
    verdicts: dict[str, dict[str, str]] = json.loads((DATA / "verdicts.json").read_text("utf-8"))
    return verdicts


def run_case(case: dict[str, Any]) -> Outcome:
    """Ask cronctl the question of `case`."""
    kind = case["kind"]
    try:
        schedule = Schedule.parse(case["expr"], case["tz"], case.get("name"))
    except ValueError as error:
        if kind == "invalid":
            return Outcome(AGREE)
        if kind == "never" and "never fires" in str(error):
            return Outcome(AGREE)
        return Outcome(REJECTED, str(error))
    if kind == "invalid":
        return Outcome(ACCEPTED, "cronctl accepts it")
    if kind == "valid":
        return Outcome(AGREE)
    return _ASK[kind](schedule, case)


def _zone(case: dict[str, Any]) -> ZoneInfo:
    return ZoneInfo(case["tz"])


def _time(text: str, zone: ZoneInfo) -> datetime:
    """A case's time: with an offset an instant, naive a wall time in the case's zone."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _next_query(case: dict[str, Any]) -> datetime:
    """The instant whose `next_after` answers the case: fire times after `start`, or at or
    after it when `inclusive`.

    .NET times carry 100 ns ticks ('23:59:59.9999999'), which datetime truncates to whole
    microseconds. Fire times are whole minutes, so from such a start both questions are "after
    the truncated time".
    """
    start = _time(case["start"], _zone(case))
    fraction = re.search(r"\.(\d+)", case["start"])
    if fraction and fraction.group(1)[6:].strip("0"):
        return start
    return start - _MICROSECOND if case.get("inclusive") else start


def _matches(found: datetime | None, expect: Any, zone: ZoneInfo) -> bool:
    if expect is None or found is None:
        return expect is None and found is None
    if isinstance(expect, str):
        return found.timestamp() == _time(expect, zone).timestamp()
    if "any_of" in expect:
        return any(_matches(found, choice, zone) for choice in expect["any_of"])
    wall = found.astimezone(zone)
    fields = {
        "year": wall.year,
        "month": wall.month,
        "day": wall.day,
        "hour": wall.hour,
        "minute": wall.minute,
        "second": wall.second,
        "weekday_sun0": wall.isoweekday() % 7,
        "isoweekday": wall.isoweekday(),
    }
    return all(fields[key] == value for key, value in expect.items())


def _check_steps(times: list[datetime | None], case: dict[str, Any]) -> Outcome:
    zone = _zone(case)
    wrong = []
    for step in case["steps"]:
        n, expect = step["n"], step["expect"]
        found = times[n - 1] if n <= len(times) else None
        if not _matches(found, expect, zone):
            wrong.append(f"#{n}: {found.isoformat() if found else None}, peer {expect}")
    return Outcome(DIFFERS, "; ".join(wrong)) if wrong else Outcome(AGREE)


def _next(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    count = max(step["n"] for step in case["steps"])
    times: list[datetime | None] = list(schedule.upcoming(_next_query(case), count))
    return _check_steps(times, case)


def _between(schedule: Schedule, first: datetime, end: datetime) -> list[datetime]:
    """Fire times t with first <= t < end, compared as instants."""
    found = []
    cursor = schedule.next_after(first - _MICROSECOND)
    while cursor is not None and cursor.timestamp() < end.timestamp():
        found.append(cursor)
        cursor = schedule.next_after(cursor)
    return found


def _previous(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    """The `count` fire times before `start`, latest first."""
    window = timedelta(hours=1)
    while True:
        found = _between(schedule, start - window, start)
        if len(found) >= count or window > _PREV_LIMIT:
            return found[::-1][:count]
        window *= 8


def _prev(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    start = _time(case["start"], _zone(case))
    count = max(step["n"] for step in case["steps"])
    times: list[datetime | None] = list(_previous(schedule, start, count))
    return _check_steps(times, case)


def _range(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    zone = _zone(case)
    start, stop = _time(case["start"], zone), _time(case["stop"], zone)
    if not case.get("include_start", True):
        start += _MICROSECOND
    end = stop + _MICROSECOND if case.get("include_stop", True) else stop
    times = _between(schedule, start, end)
    expect = case["expect"]
    shown = [t.isoformat() for t in times[:6]]
    if "nonempty" in expect and bool(times) != expect["nonempty"]:
        return Outcome(DIFFERS, f"{len(times)} fire times {shown}, peer nonempty={expect}")
    if "count" in expect and len(times) != expect["count"]:
        return Outcome(DIFFERS, f"{len(times)} fire times {shown}, peer {expect['count']}")
    for index, item in expect.get("items", {}).items():
        found = times[int(index)] if -len(times) <= int(index) < len(times) else None
        if not _matches(found, item, zone):
            return Outcome(DIFFERS, f"item {index}: {found}, peer {item}")
    return Outcome(AGREE)


def _fires_at(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    at = _time(case["at"], _zone(case))
    found = schedule.next_after(at - _MICROSECOND)
    fires = found is not None and found.timestamp() == at.timestamp()
    if fires == case["fires"]:
        return Outcome(AGREE)
    return Outcome(DIFFERS, f"fires at {case['at']}: {fires}, peer {case['fires']}")


def _field_values(schedule: Schedule) -> dict[str, set[int | str]]:
    spec = schedule.cron
    assert spec is not None
    dom: set[int | str] = set(spec.day_of_month.values)
    forms = spec.day_of_month.month_days
    dom |= {f"L-{n}" if n else "L" for n in forms.before_last}
    dom |= {f"{n}W" for n in forms.nearest_weekday}
    dom |= {f"L-{n}W" if n else "LW" for n in forms.nearest_weekday_before_last}
    dow: set[int | str] = set(spec.day_of_week.values)
    dow |= {f"{day}#{n}" for day, n in spec.day_of_week.nth_weekdays if day not in dow}
    dow |= {f"{day}L" for day in spec.day_of_week.last_weekdays}
    return {
        "minute": set(spec.minute.values),
        "hour": set(spec.hour.values),
        "dom": dom,
        "month": set(spec.month.values),
        "dow": dow,
    }


def _fields(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    if schedule.cron is None:
        return Outcome(DIFFERS, "not a cron expression in cronctl")
    values = _field_values(schedule)
    wrong = [
        f"{name}: {sorted(map(str, values[name]))}, peer {expected}"
        for name, expected in case["fields"].items()
        if values.get(name) != set(expected)
    ]
    return Outcome(DIFFERS, "; ".join(wrong)) if wrong else Outcome(AGREE)


def _calendar(schedule: Schedule) -> tuple[object, ...]:
    """What decides a cron schedule's wall-clock fire times: its minutes, hours, and the days
    it matches in every month of 2000-2027 (a 28-year cycle holds every shape of month)."""
    spec = schedule.cron
    assert spec is not None  # the equiv cases are all cron expressions
    days = tuple(
        spec.days.days_in(year, month) if month in spec.months else ()
        for year in range(2000, 2028)
        for month in range(1, 13)
    )
    return spec.minutes, spec.hours, days


def _equiv(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    """Same schedule: the same wall-clock fire times (the equiv cases are all in UTC, where
    daylight saving cannot tell a wildcard from a fixed-time task)."""
    try:
        other = Schedule.parse(case["expr2"], case["tz"], case.get("name"))
    except ValueError as error:
        return Outcome(REJECTED, f"expr2: {error}")
    same = _calendar(schedule) == _calendar(other)
    if same == case["equal"]:
        return Outcome(AGREE)
    return Outcome(DIFFERS, f"same fire times: {same}, peer equal={case['equal']}")


def _never(schedule: Schedule, case: dict[str, Any]) -> Outcome:
    found = schedule.next_after(_time(case["start"], _zone(case)))
    return Outcome(AGREE) if found is None else Outcome(DIFFERS, f"fires at {found.isoformat()}")


_ASK = {
    "next": _next,
    "prev": _prev,
    "range": _range,
    "fires_at": _fires_at,
    "fields": _fields,
    "equiv": _equiv,
    "never": _never,
}
