"""describe(): one case a line, expression | expected English."""

from __future__ import annotations

import pytest

from cronctl.schedule import Schedule

SENTENCES = """
* * * * *              | Every minute.
*/15 * * * *           | Every 15 minutes.
5/15 * * * *           | Every 15 minutes from minute 5.
*/45 * * * *           | At minutes 0 and 45 past every hour.
*/7 * * * *            | At minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56 past every hour.
0-10 * * * *           | At minutes 0 through 10 past every hour.
30 * * * *             | At minute 30 past every hour.
@hourly                | At minute 0 past every hour.
0 */2 * * *            | At minute 0 past every 2nd hour.
15 1-23/2 * * *        | At minute 15 past every 2nd hour from 01:00.
0 */5 * * *            | At 00:00, 05:00, 10:00, 15:00 and 20:00 every day.
0 2 * * *              | At 02:00 every day.
@daily                 | At 00:00 every day.
0,30 2 * * *           | At 02:00 and 02:30 every day.
0 9,17 * * 1-5         | At 09:00 and 17:00 on Monday through Friday.
* 1 * * *              | Every minute from 01:00 through 01:59.
*/15 9-17 * * MON-FRI  | Every 15 minutes from 09:00 through 17:45 on Monday through Friday.
*/10 9,17 * * *        | Every 10 minutes during hours 9 and 17.
0-10,30 9-17 * * *     | At minutes 0 through 10 and 30 past hours 9 through 17.
0 0 * * MON            | At 00:00 on every Monday.
@weekly                | At 00:00 on every Sunday.
0 0 * * 5-7            | At 00:00 on Friday through Sunday.
0 0 * * SAT,SUN        | At 00:00 on Saturday and Sunday.
0 0 * * MON,WED,FRI    | At 00:00 on Monday, Wednesday and Friday.
0 0 1 * *              | At 00:00 on the 1st of the month.
@yearly                | At 00:00 on the 1st of January.
0 0 1,15 * *           | At 00:00 on the 1st and 15th of the month.
0 0 1-7 * *            | At 00:00 on the 1st through 7th of the month.
0 0 L * *              | At 00:00 on the last day of the month.
0 0 1,L * *            | At 00:00 on the 1st and last day of the month.
0 0 L 2 *              | At 00:00 on the last day of February.
0 0 29 2 *             | At 00:00 on the 29th of February.
0 0 */2 * *            | At 00:00 on every 2nd day of the month.
0 0 5/7 * *            | At 00:00 on every 7th day of the month from the 5th.
0 0 1 */3 *            | At 00:00 on the 1st of January, April, July and October.
0 2 * 1-3 *            | At 02:00 every day in January through March.
0 0 * 1,7 MON          | At 00:00 on every Monday in January and July.
0 9 * * FRI#1          | At 09:00 on the first Friday of the month.
0 12 * * SUN#2,SUN#4   | At 12:00 on the second and fourth Sunday of the month.
0 9 * * MON,FRI#1      | At 09:00 on every Monday and the first Friday of the month.
0 0 1,15 * MON         | At 00:00 on the 1st and 15th of the month, and on every Monday.
0 0 1 * 1-5            | At 00:00 on the 1st of the month, and on Monday through Friday.
0 0 1,15 2 MON         | At 00:00 on the 1st and 15th of the month, and on every Monday, in February.
0 0 1-31 * MON         | At 00:00 every day.
0 0 */2 * MON          | At 00:00 on every 2nd day of the month, if it falls on a Monday.
0 0 */2 * MON,FRI      | At 00:00 on every 2nd day of the month, if it falls on Monday or Friday.
0 0 13 * */5           | At 00:00 on the 13th of the month, if it falls on Friday or Sunday.
@every 5m              | Every 5 minutes (at whole multiples since the Unix epoch).
@every 1m              | Every minute (at whole multiples since the Unix epoch).
@every 90s             | Every 90 seconds (at whole multiples since the Unix epoch).
@every 2h              | Every 2 hours (at whole multiples since the Unix epoch).
@every 1d              | Every day (at whole multiples since the Unix epoch).
@reboot                | Once each time cronctl serve starts.
"""

SHORT = """
0 2 * * *              | daily at 02:00
*/15 * * * *           | every 15 min
* * * * *              | every min
0 0 1,15 * MON         | 1st,15th + Mon 00:00
0 9 * * MON-FRI        | Mon-Fri 09:00
*/15 9-17 * * MON-FRI  | every 15 min 09:00-17:45, Mon-Fri
*/45 * * * *           | hourly at :00,:45
0 */2 * * *            | every 2h at :00
0 0 L * *              | last day 00:00
0 9 * * FRI#1          | 1st Fri 09:00
@yearly                | 1st Jan 00:00
0 0 */2 * MON          | every 2nd day if Mon 00:00
@every 90s             | every 1m30s
@reboot                | at serve start
"""


def _table(text: str) -> list[tuple[str, str]]:
    rows = []
    for line in text.strip().splitlines():
        expression, expected = line.split("|")
        rows.append((expression.strip(), expected.strip()))
    return rows


@pytest.mark.parametrize(("expression", "sentence"), _table(SENTENCES))
def test_describe(expression: str, sentence: str) -> None:
    assert Schedule.parse(expression).describe() == sentence


@pytest.mark.parametrize(("expression", "short"), _table(SHORT))
def test_describe_short(expression: str, short: str) -> None:
    assert Schedule.parse(expression).describe(short=True) == short


def test_describe_uses_the_values_h_resolved_to() -> None:
    schedule = Schedule.parse("H/20 H * * *", name="backup")
    cron = schedule.cron
    assert cron is not None
    (hour,) = cron.hour.values
    minutes = sorted(cron.minute.values)
    expected = " and ".join(
        [", ".join(f"{hour:02d}:{m:02d}" for m in minutes[:-1]), f"{hour:02d}:{minutes[-1]:02d}"]
    )
    assert schedule.describe() == f"At {expected} every day."
