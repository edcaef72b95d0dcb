"""The command line: a thin client of the library. Each command parses, calls, and renders.

Each command lives in one module. `main` imports only the module that the command line names:
building Typer's tree of every command and importing every command's library cost more than
most commands themselves, and `cronctl list` in a script should start fast.
"""

import gc
import importlib
import os
import sys
from typing import Any

# Modules in the order `cronctl --help` lists their commands.
MODULES = ("tasks", "explain", "runs", "health", "care", "watch", "serve", "system")
COMMAND_MODULES = {
    **dict.fromkeys(
        ("add", "remove", "rename", "enable", "disable", "edit", "list", "show", "check"),
        "tasks",
    ),
    "explain": "explain",
    **dict.fromkeys(("run-now", "history", "logs"), "runs"),
    **dict.fromkeys(("status", "prune", "metrics", "notify-test"), "health"),
    **dict.fromkeys(("upcoming", "top"), "watch"),
    "ack": "care",
    "serve": "serve",
    **dict.fromkeys(("service", "import", "export", "completion"), "system"),
}
# Set when a TAB in the user's shell calls cronctl back (the scripts of cronctl.cli.complete).
COMPLETE_VAR = "_CRONCTL_COMPLETE"


def command_name(args: list[str]) -> str | None:
    """Return the command word of a command line (after the global options), if any."""
    from cronctl.cli.usage import command_index

    index = command_index(args)
    return None if index is None else args[index]


def load_commands(modules: tuple[str, ...] = MODULES) -> None:
    for module in modules:
        importlib.import_module(f"cronctl.cli.{module}")


def _load_every_command() -> None:
    """Register every command; when a TAB is asking, also Typer's completion classes (the
    protocol completes any command, so it needs the whole tree)."""
    load_commands()
    if COMPLETE_VAR in os.environ:
        from cronctl.cli.complete import enable_completion_protocol

        enable_completion_protocol()


def main() -> None:
    # Importing creates objects by the thousand and none of them become garbage, yet the
    # cyclic collector would walk them again and again: 18 ms of a piped `cronctl list` (100
    # tasks), measured. It runs again once the imports are done, and what they made is frozen
    # out of its way for the rest of the process (serve lives for days).
    gc.disable()
    from cronctl.cli.common import app

    name = command_name(sys.argv[1:])
    if name in COMMAND_MODULES and COMPLETE_VAR not in os.environ:
        load_commands((COMMAND_MODULES[name],))
        # Typer builds every registered command before it runs one: keep only this one.
        app.registered_commands = [c for c in app.registered_commands if _name_of(c) == name]
        app.registered_groups = [g for g in app.registered_groups if g.name == name]
    else:  # help, completion, a mistyped command (Typer suggests the near ones): all of them
        _load_every_command()
    gc.freeze()
    gc.enable()
    try:
        app(prog_name="cronctl")
    except SystemExit as stop:
        code = stop.code
        if code == 1 and _click_saw_a_closed_pipe():
            code = 0  # `cronctl --help | head -1`: the reader went away; not a failure
        _flush_stdout()
        raise SystemExit(code) from None
    _flush_stdout()


def _name_of(info: Any) -> str:
    return str(info.name or info.callback.__name__.replace("_", "-"))


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
        from cronctl.render import to_devnull

        to_devnull(sys.stdout)
    except (OSError, ValueError):
        pass


def __getattr__(name: str) -> Any:
    # `from cronctl.cli import app`: the whole application, every command registered.
    if name == "app":
        from cronctl.cli.common import app

        _load_every_command()
        return app
    raise AttributeError(f"module 'cronctl.cli' has no attribute {name!r}")


__all__ = ["COMMAND_MODULES", "COMPLETE_VAR", "app", "command_name", "main"]
