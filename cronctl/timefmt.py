"""How times, durations and counts read: times in the task's zone, in three forms.

* `iso_seconds`: ISO 8601 with the UTC offset, to the second (`2026-12-05T14:08:05+01:00`):
  every timestamp of plain (piped) output (README.md#a-five-minute-tour).
* `short`: a terminal table's cell, as short as the distance from now allows: `14:08:05` today,
  `Dec 4 14:08` this year, `2025-12-04` older (README.md#a-five-minute-tour).
* `relative`: `in 5m`, `44s ago`, `in 5y 84d`: on a terminal only.

`seconds` says whether a schedule's slots need their seconds shown (`Schedule.on_whole_minutes`):
`@every 2s` lists five different times, not five identical `14:18`.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

DAY = 86400
YEAR_DAYS = 365  # a relative time counts years of 365 days: `in 5y 84d` reads at a glance


def iso(moment: datetime | None) -> str | None:
    """Return ISO 8601 with offset (the JSON form), or None."""
    return moment.isoformat() if moment is not None else None


def iso_seconds(moment: datetime | None, zone: str = "UTC") -> str:
    """Return ISO 8601 with the UTC offset, to the second, in `zone` (plain output); `-` for
    None."""
    if moment is None:
        return "-"
    return local(moment, zone).replace(microsecond=0).isoformat()


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def stamp(moment: datetime | None, zone: str, seconds: bool = False) -> str:
    """Return `2026-03-08 03:00 EDT` in `zone` (`03:00:05` with `seconds`)."""
    if moment is None:
        return "-"
    shown = local(moment, zone)
    clock = "%H:%M:%S " if seconds else "%H:%M "
    return shown.strftime("%Y-%m-%d " + clock) + (shown.tzname() or "")


def short(moment: datetime | None, zone: str, now: datetime, seconds: bool = False) -> str:
    """Return the shortest clear form in `zone`: `14:08:05` on now's day, `Dec 4 14:08` in
    now's year (`Dec 4 14:08:05` with `seconds`), else `2025-12-04`."""
    if moment is None:
        return "-"
    shown, today = local(moment, zone), local(now, zone)
    if shown.date() == today.date():
        return shown.strftime("%H:%M:%S")
    if shown.year == today.year:
        clock = shown.strftime("%H:%M:%S" if seconds else "%H:%M")
        return f"{shown.strftime('%b')} {shown.day} {clock}"
    return shown.strftime("%Y-%m-%d")


def relative(moment: datetime | None, now: datetime) -> str:
    """Return "in 3h 12m", "5m ago", "in 5y 84d"."""
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    text = span(abs(seconds))
    if abs(seconds) < 1:
        return "now"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def span(seconds: float) -> str:
    """Return a two-unit form of a length of time: `3h 12m`, `45s`, `2d 4h`, `5y 84d`."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    units = (("y", YEAR_DAYS * DAY), ("d", DAY), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for unit, size in units:
        count, total = divmod(total, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0")) or "0s"


def duration_ms(value: int | None) -> str:
    if value is None:
        return "-"
    if value < 1000:
        return f"{value}ms"
    if value < 60_000:
        return f"{value / 1000:.1f}s"
    return span(value / 1000)


def counted(number: int, noun: str) -> str:
    """Return "1 task", "3 tasks" (nouns with a plain plural: task, run, timer, failure)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
