"""h17: clock changes of more than 3 hours are changes of calendar, not daylight saving.

README.md#daylight-saving-time: cron's DST rules (a fixed-time task fires once at the first
instant after a gap, and only in the first pass of a repeat) hold for shifts of up to 3 hours.
A larger shift, a date-line move or an Antarctic station changing zone, is the clock being set,
as Vixie cron and cronie treat it: every task follows the wall clock, so the fixed-time slots
in a skipped span have no run and repeated wall times run again.

Every row is a real zone of tzdata; `test_h17_the_jumps_are_where_the_table_assumes` checks
each transition with zoneinfo, so the expected instants below are derived by hand from it.
"""

# Table-driven: one line a case, however long the case (as test_fire_times.py).
# ruff: noqa: E501

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronctl.schedule import Schedule
from cronctl.schedule.explain import explain
from tests.schedule.cases import fire_time_rows

APIA, KWAJALEIN, VOSTOK, CASEY = (
    "Pacific/Apia",
    "Pacific/Kwajalein",
    "Antarctica/Vostok",
    "Antarctica/Casey",
)

JUMPS = [
    # zone, last instant on the old offset (UTC), old offset, new offset (hours)
    (APIA, "2011-12-30T09:59:59", -10, 14),  # wall 2011-12-30 00:00 -> 12-31 00:00: no Dec 30
    (KWAJALEIN, "1993-08-21T11:59:59", -12, 12),  # wall 08-21 00:00 -> 08-22 00:00: no Aug 21
    (VOSTOK, "1994-10-31T23:59:59", 0, 7),  # wall 11-01 00:00 -> 07:00: a 7-hour gap
    (CASEY, "2009-10-17T17:59:59", 8, 11),  # wall 02:00 -> 05:00: 3 hours, still DST's rule
    (KWAJALEIN, "1969-09-30T12:59:59", 11, -12),  # wall 10-01 00:00 -> 09-30 01:00: 23 h twice
    (VOSTOK, "1994-01-31T16:59:59", 7, 0),  # wall 02-01 00:00 -> 01-31 17:00: 7 hours twice
    (CASEY, "2010-03-04T14:59:59", 11, 8),  # wall 03-05 02:00 -> 03-04 23:00: 3 hours twice
]

CASES = """
# Apia skipped 2011-12-30: its fixed-time slots have no run (before: 12-31 00:00+14:00).
0 12 * * *     | APIA | 2011-12-28T00:00+00:00 | 2011-12-28T12:00-10:00 2011-12-29T12:00-10:00 2011-12-31T12:00+14:00
30 2 * * *     | APIA | 2011-12-29T12:00-10:00 | 2011-12-31T02:30+14:00 2012-01-01T02:30+14:00
0 12 30 12 *   | APIA | 2011-12-01T00:00-10:00 | 2012-12-30T12:00+14:00
0 0 * * *      | APIA | 2011-12-29T12:00-10:00 | 2011-12-31T00:00+14:00 2012-01-01T00:00+14:00
0 * * * *      | APIA | 2011-12-29T22:30-10:00 | 2011-12-29T23:00-10:00 2011-12-31T00:00+14:00 2011-12-31T01:00+14:00
# Kwajalein skipped 1993-08-21; Vostok 00:00-06:59 of 1994-11-01.
0 9 * * *      | KWAJALEIN | 1993-08-20T00:00-12:00 | 1993-08-20T09:00-12:00 1993-08-22T09:00+12:00
0 3 * * *      | VOSTOK | 1994-10-31T12:00+00:00 | 1994-11-02T03:00+07:00
30 7 * * *     | VOSTOK | 1994-10-31T12:00+00:00 | 1994-11-01T07:30+07:00
# A 3-hour gap is daylight saving's: the slot fires at the first instant after it.
0 3 * * *      | CASEY  | 2009-10-17T12:00+08:00 | 2009-10-18T05:00+11:00 2009-10-19T03:00+11:00
# Kwajalein lived 1969-09-30 01:00-23:59 twice: a fixed-time task runs in both passes.
0 12 * * *     | KWAJALEIN | 1969-09-29T00:00+11:00 | 1969-09-29T12:00+11:00 1969-09-30T12:00+11:00 1969-09-30T12:00-12:00 1969-10-01T12:00-12:00
0 12 * * *     | KWAJALEIN | 1969-09-30T05:00-12:00 | 1969-09-30T12:00-12:00 1969-10-01T12:00-12:00
0 0 * * *      | KWAJALEIN | 1969-09-30T00:00+11:00 | 1969-10-01T00:00-12:00
0 20 * * *     | VOSTOK | 1994-01-31T12:00+07:00 | 1994-01-31T20:00+07:00 1994-01-31T20:00+00:00 1994-02-01T20:00+00:00
# A 3-hour repeat is daylight saving's: first pass only.
30 23 * * *    | CASEY  | 2010-03-04T12:00+11:00 | 2010-03-04T23:30+11:00 2010-03-05T23:30+08:00
"""

