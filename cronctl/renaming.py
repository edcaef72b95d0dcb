"""`cronctl rename OLD NEW`: the task in the file and its history, in one step that cannot
half-happen (docs/reliability.md#renaming-a-task).

The order, all under the task file's lock (cronctl.taskfile.locked):

1. read the file, rename the task's text (`edits.renamed_text`: its tables, its dotted keys,
   the `after` lists naming it), and check the result by parsing it: it must be the same file
   with one task's name changed, or nothing is written;
2. write the journal row (`Renames.begin_rename`: OLD, NEW, the file, its digest before and
   after);
3. replace the file atomically (`taskfile.write_atomic`, only if it is still the bytes read);
4. rename the history rows and close the journal row in one transaction (`finish_rename`).

Killed after 2, the next process that opens the store finds the row open and settles it by
the file (cronctl/store/renames.py): the file and the history are both renamed, or neither.

`CRONCTL_TEST_RENAME_KILL` (`journal` or `file`) makes the process kill itself with SIGKILL
just after that step: the seam the tests use to kill a real `cronctl rename` between its
steps. It is read only here, and only ever set by the tests.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cronctl import model
from cronctl.errors import DuplicateTaskError, TaskFileBusyError, TaskFileError, UsageError
from cronctl.history import Renames
from cronctl.taskfile import (
    UPDATE_ATTEMPTS,
    TaskFile,
    locked,
    parse_bytes,
    parse_text,
    snapshot,
    write_atomic,
)
from cronctl.taskfile import writable_target as _target
from cronctl.taskfile.edits import renamed_text
from cronctl.timefmt import counted

KILL_SWITCH = "CRONCTL_TEST_RENAME_KILL"


@dataclass(frozen=True)
class RenameReport:
    old: str
    new: str
    runs: int  # history rows renamed
    referrers: tuple[str, ...]  # tasks whose `after` named it


def _kill_point(step: str) -> None:
    if os.environ.get(KILL_SWITCH) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def rename_task(path: Path, store: Renames, old: str, new: str, now: datetime) -> RenameReport:
    """Rename task `old` to `new` in the task file at `path` and in `store` (see above).

    Refuses, writing nothing (exit 2): `old` unknown (with a near name), `new` invalid, `new`
    already a task, `new` with history of its own (a removed task's runs)."""
    from cronctl.store.renames import digest

    model.check_name(new)
    with locked(path):
        for _attempt in range(UPDATE_ATTEMPTS):
            data = snapshot(path)
            current = parse_bytes(data, path)
            _check_names(current, store, old, new)
            text = renamed_text(current.text, old, new)
            _check_renamed(current, parse_text(text, path, known=current), old, new)
            referrers = tuple(sorted(t.name for t in current.tasks.values() if old in t.after))
            journal = store.begin_rename(
                old,
                new,
                tasks_file=str(_target(path)),
                digest_before=digest(data),
                digest_after=digest(text.encode("utf-8")),
                now=now,
            )
            _kill_point("journal")
            try:
                written = write_atomic(path, text, expect=data)
            except BaseException:
                store.drop_rename(journal)
                raise
            if not written:  # an editor saved the file meanwhile: start again from it
                store.drop_rename(journal)
                continue
            _kill_point("file")
            done = store.finish_rename(journal)
            return RenameReport(old, new, done.runs or 0, referrers)
    raise TaskFileBusyError(
        f"{path}: changed on disk {UPDATE_ATTEMPTS} times while cronctl was renaming a task;"
        " nothing was written",
        hint="another program (an editor?) keeps saving it; try again when it is done",
    )


def _check_names(current: TaskFile, store: Renames, old: str, new: str) -> None:
    current.get(old)  # unknown: exit 2, with the near name
    if new == old:
        raise UsageError(f"the task is already named '{old}'")
    if new in current.tasks:
        raise DuplicateTaskError(
            f"a task named '{new}' already exists; nothing was renamed",
            hint="choose another name, or remove that task first",
        )
    rows = store.history_rows(new)
    if rows:
        raise UsageError(
            f"the history already has {counted(rows, 'row')} of a task named"
            f" '{new}' (a task removed earlier); nothing was renamed",
            hint=f"choose another name; `cronctl history {new}` lists those runs",
        )


def _expected(raw: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    """The parsed file as the rename must leave it: `old`'s table under `new`, `after` lists
    naming `new`."""

    def renamed_after(value: Any) -> Any:
        if isinstance(value, str):
            return new if value == old else value
        if isinstance(value, list):
            return [new if v == old else v for v in value]
        return value

    tasks = {}
    for name, table in raw.get("tasks", {}).items():
        table = dict(table)
        if "after" in table:
            table["after"] = renamed_after(table["after"])
        tasks[new if name == old else name] = table
    return {**raw, "tasks": tasks}


def _check_renamed(before: TaskFile, after: TaskFile, old: str, new: str) -> None:
    if dict(after.raw) != _expected(before.raw, old, new):
        raise TaskFileError(
            f"cannot rename '{old}' without changing other text (it is written in a way the"
            " CLI does not edit); nothing was written",
            path=str(before.path),
            hint="rename it with `cronctl edit`",
        )
