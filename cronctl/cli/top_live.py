"""`cronctl top`'s live view: a frame each second in Rich's live display until `q` or Ctrl-C
(README.md#watching-live).

Keys are read one at a time from the terminal in cbreak mode (no echo, no line buffering;
Ctrl-C still interrupts), waiting for them with select() until the next frame is due. The
terminal's mode is restored however the view ends: `q`, Ctrl-C, SIGTERM, SIGHUP or an
exception (`KeyReader` is a context manager, and the two signals become an exception).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any

from cronctl.clock import Clock

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

REFRESH_SECONDS = 1.0
QUIT_KEYS = frozenset("qQ")


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived: leave the live view as `q` does."""


class KeyReader:
    """Single keys of a terminal, with its mode restored on exit."""

    def __init__(self, stream: IO[str]) -> None:
        self.fd = stream.fileno()
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self, timeout: float) -> str | None:
        """A key pressed within `timeout` seconds, or None."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return None
        data = os.read(self.fd, 32)
        if not data:  # the terminal went away
            raise Stopped()
        return data.decode(errors="replace")


@contextmanager
def stop_on_signals() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_live(
    console: Console,
    draw: Callable[[int, int], RenderableType],
    clock: Clock,
    stdin: IO[str] = sys.stdin,
) -> None:
    """Show `draw(width, height)` each second until `q`, Ctrl-C, SIGTERM or SIGHUP. Without a
    terminal on stdin keys cannot be read: only the signals end it."""
    from rich.live import Live

    with ExitStack() as stack:
        stack.enter_context(stop_on_signals())
        keys = stack.enter_context(KeyReader(stdin)) if stdin.isatty() else None
        live = stack.enter_context(
            Live(console=console, screen=True, auto_refresh=False, transient=True)
        )
        try:
            _loop(live, draw, clock, keys)
        except (KeyboardInterrupt, Stopped):
            pass


def _loop(
    live: Live,
    draw: Callable[[int, int], RenderableType],
    clock: Clock,
    keys: KeyReader | None,
) -> None:
    console = live.console
    due = clock.monotonic()
    while True:
        if clock.monotonic() >= due:
            size = console.size
            live.update(draw(size.width, size.height), refresh=True)
            due = clock.monotonic() + REFRESH_SECONDS
        wait = due - clock.monotonic()
        if keys is None:
            clock.sleep(wait)
            continue
        key = keys.read(wait)
        if key is not None and QUIT_KEYS & set(key):
            return
