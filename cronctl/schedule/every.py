"""`@every DURATION`: slots at whole multiples of the interval since the Unix epoch.

Slots are absolute instants, so they are stable across restarts and daylight saving time does
not move them (only their wall-clock rendering shifts).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cronctl.durations import MAX_DURATION, format_duration, parse_duration
from cronctl.errors import ScheduleError, UsageError, excerpt

EPOCH = datetime(1970, 1, 1)  # naive UTC, like every instant in this package


def parse_every(argument: str) -> int:
    """Return the interval of `@every ARGUMENT` in seconds (at least 1)."""
    if not argument:
        raise ScheduleError("'@every' needs a duration, e.g. '@every 5m'")
    try:
        seconds = parse_duration(argument)
    except UsageError as error:
        # The duration's own error quotes it; the schedule as a whole is quoted by the caller
        # that names where it came from (the task's key, or explain's argument).
        raise ScheduleError(str(error)) from None
    if seconds < 1:
        raise ScheduleError(f"the interval '{excerpt(argument)}' must be at least 1s")
    if seconds > MAX_DURATION:
        raise ScheduleError(
            f"the interval '{excerpt(argument)}' must be at most {format_duration(MAX_DURATION)}",
            hint="for longer intervals use a cron expression, e.g. '@yearly' or '0 0 1 1 *'",
        )
    return seconds


def next_slot(seconds: int, after: datetime) -> datetime:
    """Return the first slot strictly after the instant `after` (naive UTC)."""
    interval = timedelta(seconds=seconds)
    return EPOCH + ((after - EPOCH) // interval + 1) * interval
