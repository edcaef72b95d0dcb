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
