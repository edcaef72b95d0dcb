"""cronctl/cli/top_live.py in process, on a real pseudo-terminal: the terminal's mode is restored
however the live view ends, an exception included (the command itself: test_watch_cli.py)."""

from __future__ import annotations

import io
import os
import pty
import termios

import pytest
from rich.console import Console
from rich.text import Text

from cronctl.cli.top_live import KeyReader, run_live
from cronctl.clock import SYSTEM_CLOCK


@pytest.fixture
def terminal():
    leader, follower = pty.openpty()
    stdin = os.fdopen(follower, "r", closefd=True)
    yield leader, stdin
    stdin.close()
    os.close(leader)


def console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=80, height=24)


def test_q_returns_and_restores_the_mode(terminal):
    leader, stdin = terminal
    before = termios.tcgetattr(stdin.fileno())
    frames: list[tuple[int, int]] = []

    def draw(width: int, height: int) -> Text:
        frames.append((width, height))
        return Text("frame")

    os.write(leader, b"xq")  # a key that means nothing, then q
    run_live(console(), draw, SYSTEM_CLOCK, stdin)
    assert frames == [(80, 24)]
    assert termios.tcgetattr(stdin.fileno()) == before


def test_an_exception_in_a_frame_restores_the_mode(terminal):
    leader, stdin = terminal
    before = termios.tcgetattr(stdin.fileno())
    seen: list[list[object]] = []

    def draw(width: int, height: int) -> Text:
        seen.append(termios.tcgetattr(stdin.fileno()))
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        run_live(console(), draw, SYSTEM_CLOCK, stdin)
    assert seen and seen[0] != before  # cbreak while it ran
    assert termios.tcgetattr(stdin.fileno()) == before


def test_key_reader_reads_single_keys_without_enter(terminal):
    leader, stdin = terminal
    with KeyReader(stdin) as keys:
        assert keys.read(0.05) is None
        os.write(leader, b"q")
        assert keys.read(5.0) == "q"
