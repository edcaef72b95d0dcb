"""The command line: a thin client of the library. Each command parses, calls, and renders."""

import os
import sys

# Importing the command modules registers their commands on `app`.
# The order of these imports is the order of `cronctl --help`.
from cronctl.cli import tasks as _tasks  # noqa: F401, I001
from cronctl.cli import explain as _explain  # noqa: F401
from cronctl.cli import runs as _runs  # noqa: F401
from cronctl.cli import health as _health  # noqa: F401
from cronctl.cli import serve as _serve  # noqa: F401
from cronctl.cli import system as _system  # noqa: F401
from cronctl.cli.app import app


def main() -> None:
    try:
        app(prog_name="cronctl")
    except SystemExit as stop:
        code = stop.code
        if code == 1 and _click_saw_a_closed_pipe():
            code = 0  # `cronctl --help | head -1`: the reader went away; not a failure
        _flush_stdout()
        raise SystemExit(code) from None
    _flush_stdout()


def _click_saw_a_closed_pipe() -> bool:
    """Typer's Click turns EPIPE outside our commands (--help, --version, usage text) into
    exit status 1, after wrapping sys.stdout in its PacifyFlushWrapper."""
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def _flush_stdout() -> None:
    """Flush what is still buffered now, so that a reader that went away does not make the
    interpreter print "Exception ignored ... BrokenPipeError" at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)
    except (OSError, ValueError):
        pass


__all__ = ["app", "main"]
