"""The renderer: which form a stream gets, and plain output written as it is."""

from __future__ import annotations

import io
import os

import pytest
from rich.console import Console

from cronctl.render import Renderer, is_terminal


@pytest.fixture
def tty():
    """A real terminal (the slave end of a pseudo-terminal), as a text stream."""
    master, slave = os.openpty()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115
    yield stream
    stream.close()
    os.close(master)


# One line a case: environment, whether the stream is a terminal, the form expected.
CASES = [
    ({}, True, True),
    ({}, False, False),
    ({"TTY_COMPATIBLE": "0"}, True, False),
    ({"TTY_COMPATIBLE": "1"}, False, True),
    ({"TTY_COMPATIBLE": "1", "FORCE_COLOR": ""}, False, True),
    ({"TTY_COMPATIBLE": "maybe"}, False, False),
    ({"FORCE_COLOR": "1"}, False, True),
    ({"FORCE_COLOR": ""}, True, False),
    ({"FORCE_COLOR": "0"}, False, True),  # any non-empty value forces it (force-color.org)
    ({"NO_COLOR": "1"}, True, True),  # NO_COLOR drops colour, not the terminal form
]


@pytest.mark.parametrize(("environ", "on_tty", "expected"), CASES)
def test_terminal_decision_is_richs_own(environ, on_tty, expected, tty):
    """Plain output is decided without loading Rich's console; the rule must stay Rich's, so
    that a console made later (tables, colour) agrees with it."""
    stream = tty if on_tty else io.StringIO()
    assert is_terminal(stream, environ) is expected
    assert Console(file=stream, _environ=environ).is_terminal is expected


def test_a_closed_stream_is_not_a_terminal():
    stream = io.StringIO()
    stream.close()
    assert is_terminal(stream, {}) is False


def test_plain_output_is_written_as_given(capsys, monkeypatch):
    for variable in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(variable, raising=False)
    renderer = Renderer()
    assert not renderer.rich
    renderer.line("job said :warning: [bold]done[/bold] \x1b[31m")
    renderer.table(["Name", "Next run"], [["a\tb", "in 5m"]])
    renderer.warning("disk :fire: full")
    out, err = capsys.readouterr()
    # No emoji codes replaced, no markup read, control characters shown, cells tab-free.
    assert out == "job said :warning: [bold]done[/bold] \\x1b[31m\nname\tnext_run\na b\tin 5m\n"
    assert err == "warning: disk :fire: full\n"
    assert "out" not in vars(renderer) and "err" not in vars(renderer)  # no console made


def test_terminal_output_goes_through_rich(capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    renderer = Renderer(no_color=True)
    assert renderer.rich and renderer.out.is_terminal
    renderer.table(["Name"], [["backup"]])
    renderer.line(":warning:")
    out, _ = capsys.readouterr()
    assert "Name" in out and "backup" in out and "\t" not in out
    assert ":warning:" in out and "\x1b[" not in out  # emoji codes kept; no colour at all


# ---------------------------------------------------------------------------------------------
# Issue 14: fitting columns, short and ISO times, long relative times.

from datetime import UTC, datetime, timedelta  # noqa: E402

from cronctl import timefmt  # noqa: E402
from cronctl.columns import COLUMN_GAP, Column, fit_columns  # noqa: E402

FIT_COLUMNS = [Column("a", 0, shrink_to=4), Column("b", 2), Column("c", 1, shrink_to=3)]
# natural widths, terminal width, the widths kept ({} when nothing fits)
FIT_CASES = [
    ([10, 5, 8], 100, {0: 10, 1: 5, 2: 8}),  # all fit: natural widths
    ([10, 5, 8], 23 + 2 * COLUMN_GAP, {0: 10, 1: 5, 2: 8}),  # exactly
    ([10, 5, 8], 22 + 2 * COLUMN_GAP, {0: 10, 1: 5, 2: 7}),  # c (rank 1) gives a cell first
    ([10, 5, 8], 17 + 2 * COLUMN_GAP, {0: 9, 1: 5, 2: 3}),  # c at its floor, then a
    ([10, 5, 8], 12 + 2 * COLUMN_GAP, {0: 4, 1: 5, 2: 3}),  # both down to their floor
    ([10, 5, 8], 11 + 2 * COLUMN_GAP, {0: 10, 2: 4}),  # not enough: b (rank 2) goes whole
    ([10, 5, 8], 7 + COLUMN_GAP, {0: 4, 2: 3}),
    ([10, 5, 8], 9, {0: 9}),  # then c (rank 1)
    ([10, 5, 8], 3, {0: 3}),  # the first column, cut
]


@pytest.mark.parametrize(("natural", "width", "expected"), FIT_CASES)
def test_c2_fit_columns_shortens_then_drops_by_rank(natural, width, expected):
    widths = fit_columns(FIT_COLUMNS, natural, width)
    assert widths == expected
    if widths:
        assert sum(widths.values()) + COLUMN_GAP * (len(widths) - 1) <= width


NOW = datetime(2026, 12, 5, 14, 8, 5, 123456, tzinfo=UTC)
# moment, zone, seconds, the short form
SHORT_CASES = [
    (NOW, "UTC", False, "14:08:05"),
    (NOW - timedelta(days=1), "UTC", False, "Dec 4 14:08"),
    (NOW - timedelta(days=1), "UTC", True, "Dec 4 14:08:05"),
    (NOW + timedelta(days=1), "UTC", False, "Dec 6 14:08"),
    (NOW - timedelta(days=366), "UTC", False, "2025-12-04"),
    (NOW.replace(hour=23), "Europe/Berlin", False, "Dec 6 00:08"),  # the zone's date
    (None, "UTC", False, "-"),
]


@pytest.mark.parametrize(("moment", "zone", "seconds", "expected"), SHORT_CASES)
def test_c2_short_times_by_distance_from_now(moment, zone, seconds, expected):
    assert timefmt.short(moment, zone, NOW, seconds) == expected


@pytest.mark.parametrize(
    ("moment", "zone", "expected"),
    [
        (NOW, "UTC", "2026-12-05T14:08:05+00:00"),
        (NOW, "Europe/Berlin", "2026-12-05T15:08:05+01:00"),
        (NOW.replace(month=7), "America/New_York", "2026-07-05T10:08:05-04:00"),
        (None, "UTC", "-"),
    ],
)
def test_c4_plain_times_are_iso_8601_to_the_second(moment, zone, expected):
    assert timefmt.iso_seconds(moment, zone) == expected


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(minutes=5), "in 5m"),
        (-timedelta(seconds=44), "44s ago"),
        (timedelta(days=1911, hours=9), "in 5y 86d"),
        (timedelta(days=365), "in 1y"),
        (-timedelta(days=400, hours=3), "1y 35d ago"),
        (timedelta(days=364, hours=23), "in 364d 23h"),
    ],
)
def test_c4_long_relative_times_read_as_years_and_days(delta, expected):
    assert timefmt.relative(NOW + delta, NOW) == expected
