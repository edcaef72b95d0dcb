"""The argument parser's side of the CLI edge: global options wherever they are written, and the
parser's usage errors as cronctl's own errors (one `error:` line, at most one `hint:` line,
exit status 2: README.md#exit-codes).

Typer's Click prints a usage error as a usage line, a "Try" line, a blank line and an `Error:`
line; `CronctlGroup.main` runs it without its own error printing and says the error itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from typer.core import TyperGroup
from typer.exceptions import Abort

from cronctl.errors import ExitCode, excerpt

# The global options (common.main_options). Those that take a value: the word after them is
# theirs. Written after the command (`cronctl list --no-color`), they are moved before it.
GLOBAL_FLAGS = ("--no-color", "--debug")
GLOBAL_VALUED = ("--tasks-file", "--db")
_END_OF_OPTIONS = "--"
_EXTRA = "Got unexpected extra argument(s) ("  # Click's message, then the words and ")"
# `add`'s positional arguments: a schedule or command left unquoted gives add more words.
_ADD_ARGUMENTS = "NAME SCHEDULE COMMAND"
_QUOTE_HINT = (
    "quote the schedule and a command with spaces, e.g. "
    "cronctl add backup '*/30 * * * *' 'restic backup'"
)


def command_index(args: Sequence[str]) -> int | None:
    """Return the index of the command word (the first word that is not a global option or its
    value), if any."""
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in GLOBAL_VALUED:
            skip = True
        elif not arg.startswith("-"):
            return index
    return None


def hoist_global_options(args: Sequence[str], own_options: Iterable[str] = ()) -> list[str]:
    """Return `args` with the global options written after the command moved before it.

    An option the command itself has (`own_options`) stays where it is, and so does every word
    after `--` (the end of the options: `cronctl add x @daily -- prog --debug`)."""
    words = list(args)
    start = command_index(words)
    if start is None:
        return words
    own = set(own_options)
    moved: list[str] = []
    kept: list[str] = words[: start + 1]
    rest = words[start + 1 :]
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == _END_OF_OPTIONS:
            kept.extend(rest[index:])
            break
        name = word.split("=", 1)[0]
        if name in own or name not in (*GLOBAL_FLAGS, *GLOBAL_VALUED):
            kept.append(word)
        elif word in GLOBAL_VALUED:
            if index + 1 == len(rest):  # no value: left for the error (see error_lines)
                kept.append(word)
                break
            moved.extend(rest[index : index + 2])
            index += 1
        else:
            moved.append(word)  # a flag or `--db=PATH`
        index += 1
    return moved + kept if moved else words


def option_names(command: Any) -> set[str]:
    """Every option name of a Click command and of its sub-commands (`service install`)."""
    names: set[str] = set()
    for param in getattr(command, "params", ()):
        names.update(getattr(param, "opts", ()))
        names.update(getattr(param, "secondary_opts", ()))
    for sub in getattr(command, "commands", {}).values():
        names |= option_names(sub)
    return names


def error_lines(error: Any, args: Sequence[str]) -> tuple[str, str]:
    """The `error:` message and the `hint:` for a usage error of the argument parser."""
    ctx = getattr(error, "ctx", None)
    index = command_index(args)
    command = args[index] if index is not None else None
    if ctx is not None:
        path = ctx.command_path
    else:  # an option's own error (`--description` given no value) comes without a context
        path = "cronctl" if command is None else f"cronctl {command}"
    see_help = f"see {path} --help"
    text = str(error.message if hasattr(error, "possibilities") else error.format_message())
    if getattr(error, "option_name", None) in GLOBAL_VALUED and text.startswith("No such option"):
        # `cronctl list --db`: a global option left without its value stays where it is.
        return f"option '{error.option_name}' requires an argument", see_help
    if text.startswith(_EXTRA):
        extra = text[len(_EXTRA) : -1]
        if command == "add":
            return f"add takes {_ADD_ARGUMENTS} and got more words ({excerpt(extra)})", _QUOTE_HINT
        if command == "explain":
            return (
                f"explain takes one schedule and got more words ({excerpt(extra)})",
                "quote the schedule so that it is one word, e.g. cronctl explain '*/30 * * * *'",
            )
        return f"unexpected extra argument(s): {excerpt(extra)}", see_help
    message, _, suggestion = text.partition(". Did you mean ")
    possibilities = sorted(getattr(error, "possibilities", None) or ())
    if suggestion:
        hint = f"did you mean {suggestion.rstrip('?')}?"
    elif possibilities:
        hint = f"did you mean {' or '.join(possibilities[:3])}?"
    else:
        hint = see_help
    message = " ".join(message.split()).rstrip(".")  # one line, whatever the parser wrote
    choices = message.partition(". Choose from: ")
    if choices[1]:  # a missing option that has choices
        message = f"{choices[0]} (one of: {choices[2].rstrip(',')})"
    return message[:1].lower() + message[1:], hint


class CronctlGroup(TyperGroup):
    """The application: global options anywhere, and parser errors said as cronctl's errors."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # Imported here, once a command line is being parsed: Typer below 0.29, as pinned,
        # keeps its Click private (typer._click) and re-exports none of its usage errors.
        from typer._click.exceptions import ClickException, NoArgsIsHelpError

        words = list(sys.argv[1:] if args is None else args)
        index = command_index(words)
        if index is not None:
            own = option_names(self.commands.get(words[index]))
            words = hoist_global_options(words, own)
        try:
            result = super().main(words, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:
            error.show()  # `cronctl` alone: the help, as before
            sys.exit(error.exit_code)
        except ClickException as error:
            message, hint = error_lines(error, words)
            _say_error(message, hint, words)
            sys.exit(int(ExitCode.USAGE) if error.exit_code == 2 else error.exit_code)
        except Abort:  # end of input at a prompt outside a command's own handling
            _say_error("aborted", None, words)
            sys.exit(int(ExitCode.FAILURE))
        # Without Click's standalone mode, an Exit (or a return) gives its status back; it is
        # raised as SystemExit whatever `standalone_mode` asked, as Click's standalone mode does.
        del standalone_mode
        sys.exit(result if isinstance(result, int) else 0)


def _say_error(message: str, hint: str | None, words: Sequence[str]) -> None:
    from cronctl.render import Renderer

    plain = "--no-color" in words or bool(os.environ.get("NO_COLOR"))
    try:
        Renderer(no_color=plain).error(message, hint)
    except BrokenPipeError:
        pass  # stderr went away: the exit status still tells


__all__ = ["CronctlGroup", "command_index", "error_lines", "hoist_global_options"]
