"""Parsing: what is refused and why, what is accepted, H, time zones and attributes."""

from __future__ import annotations

import pytest

from cronctl.errors import ScheduleError, UsageError
from cronctl.schedule import Schedule

# expression | a substring of the message
REJECTED = """
                    | empty
0 0 31 2 *          | day 31 does not occur in February
0 0 30 2 *          | day 30 does not occur in February
0 0 30,31 2 *       | days 30 and 31 do not occur in February
0 0 31 4,6,9,11 *   | day 31 does not occur in April, June, September or November
0 0 */20 * MON#5    | never fires
60 * * * *          | 60 is not in 0-59
* 24 * * *          | 24 is not in 0-23
* * 0 * *           | 0 is not in 1-31
* * 32 * *          | 32 is not in 1-31
* * * 0 *           | 0 is not in 1-12
* * * 13 *          | 13 is not in 1-12
* * * * 8           | 8 is not in 0-7
1-60 * * * *        | 60 is not in 0-59
5-3 * * * *         | reversed range
0 0 * * SAT-SUN     | so write SAT,SUN
*/0 * * * *         | step of 0
1-5/0 * * * *       | step of 0
0 0 * * * *         | has 6 fields
0 0 1 1 * 2026      | has 6 fields
0 0 * * * * *       | has 7 fields
0 0 * *             | has 4 fields
*                   | has 1 field;
0 0 ? * *           | Quartz
0 0 W15 * *         | day-of-month takes L, L-n, LW, L-nW, nW and a-L
0 0 L/2 * *         | as whole list items
0 0 LW/2 * *        | as whole list items
0 0 5L * *          | as whole list items
0 0 1,15W * *       | stand alone in day-of-month
0 0 LW,L * *        | stand alone in day-of-month
0 0 L-31 * *        | L-n takes n from 0 to 30
0 0 32W * *         | '32W' is out of range
0 0 31W 2 *         | day-of-month '31W' selects no day in February
0 0 * * L5          | the last such weekday is written 5L
0 0 * * L           | DOWL (the last such weekday) is day-of-week's
0 0 * * 1-5L        | DOWL
0 0 * * FRI#L       | DOW#N
0 L * * *           | L and W are day-of-month items
0 0W * * *          | hour field: '0W'
0 0 * JANUARY *     | not a month name
0 0 * FOO-MAR *     | 'FOO' is not a month name
0 0 * * FOO         | not a day-of-week name
0 MON * * *         | hour field
0 0 * * MON-FRI#1   | DOW#N
0 0 * * FRI#6       | from 1 to 5
0 0 * * FRI#0       | from 1 to 5
0 0 1#2 * *         | day-of-month field
٣ * * * *           | U+0663
0 0 * * ١           | U+0661
1,,2 * * * *        | empty list item
1, * * * *          | empty list item
-5 * * * *          | not valid
+5 * * * *          | not valid
1.5 * * * *         | not valid
5-5-5 * * * *       | not valid
1/2/3 * * * *       | not valid
*/5a * * * *        | not valid
0 0 * * 1x          | not valid
R * * * *           | not valid
@fortnightly        | unknown macro
@daily now          | takes no argument
@reboot now         | takes no argument
@every              | needs a duration
@every 0s           | at least 1s
@every 5x           | not a duration
@every 1.5h         | not a duration
@every 5m extra     | not a duration
H * * * *           | needs a task name
"""


def _rejections() -> list[tuple[str, str]]:
    rows = []
    for line in REJECTED.strip("\n").splitlines():
        expression, message = line.split("|")
        rows.append((expression.strip(), message.strip()))
    return rows


