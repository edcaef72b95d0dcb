"""English words shared by error messages and descriptions."""

from __future__ import annotations

MONTH_NAMES = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
COUNTING = ("", "first", "second", "third", "fourth", "fifth")


def ordinal(number: int) -> str:
    """Return `1st`, `2nd`, `11th`, `23rd`..."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 10 <= number % 100 <= 20 else suffix}"


def join(items: list[str], last: str = "and") -> str:
    """Return `a`, `a and b`, `a, b and c` (or with `or`)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"
