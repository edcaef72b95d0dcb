"""The moments a person gives `history --since` and `--until` (README.md#commands): a time
(`2026-12-05`, `2026-12-05T14:00`, with or without a UTC offset, or `14:00` today), how long
ago (`2h`, `1d12h`, also `2h ago`), or a day by name (`today`, `yesterday`, `now`).

A date or time without an offset is a wall time in the machine's zone, the zone of tasks that
name none (README.md#the-task-file): a date alone is its midnight there, as `journalctl
--since 2026-12-05` is. Time is an argument: `now` is given, and so is the zone, looked up only
when the text needs one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from cronctl.durations import parse_duration
from cronctl.errors import UsageError, excerpt

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

FORMS = "a time like 2026-12-05 or 2026-12-05T14:00[+01:00], a duration ago like 2h, or today"
_DAYS_BACK = {"today": 0, "yesterday": 1}
_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(:\d{2})?")
_AGO = re.compile(r"\s+ago$")
# Longer ago than dates go (year 1): the start of time. A bound no run can be before.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)


def parse_moment(text: str, now: datetime, zone: Callable[[], str]) -> datetime:
    """Return the instant `text` names, seen at `now` (aware); raise UsageError when it names
    none. `zone` returns the name of the zone a time without an offset is in."""
    word = text.strip().lower()
    if word == "now":
        return now
    if word in _DAYS_BACK:
        local = now.astimezone(_zone(zone))
        day = local.date() - timedelta(days=_DAYS_BACK[word])
        return _at(datetime.combine(day, time()), zone)
    ago = _AGO.sub("", word)
    if ago and ago[0].isdigit() and ":" not in ago and "-" not in ago:
        try:
            return now - timedelta(seconds=parse_duration(ago))
        except OverflowError:
            return _EARLIEST
        except UsageError:
            raise _not_a_moment(text) from None
    if _TIME_OF_DAY.fullmatch(word):
        local = now.astimezone(_zone(zone))
        try:
            wall = time.fromisoformat(word if word.index(":") == 2 else "0" + word)  # 9:00
        except ValueError:
            raise _not_a_moment(text) from None
        return _at(datetime.combine(local.date(), wall), zone)
    try:
        moment = datetime.fromisoformat(word.upper().replace(" ", "T", 1))
    except ValueError:
        raise _not_a_moment(text) from None
    return moment.astimezone(UTC) if moment.tzinfo is not None else _at(moment, zone)


def _zone(zone: Callable[[], str]) -> ZoneInfo:
    # Imported here: the zone rules load only when a text needs them (start-up of `history`).
    from cronctl.schedule.zones import load_zone

    return load_zone(zone())


def _at(wall: datetime, zone: Callable[[], str]) -> datetime:
    """The instant of a wall time in the zone (in a DST gap or fold, as zoneinfo reads it)."""
    return wall.replace(tzinfo=_zone(zone)).astimezone(UTC)


def _not_a_moment(text: str) -> UsageError:
    return UsageError(f"{excerpt(text)!r} is not a time", hint=f"give {FORMS}")
