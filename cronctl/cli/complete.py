"""Shell completion: the scripts `cronctl completion SHELL` prints, and task-name completion.

The scripts are Typer's (they call `cronctl` back at each TAB with `_CRONCTL_COMPLETE` set),
with one change for zsh: Typer's zsh script only registers its function when it runs, so when
zsh autoloads it from `$fpath` (site-functions/_cronctl) the first TAB completes nothing. The
script here registers its function and, when autoloaded, also answers that first TAB.

Completing task names runs on every TAB in a fresh process, so it reads the task file with
tomllib only: no validation, no schedule parsing, no database, nothing created, never an error
on stderr.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from cronctl.cli import COMPLETE_VAR
from cronctl.locations import TASK_FILE_LIMIT
from cronctl.model.task import TASK_NAME

SHELLS = ("bash", "zsh", "fish")
PROG = "cronctl"
INSTALL_PATHS = {
    "bash": "share/bash-completion/completions/cronctl",
    "zsh": "share/zsh/site-functions/_cronctl",
    "fish": "share/fish/vendor_completions.d/cronctl.fish",
}
FILES = {"bash": "cronctl.bash", "zsh": "_cronctl", "fish": "cronctl.fish"}


_ZSH_TYPER_TAIL = "compdef _cronctl_completion cronctl"
_ZSH_TAIL = """compdef _cronctl_completion cronctl
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  # autoloaded from $fpath (site-functions/_cronctl) by the first TAB: answer it too
  _cronctl_completion "$@"
fi"""


def enable_completion_protocol() -> None:
    """Register Typer's shell classes, so `_CRONCTL_COMPLETE=complete_bash cronctl` answers.

    The app is built with add_completion=False (no --install-completion option editing rc
    files), which also leaves these unregistered.
    """
    from typer.completion import completion_init

    completion_init()


def completion_script(shell: str) -> str:
    """Return the completion script for `shell` (bash, zsh or fish), ending with a newline."""
    if shell not in SHELLS:
        raise ValueError(f"no completion for {shell!r}; choose one of {', '.join(SHELLS)}")
    from typer.completion import get_completion_script

    script = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
    # When a Typer release changes the end of its zsh script, that script is kept as it is.
    if shell == "zsh" and _ZSH_TYPER_TAIL in script:
        script = script.replace(_ZSH_TYPER_TAIL, _ZSH_TAIL)
    return script.rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# Task names


def task_file_path(tasks_file: str | os.PathLike[str] | None = None) -> Path:
    """Return the task file in force: --tasks-file when known, else CRONCTL_TASKS, CRONCTL_HOME,
    the config folder (the same rules as cronctl.locations.resolve)."""
    from cronctl.locations import resolve

    return resolve(tasks_file, db=os.devnull).tasks_file


def task_names(path: Path) -> dict[str, str]:
    """Return {name: schedule} of the tasks in `path`; {} when it cannot be read.

    Only a regular file is read, and at most the task file's limit: a TAB must never hang on
    a FIFO nor read /dev/zero (or a file swapped in after the stat) forever.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return {}
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return {}
            content = handle.read(TASK_FILE_LIMIT + 1)
        if len(content) > TASK_FILE_LIMIT:
            return {}
        data: Any = tomllib.loads(content.decode("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        return {}
    result = {}
    for name, table in tasks.items():
        if not TASK_NAME.fullmatch(name):
            continue  # `check` refuses it: offering it would complete to a name no command takes
        schedule = table.get("schedule", "") if isinstance(table, dict) else ""
        result[name] = schedule if isinstance(schedule, str) else ""
    return result


def complete_task_names(incomplete: str) -> list[str]:
    """Return the task names that start with `incomplete`, sorted (for NAME arguments)."""
    try:
        names = task_names(task_file_path())
    except Exception:  # completion must never print a traceback into the user's prompt
        return []
    return sorted(name for name in names if name.startswith(incomplete))


def complete_task_names_in(ctx: Any, incomplete: str) -> list[tuple[str, str]]:
    """Like complete_task_names, honouring a --tasks-file already typed on the command line.

    Returns (name, schedule) pairs: zsh and fish show the schedule beside each name.
    """
    try:
        root = ctx.find_root() if ctx is not None else None
        typed = root.params.get("tasks_file") if root is not None else None
        names = task_names(task_file_path(typed))
    except Exception:
        return []
    return sorted(
        (name, schedule) for name, schedule in names.items() if name.startswith(incomplete)
    )
