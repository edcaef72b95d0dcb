"""`cronctl edit`, as `crontab -e` does it: edit a copy, validate, offer to edit again, never save
an invalid file."""

from __future__ import annotations

import enum
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from cronctl import taskfile
from cronctl.errors import TaskFileBusyError, TaskFileError

TEMPLATE = """\
# cronctl task file: one [tasks.NAME] table per task. See `man cronctl` or the README.
#
# [tasks.backup]
# schedule = "0 2 * * *"
# command = "restic backup ~/docs"
"""


class Outcome(enum.Enum):
    SAVED = "saved"
    UNCHANGED = "unchanged"
    ABANDONED = "abandoned"


def interactive() -> bool:
    return sys.stdin.isatty()


def edit(
    path: Path,
    name: str | None,
    *,
    open_editor: Callable[[Path], None],
    retry: Callable[[TaskFileError], bool],
) -> Outcome:
    """Let the user edit the file (or one task) until it validates or they give up."""
    before = taskfile.snapshot(path)
    original = taskfile.decode(before, path) if before is not None else ""
    if name is not None:
        taskfile.parse_text(original, path).get(name)
        start = taskfile.task_text(original, name)
    else:
        start = original or TEMPLATE
    fd, scratch_name = tempfile.mkstemp(prefix="cronctl-", suffix=".toml")
    scratch = Path(scratch_name)
    keep_scratch = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(start)
        while True:
            open_editor(scratch)
            try:
                text = taskfile.decode(scratch.read_bytes(), path)
                if text == start:
                    return Outcome.UNCHANGED
                new = taskfile.splice_task(original, name, text) if name is not None else text
                taskfile.parse_text(new, path)
            except TaskFileError as error:
                if not retry(error):
                    return Outcome.ABANDONED
                continue
            # Someone changed the file while the editor was open: keep both, clobber nothing.
            # (Checked under the task file's lock, just before the rename.)
            try:
                taskfile.replace_text(path, new, expect=before)
            except TaskFileBusyError:
                keep_scratch = True
                raise TaskFileBusyError(
                    f"{path}: changed on disk while you were editing; "
                    f"your edit is kept in {scratch}",
                    hint="merge your edit into the file with `cronctl edit` again",
                ) from None
            return Outcome.SAVED
    finally:
        if not keep_scratch:
            scratch.unlink(missing_ok=True)
