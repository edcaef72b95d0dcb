# ruff: noqa: E501 (table-driven: one line a case, as test_fire_times.py)
"""#16 item 5: `L-n`, `nW`, `LW`, `L-nW`, `a-L` in day-of-month and `nL` / `FRIL` in day-of-week.

Expected fire times are derived by hand from README.md#schedules and a printed calendar (2026:
Jan 1 is a Thursday, Feb 1 a Sunday, Mar 1 a Sunday, Apr 1 a Wednesday, May 1 a Friday, Aug 1
a Saturday, Oct 1 a Thursday; 2028-02-29 is a Tuesday), not from the implementation. The
properties check the day forms against their definitions, written here without cronctl.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.overview import check
from cronctl.schedule import Schedule
from cronctl.schedule.explain import explain
from cronctl.taskfile.reading import parse_text
from tests.schedule.cases import fire_time_rows

BERLIN, NY = "Europe/Berlin", "America/New_York"

CASES = """
# The last weekday: Jan 31 and Feb 28 are Saturdays, May 31 a Sunday.
0 9 LW * *          | UTC    | 2026-01-01T00:00+00:00 | 2026-01-30T09:00+00:00 2026-02-27T09:00+00:00 2026-03-31T09:00+00:00 2026-04-30T09:00+00:00 2026-05-29T09:00+00:00
0 9 lw * *          | UTC    | 2026-03-01T00:00+00:00 | 2026-03-31T09:00+00:00
# The weekday nearest the 1st: Feb 1 and Mar 1 are Sundays (Monday the 2nd), Aug 1 a Saturday
# (Monday the 3rd: never back into July).
0 9 1W * *          | UTC    | 2026-01-01T10:00+00:00 | 2026-02-02T09:00+00:00 2026-03-02T09:00+00:00 2026-04-01T09:00+00:00
0 9 1W * *          | UTC    | 2026-07-31T00:00+00:00 | 2026-08-03T09:00+00:00 2026-09-01T09:00+00:00
# 15W: Feb 15 and Mar 15 are Sundays (Monday), Aug 15 a Saturday (Friday).
0 9 15W * *         | UTC    | 2026-02-01T00:00+00:00 | 2026-02-16T09:00+00:00 2026-03-16T09:00+00:00 2026-04-15T09:00+00:00
0 9 15W * *         | UTC    | 2026-08-01T00:00+00:00 | 2026-08-14T09:00+00:00
# 31W: May 31 is a Sunday (Friday the 29th, never June); no run in a month without a 31st.
0 9 31W * *         | UTC    | 2026-03-01T00:00+00:00 | 2026-03-31T09:00+00:00 2026-05-29T09:00+00:00 2026-07-31T09:00+00:00
# L-n: n days before the last day; a month shorter than n+1 days has none (as Cronos).
0 9 L-3 * *         | UTC    | 2026-02-01T00:00+00:00 | 2026-02-25T09:00+00:00 2026-03-28T09:00+00:00 2026-04-27T09:00+00:00
0 9 L-1 * *         | UTC    | 2026-02-01T00:00+00:00 | 2026-02-27T09:00+00:00 2026-03-30T09:00+00:00
0 0 L-0 * *         | UTC    | 2026-02-01T00:00+00:00 | 2026-02-28T00:00+00:00 2026-03-31T00:00+00:00
0 0 L-30 * *        | UTC    | 2026-01-02T00:00+00:00 | 2026-03-01T00:00+00:00 2026-05-01T00:00+00:00 2026-07-01T00:00+00:00
0 0 L-28 2 *        | UTC    | 2026-01-01T00:00+00:00 | 2028-02-01T00:00+00:00 2032-02-01T00:00+00:00
0 9 1,L-1 * *       | UTC    | 2026-02-01T10:00+00:00 | 2026-02-27T09:00+00:00 2026-03-01T09:00+00:00 2026-03-30T09:00+00:00 2026-04-01T09:00+00:00
# L-nW: the weekday nearest L-n (Mar 28 is a Saturday).
0 9 L-3W * *        | UTC    | 2026-01-01T00:00+00:00 | 2026-01-28T09:00+00:00 2026-02-25T09:00+00:00 2026-03-27T09:00+00:00 2026-04-27T09:00+00:00
# a-L: a through the last day.
0 0 25-L 2 *        | UTC    | 2026-01-01T00:00+00:00 | 2026-02-25T00:00+00:00 2026-02-26T00:00+00:00 2026-02-27T00:00+00:00 2026-02-28T00:00+00:00 2027-02-25T00:00+00:00
0 0 29-L 2 *        | UTC    | 2026-01-01T00:00+00:00 | 2028-02-29T00:00+00:00
0 0 2-L/10 * *      | UTC    | 2026-01-01T00:00+00:00 | 2026-01-02T00:00+00:00 2026-01-12T00:00+00:00 2026-01-22T00:00+00:00 2026-02-02T00:00+00:00
# The last given weekday.
0 9 * * 5L          | UTC    | 2026-01-01T00:00+00:00 | 2026-01-30T09:00+00:00 2026-02-27T09:00+00:00 2026-03-27T09:00+00:00 2026-04-24T09:00+00:00 2026-05-29T09:00+00:00
0 9 * * FRIL        | UTC    | 2026-04-25T00:00+00:00 | 2026-05-29T09:00+00:00
0 9 * * 7L          | UTC    | 2026-01-01T00:00+00:00 | 2026-01-25T09:00+00:00 2026-02-22T09:00+00:00 2026-03-29T09:00+00:00
0 9 * * sunl        | UTC    | 2026-01-01T00:00+00:00 | 2026-01-25T09:00+00:00
0 9 * * MON,5L      | UTC    | 2026-01-24T00:00+00:00 | 2026-01-26T09:00+00:00 2026-01-30T09:00+00:00 2026-02-02T09:00+00:00
# Both day fields restricted: OR (README.md#day-of-month-and-day-of-week).
0 9 15W * 5L        | UTC    | 2026-02-01T00:00+00:00 | 2026-02-16T09:00+00:00 2026-02-27T09:00+00:00 2026-03-16T09:00+00:00 2026-03-27T09:00+00:00
# One starts with '*': AND. The last weekday when it is a Tuesday or Thursday; the last
# Friday when its day is odd.
0 9 LW * */2        | UTC    | 2026-01-01T00:00+00:00 | 2026-03-31T09:00+00:00 2026-04-30T09:00+00:00 2026-06-30T09:00+00:00
0 9 */2 * 5L        | UTC    | 2026-01-01T00:00+00:00 | 2026-02-27T09:00+00:00 2026-03-27T09:00+00:00 2026-05-29T09:00+00:00
# Daylight saving (README.md#daylight-saving-time): Europe changes on the last Sunday of March
# and October. A fixed-time 02:30 runs at 03:00 CEST when 02:30 does not exist, once (first
# pass) when it happens twice; a wildcard task loses the gap and runs in both passes.
30 2 * * 0L         | BERLIN | 2026-03-01T00:00+01:00 | 2026-03-29T03:00+02:00 2026-04-26T02:30+02:00
30 2 * * 0L         | BERLIN | 2026-10-01T00:00+02:00 | 2026-10-25T02:30+02:00 2026-11-29T02:30+01:00
*/30 2 * * 0L       | BERLIN | 2026-10-25T00:00+02:00 | 2026-10-25T02:00+02:00 2026-10-25T02:30+02:00 2026-10-25T02:00+01:00 2026-10-25T02:30+01:00 2026-11-29T02:00+01:00
*/30 2 * * 0L       | BERLIN | 2026-03-28T00:00+01:00 | 2026-04-26T02:00+02:00
# New York springs forward on 2026-03-08 = L-23 of March (2027: March 14).
30 2 L-23 3 *       | NY     | 2026-01-01T00:00-05:00 | 2026-03-08T03:00-04:00 2027-03-08T02:30-05:00
"""


@pytest.mark.parametrize(
    ("expression", "zone", "start", "expected"),
    fire_time_rows(CASES, {"BERLIN": BERLIN, "NY": NY}),
)
def test_j5_fire_times(expression: str, zone: str, start: str, expected: list[str]) -> None:
    schedule = Schedule.parse(expression, zone)
    found = schedule.upcoming(datetime.fromisoformat(start), len(expected))
    assert [t.timestamp() for t in found] == [
        datetime.fromisoformat(t).timestamp() for t in expected
    ], [t.isoformat() for t in found]


# Definitions, written without cronctl: the weekday (Mon-Fri) of the month closest to day n
# (no tie can occur), the day n days before the last, the last given weekday.


def _weekdays_of(year: int, month: int) -> list[int]:
    length = calendar.monthrange(year, month)[1]
    return [d for d in range(1, length + 1) if calendar.weekday(year, month, d) < 5]


def _nearest(year: int, month: int, n: int) -> int | None:
    if n > calendar.monthrange(year, month)[1]:
        return None
    return min(_weekdays_of(year, month), key=lambda d: abs(d - n))


def _days_fired(schedule: Schedule, year: int, month: int) -> list[int]:
    start = datetime(year, month, 1, tzinfo=UTC) - timedelta(seconds=1)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    days = []
    moment = schedule.next_after(start)
    while moment is not None and moment < end:
        days.append(moment.day)
        moment = schedule.next_after(moment)
    return days


_MONTHS = st.tuples(st.integers(1900, 2400), st.integers(1, 12))


@settings(max_examples=300, deadline=None)
@given(month=_MONTHS, n=st.integers(1, 31))
def test_j5_nearest_weekday_is_the_closest_weekday_of_the_month(
    month: tuple[int, int], n: int
) -> None:
    found = _days_fired(Schedule.parse(f"0 0 {n}W * *"), *month)
    nearest = _nearest(*month, n)
    assert found == ([] if nearest is None else [nearest])


@settings(max_examples=200, deadline=None)
@given(month=_MONTHS, n=st.integers(0, 30))
def test_j5_before_last_and_last_weekday_match_their_definitions(
    month: tuple[int, int], n: int
) -> None:
    year, number = month
    length = calendar.monthrange(year, number)[1]
    assert _days_fired(Schedule.parse(f"0 0 L-{n} * *"), *month) == (
        [length - n] if length - n >= 1 else []
    )
    assert _days_fired(Schedule.parse("0 0 LW * *"), *month) == [_weekdays_of(year, number)[-1]]
    near = _nearest(year, number, length - n) if length - n >= 1 else None
    assert _days_fired(Schedule.parse(f"0 0 L-{n}W * *"), *month) == ([near] if near else [])


@settings(max_examples=200, deadline=None)
@given(month=_MONTHS, weekday=st.integers(0, 7))
def test_j5_last_given_weekday_is_the_last_of_the_month(
    month: tuple[int, int], weekday: int
) -> None:
    year, number = month
    length = calendar.monthrange(year, number)[1]
    python_weekday = (weekday - 1) % 7  # cron 0/7 = Sunday, Python 6 = Sunday
    last = max(
        d for d in range(1, length + 1) if calendar.weekday(year, number, d) == python_weekday
    )
    assert _days_fired(Schedule.parse(f"0 0 * * {weekday}L"), *month) == [last]


DESCRIBED = [
    ("0 9 LW * *", "At 09:00 on the last weekday of the month.", "last wkday 09:00"),
    ("0 9 * * 5L", "At 09:00 on the last Friday of the month.", "last Fri 09:00"),
    ("0 9 * * FRIL", "At 09:00 on the last Friday of the month.", "last Fri 09:00"),
    (
        "0 9 15W * *",
        "At 09:00 on the weekday nearest the 15th of the month.",
        "wkday near 15th 09:00",
    ),
    (
        "0 9 L-3 * *",
        "At 09:00 on the day 3 days before the last day of the month.",
        "last day-3 09:00",
    ),
    ("0 9 L-1 * *", "At 09:00 on the day before the last day of the month.", "last day-1 09:00"),
    (
        "0 9 L-2W * *",
        "At 09:00 on the weekday nearest the day 2 days before the last day of the month.",
        "wkday near last day-2 09:00",
    ),
    ("0 9 1,L * *", "At 09:00 on the 1st and last day of the month.", "1st,last day 09:00"),
    (
        "0 9 1,L-1 * *",
        "At 09:00 on the 1st and the day before the last day of the month.",
        "1st,last day-1 09:00",
    ),
    (
        "0 9 LW 1-3 *",
        "At 09:00 on the last weekday of January through March.",
        "last wkday Jan-Mar 09:00",
    ),
    (
        "0 9 * * MON,5L",
        "At 09:00 on every Monday and the last Friday of the month.",
        "Mon,last Fri 09:00",
    ),
    (
        "0 9 15W * 5L",
        "At 09:00 on the weekday nearest the 15th of the month, and on the last Friday of the month.",
        "wkday near 15th + last Fri 09:00",
    ),
    ("0 0 25-L * *", "At 00:00 on the 25th through 31st of the month.", "25th-31st 00:00"),
]


@pytest.mark.parametrize(("expression", "sentence", "short"), DESCRIBED)
def test_j5_described_in_words(expression: str, sentence: str, short: str) -> None:
    schedule = Schedule.parse(expression)
    assert schedule.describe() == sentence
    assert schedule.describe(short=True) == short


def test_j5_explain_gives_the_words_the_times_and_the_clock_change() -> None:
    explained = explain("30 2 * * 0L", BERLIN, 2, start=datetime(2026, 3, 1))
    assert explained.description == "At 02:30 on the last Sunday of the month."
    assert [t.isoformat() for t in explained.next] == [
        "2026-03-29T03:00:00+02:00",
        "2026-04-26T02:30:00+02:00",
    ]
    assert explained.notes == [
        "2026-03-29: clocks jump from 02:00 CET to 03:00 CEST; the 02:30 run fires at 03:00 "
        "CEST instead"
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 31W 2 *", "day-of-month '31W' selects no day in February"),
        ("0 0 L-30 2 *", "day-of-month 'L-30' selects no day in February"),
        ("0 0 30W 2 *", "day-of-month '30W' selects no day in February"),
        ("0 0 LW * SAT,SUN", None),  # OR: fires on weekends too
        ("0 0 * * 0 0", "has 6 fields"),
    ],
)
def test_j5_never_firing_forms_are_refused_with_the_reason(
    expression: str, message: str | None
) -> None:
    if message is None:
        assert Schedule.parse(expression).next_after(datetime(2026, 1, 1, tzinfo=UTC))
        return
    with pytest.raises(ValueError, match=message):
        Schedule.parse(expression)


def test_j5_seconds_year_and_question_mark_stay_refused_with_their_messages() -> None:
    for expression, message in [
        ("0 0 9 LW * ?", "has 6 fields"),
        ("0 9 LW * * 2027", "has 6 fields"),
        ("0 0 9 ? * 5L 2027", "has 7 fields"),
        ("0 9 ? * 5L", "Quartz syntax"),
        ("0 9 LW * ?", "Quartz syntax"),
    ]:
        with pytest.raises(ValueError, match=message):
            Schedule.parse(expression)


def test_j5_check_warns_of_a_year_without_runs_and_of_crowding(tmp_path: Path) -> None:
    tasks = "\n".join(
        [
            '[tasks.leap]\nschedule = "0 0 29-L 2 *"\ncommand = "true"\ntimezone = "UTC"',
            *(
                f'[tasks.close{i}]\nschedule = "0 9 LW * *"\ncommand = "true"\ntimezone = "UTC"'
                for i in range(5)
            ),
        ]
    )
    taskfile = parse_text(tasks, tmp_path / "tasks.toml")
    # 2026-04-30 (a Thursday) is the last weekday of April; the next 29 February is in 2028.
    findings = check(taskfile, datetime(2026, 4, 29, 12, 0, tzinfo=UTC), environ={})
    said = [(f.task, f.message) for f in findings]
    assert ("leap", "will not fire within a year") in said
    assert any(
        task is None and message.startswith("5 tasks fire at 09:00 UTC (close0, close1")
        for task, message in said
    ), said