ALIASES = {"APIA": APIA, "KWAJALEIN": KWAJALEIN, "VOSTOK": VOSTOK, "CASEY": CASEY}


@pytest.mark.parametrize(
    ("expression", "zone", "start", "expected"), fire_time_rows(CASES, ALIASES)
)
def test_h17_big_jumps_follow_the_wall_clock(
    expression: str, zone: str, start: str, expected: list[str]
) -> None:
    """Compared as instants with their offsets (isoformat): 12:00-12:00 and 12:00+11:00 of the
    same wall day are different runs."""
    times = Schedule.parse(expression, zone).upcoming(datetime.fromisoformat(start), len(expected))
    assert [t.isoformat() for t in times] == [
        datetime.fromisoformat(e).isoformat() for e in expected
    ]


@pytest.mark.parametrize(("zone", "last_old", "old", "new"), JUMPS)
def test_h17_the_jumps_are_where_the_table_assumes(
    zone: str, last_old: str, old: float, new: float
) -> None:
    instant = datetime.fromisoformat(last_old).replace(tzinfo=UTC)
    assert instant.astimezone(ZoneInfo(zone)).utcoffset() == timedelta(hours=old)
    after = (instant + timedelta(seconds=1)).astimezone(ZoneInfo(zone))
    assert after.utcoffset() == timedelta(hours=new)


NOTES = [
    (
        "0 12 * * *",
        APIA,
        "2011-12-28T00:00+00:00",
        "2011-12-30: clocks jump 24 hours, from 2011-12-30 00:00 -10 to 2011-12-31 00:00 +14; "
        "a change of more than 3 hours is not daylight saving, so every task follows the wall "
        "clock; wall times 2011-12-30 00:00 to 23:59 do not exist, so the 12:00 run is skipped",
    ),
    (
        "*/30 * * * *",
        APIA,
        "2011-12-29T23:00-10:00",
        "2011-12-30: clocks jump 24 hours, from 2011-12-30 00:00 -10 to 2011-12-31 00:00 +14; "
        "a change of more than 3 hours is not daylight saving, so every task follows the wall "
        "clock; wall times 2011-12-30 00:00 to 23:59 do not exist, so its runs at 00:00 to 23:30 "
        "(48 runs) are skipped",
    ),
    (
        "0 12 * * *",
        KWAJALEIN,
        "1969-09-29T00:00+11:00",
        "1969-10-01: clocks go back 23 hours, from 1969-10-01 00:00 +11 to 1969-09-30 01:00 -12; "
        "a change of more than 3 hours is not daylight saving, so every task follows the wall "
        "clock; wall times 1969-09-30 01:00 to 23:59 happen twice, so the 12:00 run fires in "
        "both passes",
    ),
    (
        "0 3 * * *",
        VOSTOK,
        "1994-01-30T00:00+07:00",
        "1994-02-01: clocks go back 7 hours, from 1994-02-01 00:00 +07 to 1994-01-31 17:00 -00; "
        "a change of more than 3 hours is not daylight saving, so every task follows the wall "
        "clock; wall times 1994-01-31 17:00 to 23:59 happen twice; this task has no run in them",
    ),
    (
        "@every 5h",
        APIA,
        "2011-12-29T12:00-10:00",
        "2011-12-30: clocks jump 24 hours, from 2011-12-30 00:00 -10 to 2011-12-31 00:00 +14; "
        "a change of more than 3 hours is not daylight saving, so every task follows the wall "
        "clock; @every slots are absolute instants, so only their wall-clock times shift",
    ),
    # 3 hours is still daylight saving's rule, and its note.
    (
        "0 3 * * *",
        CASEY,
        "2009-10-17T00:00+08:00",
        "2009-10-18: clocks jump from 02:00 +08 to 05:00 +11; the 03:00 run fires at 05:00 +11 "
        "instead",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "start", "note"), NOTES)
def test_h17_explain_notes_a_big_jump(expression: str, zone: str, start: str, note: str) -> None:
    explained = explain(expression, zone, 5, start=datetime.fromisoformat(start))
    assert note in explained.notes


def test_h17_cronctl_explain_shows_the_skipped_day(cronctl_exe: list[str]) -> None:
    """What a user sees: Dec 30 is not among the fire times, and the note says why."""
    result = subprocess.run(
        [
            *cronctl_exe,
            *("explain", "0 12 * * *", "--tz", APIA, "--from", "2011-12-28T00:00Z"),
            *("--count", "3"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "2011-12-31T12:00:00+14:00" in result.stdout  # piped: ISO 8601
    assert "2011-12-30" not in result.stdout.split("note:")[0]
    assert "note: 2011-12-30: clocks jump 24 hours" in result.stdout
    assert "so the 12:00 run is skipped" in result.stdout
