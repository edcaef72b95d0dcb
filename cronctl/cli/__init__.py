"""The command line: a thin client of the library. Each command parses, calls, and renders."""

# Importing the command modules registers their commands on `app`.
from cronctl.cli import runs as _runs  # noqa: F401
from cronctl.cli import tasks as _tasks  # noqa: F401
from cronctl.cli.app import app


def main() -> None:
    app(prog_name="cronctl")


__all__ = ["app", "main"]
