"""The moments of `history --since/--until` (cronctl/timespec.py), with time and zone given:
a date alone is its midnight in the machine's zone, a time without offset a wall time there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronctl.errors import UsageError
from cronctl.timespec import parse_moment

NOW = datetime(2026, 3, 29, 10, 30, tzinfo=UTC)  # the day Europe/Paris moves to summer time

CASES = [
    # (text, zone, the instant in UTC)
    ("now", "Europe/Paris", "2026-03-29T10:30:00"),
    ("today", "Europe/Paris", "2026-03-28T23:00:00"),  # midnight in winter time (+01:00)
    ("yesterday", "Europe/Paris", "2026-03-27T23:00:00"),
    ("today", "America/New_York", "2026-03-29T04:00:00"),
    ("today", "Pacific/Kiritimati", "2026-03-29T10:00:00"),  # +14:00: the 30th there
    ("2026-03-30", "Europe/Paris", "2026-03-29T22:00:00"),  # summer time (+02:00)
    ("2026-03-29T14:00", "Europe/Paris", "2026-03-29T12:00:00"),
    ("2026-03-29 14:00:30", "UTC", "2026-03-29T14:00:30"),
    ("2026-03-29T14:00+05:00", "Europe/Paris", "2026-03-29T09:00:00"),
    ("2026-03-29T14:00Z", "Europe/Paris", "2026-03-29T14:00:00"),
    ("09:15", "Europe/Paris", "2026-03-29T07:15:00"),
    ("9:15", "UTC", "2026-03-29T09:15:00"),
    ("2h", "Europe/Paris", "2026-03-29T08:30:00"),
    ("1d12h ago", "Europe/Paris", "2026-03-27T22:30:00"),
    ("3600", "UTC", "2026-03-29T09:30:00"),
    ("99999999999999999999d", "UTC", "0001-01-02T00:00:00"),  # longer ago than dates go
]


@pytest.mark.parametrize(("text", "zone", "instant"), CASES)
def test_c8_moments(text, zone, instant):
    expected = datetime.fromisoformat(instant).replace(tzinfo=UTC)
    assert parse_moment(text, NOW, lambda: zone) == expected


def test_c8_the_zone_is_looked_up_only_when_needed():
    def no_zone() -> str:
        raise AssertionError("looked up")

    assert parse_moment("2h", NOW, no_zone) == datetime(2026, 3, 29, 8, 30, tzinfo=UTC)
    assert parse_moment("2026-03-29T14:00Z", NOW, no_zone).hour == 14


@pytest.mark.parametrize(
    "text", ["", "soon", "2026-13-01", "25:00", "-2h", "h", "2026-03-29T14:00+99:00", "x" * 500]
)
def test_c8_what_is_no_moment(text):
    with pytest.raises(UsageError) as raised:
        parse_moment(text, NOW, lambda: "UTC")
    assert "is not a time" in raised.value.message and len(raised.value.message) < 100
    assert raised.value.hint and "2026-12-05" in raised.value.hint
