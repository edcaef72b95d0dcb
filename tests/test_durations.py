import pytest

from cronctl.durations import format_duration, parse_duration
from cronctl.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
        ("90", 90),
        (90, 90),
        ("0", 0),
        (" 5m ", 300),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "5x", "m", "1.5h", "-5", -5, "5 m", "٣", "1m1h", True, 1.5, "1h 30m"]
)
def test_parse_duration_rejects(text):
    with pytest.raises(UsageError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (5400, "1h30m"), (172800, "2d"), (93784, "1d2h3m4s")],
)
def test_format_duration_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
