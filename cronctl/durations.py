"""Durations as people write them in the task file: `45s`, `5m`, `1h30m`, `2d`, or seconds."""

from __future__ import annotations

import re

from cronctl.errors import UsageError

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")

ALLOWED = "a duration like 45s, 5m, 1h30m, 2d, or a whole number of seconds"
# The longest duration a task may name (timeouts, delays, `@every`): a year. Longer `@every`
# intervals would overflow datetime within a few slots.
MAX_DURATION = 365 * 86400
# No duration is written in more characters than this; int() refuses 4300 digits and more.
_LONGEST = 100


def parse_duration(value: str | int) -> int:
    """Return the number of seconds in `value`; raise UsageError when it is not a duration."""
    if isinstance(value, bool):
        raise UsageError(f"{value!r} is not {ALLOWED}")
    if isinstance(value, int):
        if value < 0:
            raise UsageError(f"{value} is negative; expected {ALLOWED}")
        return value
    if not isinstance(value, str):
        raise UsageError(f"{value!r} is not {ALLOWED}")
    text = value.strip()
    if len(text) > _LONGEST:
        raise UsageError(f"a text of {len(text)} characters is not {ALLOWED}")
    # str.isdigit accepts other scripts' digits; durations are ASCII only.
    if text.isascii() and text.isdigit():
        return int(text)
    match = _DURATION.fullmatch(text)
    if not text or not text.isascii() or match is None or not any(match.groups()):
        raise UsageError(f"{value!r} is not {ALLOWED}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    """Return `seconds` in the compact form parse_duration reads (`1h30m`, `45s`, `0s`)."""
    total = int(round(seconds))
    if total == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
