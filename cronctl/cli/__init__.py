"""The command line: a thin client of the library. Each command parses, calls, and renders."""

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
    app(prog_name="cronctl")


__all__ = ["app", "main"]
