"""`cronctl edit`, as `crontab -e` does it: edit a copy, validate, offer to edit again, never save
an invalid file, and never lose what the user typed.

The copy (the scratch file) goes once the edit is saved, or when it holds nothing the user typed
(the text it started with). Otherwise -- an invalid edit given up, a "no" to saving, the editor
failing, an error while checking or writing, Ctrl-C -- it stays, and the outcome or the error
says where (README.md, "The task file").
"""

from __future__ import annotations

import enum
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cronctl import taskfile
from cronctl.errors import CronctlError, ExitCode, TaskFileBusyError, TaskFileError

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


@dataclass(frozen=True)
class Edited:
    outcome: Outcome
    kept: Path | None = None  # where the user's text stays when it was not saved


class EditNotSavedError(CronctlError):
    """The edit could not be saved; the user's text stays in the scratch file the message names."""

    def __init__(self, message: str, *, kept: Path, exit_code: int, hint: str | None = None):
        super().__init__(f"{message}; your edit is kept in {kept}", hint=hint)
        self.kept = kept
        self.exit_code = exit_code


@dataclass(frozen=True)
class Dialogue:
    """What `edit` asks its user.

    `open_editor(path)` edits the scratch file. `retry(error)` tells an invalid edit and answers
    whether to edit again. `leaving(names)` tells that the edit removes (or renames) these tasks
    of the file and answers whether to save. `again()` answers whether to edit again after a
    "no" to saving.
    """

    open_editor: Callable[[Path], None]
    retry: Callable[[TaskFileError], bool]
    leaving: Callable[[list[str]], bool] = lambda names: True
    again: Callable[[], bool] = lambda: False


def interactive() -> bool:
    return sys.stdin.isatty()


def edit(path: Path, name: str | None, dialogue: Dialogue) -> Edited:
    """Let the user edit the file (or one task) until it validates or they give up."""
    before = taskfile.snapshot(path)
    original = taskfile.decode(before, path) if before is not None else ""
    if name is not None:
        taskfile.parse_text(original, path).get(name)
        start = taskfile.task_text(original, name)
    else:
        start = original or TEMPLATE
    old_names = _task_names(original, path)
    fd, scratch_name = tempfile.mkstemp(prefix="cronctl-", suffix=".toml")
    scratch = Path(scratch_name)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(start)
    try:
        edited = _edit_until_done(path, name, scratch, original, start, before, old_names, dialogue)
    except BaseException as exc:
        if not _typed_anything(scratch, start):
            scratch.unlink(missing_ok=True)
            raise
        if isinstance(exc, EditNotSavedError):
            raise
        raise _kept_error(exc, scratch) from exc
    if edited.kept is None:
        scratch.unlink(missing_ok=True)
    return edited


def _edit_until_done(
    path: Path,
    name: str | None,
    scratch: Path,
    original: str,
    start: str,
    before: bytes | None,
    old_names: set[str],
    dialogue: Dialogue,
) -> Edited:
    while True:
        dialogue.open_editor(scratch)
        try:
            text = taskfile.decode(scratch.read_bytes(), path)
            if text == start:
                return Edited(Outcome.UNCHANGED)
            new = _checked(path, name, original, text)
        except TaskFileError as error:
            if dialogue.retry(error):
                continue
            return Edited(Outcome.ABANDONED, scratch)
        leaving = sorted(old_names - _task_names(new, path))
        if leaving and not dialogue.leaving(leaving):
            if dialogue.again():
                continue
            return Edited(Outcome.ABANDONED, scratch)
        # Someone changed the file while the editor was open: keep both, clobber nothing.
        # (Checked under the task file's lock, just before the rename.)
        try:
            taskfile.replace_text(path, new, expect=before)
        except TaskFileBusyError:
            raise EditNotSavedError(
                f"{path}: changed on disk while you were editing",
                kept=scratch,
                exit_code=int(TaskFileBusyError.exit_code),
                hint="merge your edit into the file with `cronctl edit` again",
            ) from None
        return Edited(Outcome.SAVED)


def _checked(path: Path, name: str | None, original: str, text: str) -> str:
    """The whole new file text, validated."""
    new = taskfile.splice_task(original, name, text) if name is not None else text
    try:
        taskfile.parse_text(new, path)
    except CronctlError:
        raise
    except Exception as exc:  # a fault of the checker must not take the user's text with it
        raise TaskFileError(
            f"could not be checked ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc
    return new


def _task_names(text: str, path: Path) -> set[str]:
    """The tasks of `text`, or none when it does not load (edit is how a broken file is fixed)."""
    try:
        return set(taskfile.parse_text(text, path).tasks)
    except Exception:
        return set()


def _typed_anything(scratch: Path, start: str) -> bool:
    try:
        return scratch.read_bytes() != start.encode("utf-8")
    except OSError:
        return False


def _kept_error(exc: BaseException, scratch: Path) -> EditNotSavedError:
    if isinstance(exc, KeyboardInterrupt):
        return EditNotSavedError("interrupted", kept=scratch, exit_code=int(ExitCode.INTERRUPTED))
    if isinstance(exc, CronctlError):
        return EditNotSavedError(
            exc.message.rstrip("."), kept=scratch, exit_code=int(exc.exit_code), hint=exc.hint
        )
    return EditNotSavedError(
        f"the edit was not saved ({type(exc).__name__}: {exc})",
        kept=scratch,
        exit_code=int(ExitCode.FAILURE),
    )
