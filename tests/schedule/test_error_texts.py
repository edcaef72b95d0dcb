"""Error texts of schedules (issue 14, item 5): a reversed range is answered with the ranges it
was meant as, computed from the range given, and no error says the schedule twice."""

from __future__ import annotations

import pytest

from cronctl import model
from cronctl.errors import ScheduleError, TaskFileError
from cronctl.schedule import Schedule

# expression | the advice, exactly as the message ends
REVERSED = """
0 0 * * FRI-MON     | ranges do not wrap, so write FRI-SAT,SUN-MON
0 0 * * fri-mon     | ranges do not wrap, so write FRI-SAT,SUN-MON
0 0 * * 5-1         | ranges do not wrap, so write 5-6,0-1
0 0 * * SAT-SUN     | ranges do not wrap, so write SAT,SUN
0 0 * * 6-0         | ranges do not wrap, so write 6,0
0 0 * * 7-1         | ranges do not wrap, so write 0-1
0 0 * * THU-TUE     | ranges do not wrap, so write THU-SAT,SUN-TUE
0 22-2 * * *        | ranges do not wrap, so write 22-23,0-2
50-10 * * * *       | ranges do not wrap, so write 50-59,0-10
0 0 30-2 * *        | ranges do not wrap, so write 30-31,1-2
0 0 * NOV-FEB *     | ranges do not wrap, so write NOV-DEC,JAN-FEB
0 0 * 12-1 *        | ranges do not wrap, so write 12,1
0 0 * * 5-1/2       | ranges do not wrap; split it in two at the end of the field (6)
"""


def _rows(table: str) -> list[tuple[str, str]]:
    return [
        (left.strip(), right.strip())
        for left, right in (line.split("|") for line in table.strip("\n").splitlines())
    ]


@pytest.mark.parametrize(("expression", "advice"), _rows(REVERSED))
def test_c5_reversed_range_advice_is_computed_from_the_range(expression: str, advice: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse(expression)
    assert caught.value.message.endswith(advice), caught.value.message
    assert "6-7" not in caught.value.message or "6-7" in expression


# The schedule of a task | its error in the task file, after "task 'a', key 'schedule': "
TASK_ERRORS = """
@every 30x          | '@every 30x': '30x' is not a duration like 45s, 5m, 1h30m, 2d, or a whole number of seconds
@every 0s           | '@every 0s': the interval '0s' must be at least 1s
@bogus              | unknown macro '@bogus'
0 0 *               | '0 0 *' has 3 fields; a cron schedule has 5: minute hour day-of-month month day-of-week
0 0 30 2 *          | '0 0 30 2 *' never fires: day 30 does not occur in February
0 0 * * FRI-MON     | '0 0 * * FRI-MON': day-of-week field: 'FRI-MON' is a reversed range (5 > 1); ranges do not wrap, so write FRI-SAT,SUN-MON
"""  # noqa: E501


@pytest.mark.parametrize(("schedule", "message"), _rows(TASK_ERRORS))
def test_c5_a_schedule_error_says_the_schedule_once(schedule: str, message: str) -> None:
    with pytest.raises(TaskFileError) as caught:
        model.parse_task("a", {"schedule": schedule, "command": "true"}, model.Defaults(), "UTC")
    assert caught.value.message == f"task 'a', key 'schedule': {message}"
