"""The TOML task file: reading it with precise errors, and CLI writes that keep the user's text.

Writes never re-serialise the whole file (that would drop comments and layout). They edit the
text of the one task being changed, parse the result back, check that nothing else changed,
and replace the file atomically under a lock on a separate, never-replaced lock file.

- `reading`: a bounded read of the file, bytes to a validated TaskFile, every error naming the
  file and the line.
- `layout`: where each table of the text starts and ends, and the line of each key.
- `edits`: the text of one task added, replaced, removed or enabled (text in, text out).
- here: the disk. The atomic replacement of the file, the lock, `update` (read, change, check,
  write) and the operations of `add`, `remove`, `enable`, `disable`, `edit` and `import`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cronctl import model
from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.errors import LockHeldError, TaskFileBusyError, TaskFileError, TaskFileWriteError
from cronctl.locations import ensure_private_dir
from cronctl.taskfile.edits import (
    add_text,
    enabled_text,
    render_task_table,
    splice_task,
    task_text,
    without_task,
)
from cronctl.taskfile.layout import locate
from cronctl.taskfile.reading import (
    MAX_BYTES,
    MAX_NESTING,
    TOP_LEVEL_KEYS,
    TaskFile,
    check_all,
    check_text,
    collector_paused,
    decode,
    load,
    parse_bytes,
    parse_text,
    snapshot,
    unknown_task,
)

__all__ = [
    "LOCK_WAIT_SECONDS",
    "MAX_BYTES",
    "MAX_NESTING",
    "TOP_LEVEL_KEYS",
    "UPDATE_ATTEMPTS",
    "TaskFile",
    "add_task",
    "add_text",
    "check_all",
    "check_text",
    "collector_paused",
    "decode",
    "enabled_text",
    "load",
    "locate",
    "locked",
    "parse_bytes",
    "parse_text",
    "remove_tasks",
    "render_task_table",
    "replace_text",
    "set_enabled",
    "lock_path",
    "snapshot",
    "splice_task",
    "stamp_of",
    "task_text",
    "unknown_task",
    "update",
    "write_atomic",
]

LOCK_WAIT_SECONDS = 30.0
UPDATE_ATTEMPTS = 3

Stamp = tuple[int, int, int]


def stamp_of(path: Path) -> Stamp | None:
    """Return (st_ino, st_mtime_ns, st_size) of `path`, or None when it does not exist: what
    tells a reader (serve's reload, `top`) that the file changed and is worth reading again."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return (-1, -1, -1)  # unreadable: let the loader say why
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def lock_path(target: Path) -> Path:
    """The lock file that serialises the writers of the task file `target` (its writable
    target: cronctl.taskfile.writable_target), beside it and never replaced."""
    return target.with_name(target.name + ".lock")


# ---------------------------------------------------------------------------------------------
# Replacing the file: atomically, privately, next to a symlink's target, and only when it is
# still the file the change was made from.


def _real(path: Path) -> Path:
    # Dotfile managers symlink the task file: write next to the target, keep the link.
    return Path(os.path.realpath(path))


def writable_target(path: Path) -> Path:
    """Return the file that CLI writes replace: the symlink's target, which must be a regular
    file (or not exist yet). Replacing a device or a pipe someone pointed us at (as root,
    /dev/null) would be a disaster."""
    target = _real(path)
    try:
        info = os.stat(target)
    except OSError:
        return target
    if stat.S_ISDIR(info.st_mode):
        raise TaskFileError("is a folder, not a task file", path=str(path))
    if not stat.S_ISREG(info.st_mode):
        where = f" ({target})" if target != path else ""
        raise TaskFileError(
            f"is not a regular file{where}; cronctl only replaces regular files",
            path=str(path),
            hint="point --tasks-file (or CRONCTL_TASKS) at a regular file",
        )
    return target


UNCHECKED: Any = object()


def write_atomic(path: Path, text: str, *, expect: bytes | None = UNCHECKED) -> bool:
    """Replace `path` with `text`: temporary file, fsync, rename, fsync of the folder.

    With `expect` (the bytes the new text was made from; None: the file did not exist), the
    file is re-read just before the rename and nothing is replaced when it changed since: an
    editor saved it meanwhile (editors do not take our lock). Returns whether it was replaced.
    """
    target = writable_target(path)
    try:
        ensure_private_dir(target.parent)
        mode = 0o600
        with contextlib.suppress(FileNotFoundError):
            mode = target.stat().st_mode & 0o777
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise TaskFileWriteError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if expect is not UNCHECKED and snapshot(target) != expect:
            os.unlink(tmp)
            return False
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise TaskFileWriteError(f"{path}: cannot write: {exc.strerror}") from None
        raise
    with contextlib.suppress(OSError):  # the data is in place; a folder fsync is best effort
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return True


# ---------------------------------------------------------------------------------------------
# Changing the file under the lock


@contextlib.contextmanager
def locked(path: Path, wait: float | None = None, clock: Clock = SYSTEM_CLOCK) -> Iterator[None]:
    """Hold the advisory lock that serialises writers of `path` (on `path`.lock, never replaced).

    Waits up to `wait` seconds (LOCK_WAIT_SECONDS) for another writer, then raises
    LockHeldError (exit 75: try again).
    """
    wait = LOCK_WAIT_SECONDS if wait is None else wait
    target = writable_target(path)
    lock_file = lock_path(target)
    try:
        ensure_private_dir(target.parent)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise TaskFileWriteError(
            f"{path}: cannot create the lock file {lock_file}: {exc.strerror}"
        ) from None
    try:
        deadline = clock.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock.monotonic() > deadline:
                    raise LockHeldError(
                        f"{path}: another cronctl has been writing the task file for {wait:.0f}s "
                        f"(it holds {lock_file}); nothing was written",
                        hint=f"try again; `fuser {lock_file}` shows the process holding it",
                    ) from None
                clock.sleep(0.01)
        yield
    finally:
        os.close(fd)


def update(
    path: Path, change: Callable[[TaskFile], str], *, touched: set[str] | None = None
) -> TaskFile:
    """Apply `change` (old file -> new text) under the lock; check the result before writing.

    `touched` names the tasks the change may alter; every other task and the defaults must
    parse back identical, so a mistake in the text surgery can never damage the user's file.

    Editors do not take the lock, so the write is also optimistic: when the file changed
    between our read and the rename, `change` is applied again to the fresh text (it must
    not depend on an earlier call), up to UPDATE_ATTEMPTS times; then TaskFileBusyError.
    """
    with locked(path):
        for _attempt in range(UPDATE_ATTEMPTS):
            data = snapshot(path)
            current = parse_bytes(data, path)
            new_text = change(current)
            updated = parse_text(new_text, path, known=current)
            if touched is not None:
                _check_untouched(current, updated, touched)
            if write_atomic(path, new_text, expect=data):
                return updated
    raise TaskFileBusyError(
        f"{path}: changed on disk {UPDATE_ATTEMPTS} times while cronctl was writing it; "
        "nothing was written",
        hint="another program (an editor?) keeps saving it; try again when it is done",
    )


def _check_untouched(before: TaskFile, after: TaskFile, touched: set[str]) -> None:
    old_tasks = {k: v for k, v in before.raw.get("tasks", {}).items() if k not in touched}
    new_tasks = {k: v for k, v in after.raw.get("tasks", {}).items() if k not in touched}
    if old_tasks != new_tasks or before.raw.get("defaults") != after.raw.get("defaults"):
        raise TaskFileError(
            "the change would alter other tasks; nothing was written",
            path=str(before.path),
            hint="change the file with `cronctl edit`",
        )


# ---------------------------------------------------------------------------------------------
# The operations behind `add`, `remove`, `enable`, `disable` and `edit`


def add_task(
    path: Path,
    name: str,
    table: Mapping[str, Any],
    *,
    replace: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[model.Task, bool]:
    """Add (or with `replace`, overwrite) task `name`; return it and whether it replaced one.

    `warn` hears about a name that differs only in case from an existing task's.
    """
    model.check_name(name)
    replaced = False
    twins: list[str] = []

    def change(current: TaskFile) -> str:
        nonlocal replaced, twins
        # Validate the new task alone first, so its errors name the option, not a line of text.
        task = model.parse_task(name, table, current.defaults, model.machine_timezone())
        _check_after_names(task, current)
        replaced = name in current.tasks
        twins = [t for t in current.tasks if t != name and t.lower() == name.lower()]
        return add_text(current.text, name, table, replace=replace, known=current.tasks)

    updated = update(path, change, touched={name})
    if warn is not None and twins and not replaced:
        others = " and ".join(f"'{t}'" for t in twins)
        warn(f"task names are case-sensitive: '{name}' is a new task beside {others}")
    return updated.tasks[name], replaced


def _check_after_names(task: model.Task, current: TaskFile) -> None:
    """The tasks a new task runs after must be in the file; said of the option, not of a line
    of the text that would have been written (and never was)."""
    for other in task.after:
        if other not in current.tasks:
            near = model.suggest(other, tuple(current.tasks))
            raise TaskFileError(
                f"names an unknown task '{other}'; nothing was written",
                task=task.name,
                key="after",
                hint=f"did you mean '{near}'?"
                if near
                else f"add '{other}' first; `cronctl list` shows the tasks",
            )


def remove_tasks(path: Path, names: list[str]) -> list[str]:
    def change(current: TaskFile) -> str:
        text = current.text
        for name in names:
            current.get(name)
            text = without_task(text, name)
        for other in current.tasks.values():
            needed = [n for n in names if n in other.after and other.name not in names]
            if needed:
                raise TaskFileError(
                    f"runs after '{needed[0]}'; remove it from `after` first",
                    task=other.name,
                    key="after",
                )
        return text

    update(path, change, touched=set(names))
    return names


def set_enabled(path: Path, names: list[str], enabled: bool) -> list[str]:
    """Set `enabled` on each task; return the names whose value changed."""
    changed: list[str] = []

    def change(current: TaskFile) -> str:
        changed.clear()  # `update` may call this again on a fresher file
        text = current.text
        for name in names:
            if current.get(name).enabled != enabled:
                text = enabled_text(text, name, enabled)
                changed.append(name)
        return text

    update(path, change, touched=set(names))
    return changed


def replace_text(path: Path, text: str, *, expect: bytes | None = UNCHECKED) -> TaskFile:
    """Replace the whole file with `text` after validating it (edit, import).

    Unlike `update`, the file on disk may be invalid: `edit` is how a user repairs it. With
    `expect` (the bytes the edit started from; None: no file), raise TaskFileBusyError and
    write nothing when the file is no longer those bytes.
    """
    with locked(path):
        updated = parse_text(text, path)
        if not write_atomic(path, text, expect=expect):
            raise TaskFileBusyError(f"{path}: changed on disk since it was read; nothing was saved")
        return updated
