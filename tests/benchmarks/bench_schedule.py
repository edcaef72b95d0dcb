"""Time per Schedule.next_after, against plain croniter get_next in the same run.

Plain script (pytest does not collect it):  python tests/benchmarks/bench_schedule.py

For each expression both answer "next fire time after t" for the same starts, spread over
2026-2027 in America/New_York. Each side is timed over all starts, alternating, REPEATS times
after a warm-up pass (zone transitions and day tables are cached per process, as in serve);
the medians per call are compared. Target: at most 2x croniter's time, and under 1 ms.
The day forms of README.md#last-days-and-nearest-weekdays (`LW`, `5L`, `15W`, `L-3`), whose
syntax croniter reads otherwise or not at all, are compared with cronctl's own `0 0 1 * *`
(one run a month, as they have): at most 2x its time, and under 1 ms.
`main()` returns the rows; run as a script it prints them and exits 1 when a target is missed.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from croniter import croniter

from cronctl.schedule import Schedule

ZONE = ZoneInfo("America/New_York")
EXPRESSIONS = {
    "dense": "* * * * *",
    "business hours": "*/15 9-17 * * MON-FRI",
    "sparse": "0 0 29 2 *",
    "dom or dow": "0 0 1,15 * MON",
}
# Each against MONTHLY, in the same run.
DAY_FORMS = {
    "last weekday": "0 0 LW * *",
    "last Friday": "0 0 * * 5L",
    "nearest weekday": "0 0 15W * *",
    "3 days before the last": "0 0 L-3 * *",
}
MONTHLY = "0 0 1 * *"
STARTS = [datetime(2026, 1, 1, tzinfo=ZONE) + timedelta(seconds=i * 31_337) for i in range(2000)]
REPEATS = 7
RATIO_TARGET = 2.0
MICROSECONDS_TARGET = 1000.0


def _seconds_per_call(next_after: Callable[[datetime], object]) -> float:
    begin = time.perf_counter()
    for start in STARTS:
        next_after(start)
    return (time.perf_counter() - begin) / len(STARTS)


def measure(expression: str) -> tuple[float, float]:
    """Return the median microseconds per call of cronctl and of croniter."""
    schedule = Schedule.parse(expression, ZONE.key)
    reference = croniter(expression, STARTS[0])

    def croniter_next(start: datetime) -> object:
        reference.set_current(start, force=True)
        return reference.get_next(datetime)

    ours, theirs = [], []
    for repeat in range(REPEATS + 1):
        mine, baseline = _seconds_per_call(schedule.next_after), _seconds_per_call(croniter_next)
        if repeat:  # the first pass warms caches
            ours.append(mine * 1e6)
            theirs.append(baseline * 1e6)
    return statistics.median(ours), statistics.median(theirs)


def measure_against_monthly(expression: str) -> tuple[float, float]:
    """Return the median microseconds per call of `expression` and of MONTHLY, alternating."""
    schedule = Schedule.parse(expression, ZONE.key)
    monthly = Schedule.parse(MONTHLY, ZONE.key)
    ours, theirs = [], []
    for repeat in range(REPEATS + 1):
        mine, baseline = (
            _seconds_per_call(schedule.next_after),
            _seconds_per_call(monthly.next_after),
        )
        if repeat:  # the first pass warms caches
            ours.append(mine * 1e6)
            theirs.append(baseline * 1e6)
    return statistics.median(ours), statistics.median(theirs)


def day_form_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for label, expression in DAY_FORMS.items():
        ours, theirs = measure_against_monthly(expression)
        rows.append(
            {
                "figure": f"us per next_after, {label} `{expression}`, vs `{MONTHLY}`",
                "value": round(ours, 1),
                "baseline": round(theirs, 1),
                "ratio": round(ours / theirs, 2),
                "target": f"ratio <= {RATIO_TARGET:g} and value < {MICROSECONDS_TARGET:g}",
                "passed": ours / theirs <= RATIO_TARGET and ours < MICROSECONDS_TARGET,
            }
        )
    return rows


def main() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for label, expression in EXPRESSIONS.items():
        ours, theirs = measure(expression)
        rows.append(
            {
                "figure": f"us per next_after, {label} `{expression}`, vs croniter get_next",
                "value": round(ours, 1),
                "baseline": round(theirs, 1),
                "ratio": round(ours / theirs, 2),
                "target": f"ratio <= {RATIO_TARGET:g} and value < {MICROSECONDS_TARGET:g}",
                "passed": ours / theirs <= RATIO_TARGET and ours < MICROSECONDS_TARGET,
            }
        )
    return rows + day_form_rows()


if __name__ == "__main__":
    results = main()
    table: list[dict[str, object]] = [{key: key for key in results[0]}, *results]
    widths = {key: max(len(str(row[key])) for row in table) for key in table[0]}
    for row in table:
        print("  ".join(str(row[key]).ljust(width) for key, width in widths.items()))
    sys.exit(0 if all(row["passed"] for row in results) else 1)
