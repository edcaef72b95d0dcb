"""How times, durations and counts read to a person: times in the task's zone, with a
relative form."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def iso(moment: datetime | None) -> str | None:
    """Return ISO 8601 with offset (the JSON form), or None."""
    return moment.isoformat() if moment is not None else None


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def stamp(moment: datetime | None, zone: str) -> str:
    """Return `2026-03-08 03:00 EDT` in `zone`."""
    if moment is None:
        return "-"
    shown = local(moment, zone)
    return shown.strftime("%Y-%m-%d %H:%M ") + (shown.tzname() or "")


def relative(moment: datetime | None, now: datetime) -> str:
    """Return "in 3h 12m" or "5m ago"."""
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    text = span(abs(seconds))
    if abs(seconds) < 1:
        return "now"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def span(seconds: float) -> str:
    """Return a two-unit form of a length of time: `3h 12m`, `45s`, `2d 4h`."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
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