@pytest.mark.parametrize(("expression", "message"), _rejections())
def test_rejects_with_a_reason(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse(expression)
    assert message in str(caught.value)


def test_schedule_error_is_a_value_error_and_a_usage_error() -> None:
    with pytest.raises(ValueError):
        Schedule.parse("61 * * * *")
    assert issubclass(ScheduleError, UsageError)


@pytest.mark.parametrize("text", ["0 0\n* * *", "0 0 *\x00 * *"])
def test_rejects_control_characters(text: str) -> None:
    with pytest.raises(ScheduleError, match="control character"):
        Schedule.parse(text)


@pytest.mark.parametrize("zone", ["Mars/Base", "", "America", "/etc/passwd", "../x", "utc"])
def test_rejects_unknown_time_zones(zone: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse("0 0 * * *", zone)
    assert f"unknown time zone '{zone}'" in str(caught.value)
    assert caught.value.hint is not None and "IANA" in caught.value.hint


ACCEPTED = [
    "  0 2 * * *  ",
    "0\t2 * *\t*",
    "00 02 01 01 *",
    "0 0 * * 0-7",
    "0 0 * * 5-7",
    "0 0 * * sun,SAT",
    "0 0 * Jan-Mar mon-fri",
    "*/60 * * * *",
    "0 0 1/40 * *",
    "0 0 29 2 *",
    "0 0 * * FRI#5",
    "0 0 L 2 *",
    "0 0 31 2 MON",  # both restricted: OR, so every Monday in February
    "@DAILY",
    "@every 1s",
    "@every 2d",
    "@reboot",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_accepts(expression: str) -> None:
    assert Schedule.parse(expression).text == expression


def test_attributes() -> None:
    schedule = Schedule.parse("*/15 2 * * *", "Europe/London", name="backup")
    assert schedule.text == "*/15 2 * * *"
    assert schedule.timezone == "Europe/London"
    assert schedule.zone.key == "Europe/London"
    assert schedule.name == "backup"
    assert schedule.is_wildcard and not schedule.is_reboot
    assert schedule.interval_seconds is None


@pytest.mark.parametrize(
    ("expression", "wildcard"),
    [
        ("*/15 1 * * *", True),
        ("30 * * * *", True),
        ("@hourly", True),
        ("* * * * *", True),
        ("30 1 * * *", False),
        ("0,30 2 * * *", False),
        ("0-59 2 * * *", False),
        ("@daily", False),
        ("@every 5m", False),
        ("@reboot", False),
    ],
)
def test_wildcard_means_minute_or_hour_starts_with_a_star(expression: str, wildcard: bool) -> None:
    assert Schedule.parse(expression).is_wildcard is wildcard


def test_every_and_reboot_attributes() -> None:
    assert Schedule.parse("@every 1h30m").interval_seconds == 5400
    assert Schedule.parse("@reboot").is_reboot


# H: a value hashed from the task name, stable for a name.


def _values(expression: str, name: str, field: int) -> set[int]:
    cron = Schedule.parse(expression, name=name).cron
    assert cron is not None
    return set(cron.fields[field].values)


def test_h_is_stable_for_a_name_and_varies_between_names() -> None:
    assert _values("H * * * *", "backup", 0) == _values("H * * * *", "backup", 0)
    minutes = {min(_values("H * * * *", f"task{i}", 0)) for i in range(50)}
    assert len(minutes) > 20


def test_h_is_pinned_so_tasks_do_not_move_between_versions() -> None:
    # sha256("backup\nminute"), sha256("backup\nhour"): changing the recipe moves every task.
    assert Schedule.parse("H H * * *", name="backup").describe() == "At 20:16 every day."


def test_h_fields_are_independent() -> None:
    pairs = {
        (min(_values("H H * * *", f"t{i}", 0)), min(_values("H H * * *", f"t{i}", 1)))
        for i in range(40)
    }
    assert len({minute % 24 == hour for minute, hour in pairs}) == 2


@pytest.mark.parametrize("name", ["a", "backup", "nightly-report", "x.y_z"])
def test_h_forms_stay_in_their_ranges(name: str) -> None:
    (minute,) = _values("H * * * *", name, 0)
    assert 0 <= minute <= 59
    every15 = sorted(_values("H/15 * * * *", name, 0))
    assert len(every15) == 4 and every15[0] < 15
    assert every15 == list(range(every15[0], 60, 15))
    (bounded,) = _values("H(0-29) * * * *", name, 0)
    assert 0 <= bounded <= 29
    stepped = sorted(_values("H(0-29)/10 * * * *", name, 0))
    assert stepped[0] < 10 and stepped == list(range(stepped[0], 30, 10))
    (day,) = _values("0 0 H * *", name, 2)
    assert 1 <= day <= 28  # a hashed day exists in every month
    (weekday,) = _values("0 0 * * H", name, 4)
    assert 0 <= weekday <= 6


def test_h_needs_a_name_that_is_not_empty() -> None:
    with pytest.raises(ScheduleError, match="needs a task name"):
        Schedule.parse("H H * * *", name="")


LONG = "1" * 5000


@pytest.mark.parametrize(
    "expression",
    [
        f"{LONG} * * * *",
        f"*/{LONG} * * * *",
        f"1-{LONG} * * * *",
        f"0 0 * * 1#{LONG}",
        f"H(0-{LONG}) * * * *",
        f"@every {LONG}s",
        " ".join(["1"] * 3000),
        "@" + "x" * 5000,
    ],
    ids=["minute", "step", "range", "nth", "hash", "every", "fields", "macro"],
)
def test_h2_huge_numbers_and_texts_are_one_short_error(expression: str) -> None:
    """Decided: a number of thousands of digits is out of range like any other (before: int()
    of more than 4,300 digits raised a bare ValueError, a traceback in `explain`), and the
    message quotes a long expression by its ends, so the error stays one readable line."""
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse(expression, name="task")
    assert len(str(caught.value)) < 250, str(caught.value)[:300]
