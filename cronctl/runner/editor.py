"""Starting the user's editor for `cronctl edit` (the runner owns every process start)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from cronctl.errors import UsageError


def editor_command(environ: dict[str, str] | None = None) -> list[str]:
    """Return the editor to run: $VISUAL, else $EDITOR, else the first of vi/nano found."""
    env = os.environ if environ is None else environ
    for variable in ("VISUAL", "EDITOR"):
        value = env.get(variable, "").strip()
        if value:
            return shlex.split(value)
    for fallback in ("editor", "vi", "nano"):
        found = shutil.which(fallback)
        if found:
            return [found]
    raise UsageError("no editor found", hint="set VISUAL or EDITOR")


def open_editor(path: Path) -> None:
    """Run the editor on `path` in the foreground and wait for it."""
    argv = [*editor_command(), str(path)]
    try:
        result = subprocess.run(argv, check=False)
    except OSError as exc:
        raise UsageError(
            f"cannot start the editor {argv[0]!r}: {exc.strerror}", hint="check VISUAL or EDITOR"
        ) from None
    if result.returncode != 0:
        raise UsageError(
            f"the editor {argv[0]!r} exited with status {result.returncode}; nothing was saved"
        )
