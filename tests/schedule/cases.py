"""The fire-time tables of the schedule tests, one case a line:
`expression | zone (or an alias) | start | the expected fire times, space-separated`."""

from __future__ import annotations

from collections.abc import Mapping


def fire_time_rows(table: str, aliases: Mapping[str, str]) -> list[tuple[str, str, str, list[str]]]:
    """The cases of `table` (blank lines and `#` comments skipped), zone aliases resolved."""
    rows = []
    for line in table.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        expression, zone, start, expected = (part.strip() for part in line.split("|"))
        rows.append((expression, aliases.get(zone, zone), start, expected.split()))
    return rows
