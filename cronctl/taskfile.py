"""The TOML task file: reading it with precise errors, and CLI writes that keep the user's text.

Writes never re-serialise the whole file (that would drop comments and layout). They edit the
text of the one task being changed, parse the result back, check that nothing else changed,
and replace the file atomically under a lock on a separate, never-replaced lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronctl import model
from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.errors import (
    DuplicateTaskError,
    LockHeldError,
    TaskFileBusyError,
    TaskFileError,
    TaskFileWriteError,
    UnknownTaskError,
)
from cronctl.locations import ensure_private_dir

TOP_LEVEL_KEYS = ("defaults", "tasks")
LOCK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class TaskFile:
    path: Path
    text: str
    tasks: dict[str, model.Task] = field(default_factory=dict)
    defaults: model.Defaults = field(default_factory=model.Defaults)
    raw: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> model.Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise unknown_task(name, self.tasks) from None


def unknown_task(name: str, known: Mapping[str, Any]) -> UnknownTaskError:
    near = model.suggest(name, tuple(known))
    hint = (
        f"did you mean '{near}'?"
        if near
        else ("see `cronctl list`" if known else "the task file has no tasks")
    )
    return UnknownTaskError(f"no task named '{name}'", hint=hint)


# ---------------------------------------------------------------------------------------------
# Reading


def load(path: Path, *, default_zone: str | None = None, regular_only: bool = False) -> TaskFile:
    """Return the parsed, validated task file; a missing file is an empty task list.

    `regular_only` refuses pipes and devices: a one-off `cronctl --tasks-file <(...) check`
    may read a pipe, but serve must never block on one it re-reads at every change.
    """
    return _parse_bytes(snapshot(path, regular_only=regular_only), path, default_zone=default_zone)


def snapshot(path: Path, *, regular_only: bool = False) -> bytes | None:
    """Return the bytes of the task file, or None when it does not exist."""
    try:
        if regular_only and not stat.S_ISREG(os.stat(path).st_mode) and not path.is_dir():
            raise TaskFileError(
                "is not a regular file", path=str(path), hint="point serve at a plain file"
            )
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise TaskFileError("is a folder, not a task file", path=str(path)) from None
    except OSError as exc:
        raise TaskFileError(f"cannot read: {exc.strerror}", path=str(path)) from None


def _parse_bytes(data: bytes | None, path: Path, *, default_zone: str | None = None) -> TaskFile:
    if data is None:
        return TaskFile(path=path, text="")
    return parse_text(decode(data, path), path, default_zone=default_zone)


def decode(data: bytes, path: Path) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise TaskFileError(
            "starts with a byte-order mark",
            path=str(path),
            line=1,
            hint="save the file as UTF-8 without BOM",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TaskFileError(
            f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            path=str(path),
            line=line,
            hint="save the file as UTF-8",
        ) from None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_TOML_END = re.compile(r"\s*\(at end of document\)$")


def parse_text(text: str, path: Path, *, default_zone: str | None = None) -> TaskFile:
    """Return the TaskFile for `text`; every error names the file and, where known, the line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line = int(found.group(1)) if found else None
        if found is None and _TOML_END.search(message):
            line = max(1, len(text.splitlines()))  # "at end of document": the last line
        reason = _TOML_END.sub("", _TOML_POSITION.sub("", message))
        raise TaskFileError(f"invalid TOML: {reason}", path=str(path), line=line) from None
    try:
        defaults, tasks = _validate(raw, default_zone or model.machine_timezone())
    except TaskFileError as exc:
        raise TaskFileError(
            exc.detail,
            path=str(path),
            line=exc.line or locate(text, exc.task, exc.key),
            task=exc.task,
            key=exc.key,
            hint=exc.hint,
        ) from None
    return TaskFile(path=path, text=text, tasks=tasks, defaults=defaults, raw=raw)


def _validate(
    raw: Mapping[str, Any], default_zone: str
) -> tuple[model.Defaults, dict[str, model.Task]]:
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            near = model.suggest(key, TOP_LEVEL_KEYS)
            hint = (
                f"did you mean [{near}]?"
                if near
                else "the file holds [defaults] and [tasks.NAME] tables"
            )
            raise TaskFileError("unknown top-level key", key=key, hint=hint)
    defaults = model.parse_defaults(raw.get("defaults", {}))
    table = raw.get("tasks", {})
    if not isinstance(table, Mapping):
        raise TaskFileError("must be a table of tasks ([tasks.NAME])", key="tasks")
    tasks = {
        name: model.parse_task(name, body, defaults, default_zone) for name, body in table.items()
    }
    for task in tasks.values():
        for other in task.after:
            if other not in tasks:
                near = model.suggest(other, tuple(tasks))
                raise TaskFileError(
                    f"names an unknown task '{other}'",
                    task=task.name,
                    key="after",
                    hint=f"did you mean '{near}'?" if near else None,
                )
    return defaults, tasks


def locate(text: str, task: str | None, key: str | None) -> int | None:
    """Return the 1-based line of `key` in `task`'s table (or of the table), if it can be found.

    With no task, `key` is a key of [defaults] or, failing that, a top-level key (`[taks.x]`).
    """
    lines = text.splitlines()
    if task is None:
        section: tuple[str, ...] = ("defaults",)
    else:
        section = ("tasks", task)
    all_spans = _table_spans(lines)
    spans = [s for s in all_spans if s.path[: len(section)] == section]
    if task is None and key and "." not in key:
        in_defaults = _key_line(lines, [s for s in spans if s.path == section], key)
        if in_defaults is None:
            top = _top_level_line(lines, all_spans, key)
            if top is not None:
                return top
    if not spans and task is not None:
        # A task written as a value of [tasks] (`backup = 5`): the line of that assignment.
        return _key_line(lines, [s for s in all_spans if s.path == ("tasks",)], task)
    if not spans:
        return None
    if key:
        leaf = key.split(".")[-1]
        sub = tuple(key.split(".")[:-1])
        pattern = re.compile(rf"\s*(\"?){re.escape(leaf)}\1\s*=")
        for span in spans:
            if span.path[len(section) :] != sub:
                continue
            for number in range(span.start + 1, span.end):
                if pattern.match(lines[number]):
                    return number + 1
    return spans[0].start + 1


def _key_line(lines: list[str], spans: list[_Span], key: str) -> int | None:
    """Return the line of a `key = ...` assignment directly in one of `spans`."""
    pattern = re.compile(rf"\s*([\"']?){re.escape(key)}\1\s*=")
    for span in spans:
        for number in range(span.start + 1, span.end):
            if pattern.match(lines[number]):
                return number + 1
    return None


def _top_level_line(lines: list[str], spans: list[_Span], key: str) -> int | None:
    """Return the line of top-level `key`: its first table header, or a `key = ...` line."""
    for span in spans:
        if span.path and span.path[0] == key:
            return span.start + 1
    first_header = spans[0].start if spans else len(lines)
    pattern = re.compile(rf"\s*([\"']?){re.escape(key)}\1\s*(=|\.)")
    for number in range(first_header):
        if pattern.match(lines[number]):
            return number + 1
    return None


# ---------------------------------------------------------------------------------------------
# Finding tables in the text


@dataclass(frozen=True)
class _Span:
    path: tuple[str, ...]
    start: int  # index of the header line
    end: int  # index after the last line that belongs to the table


_HEADER = re.compile(r"\s*\[(?!\[)(.*)\]\s*(#.*)?$")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _parse_key_path(text: str) -> tuple[str, ...] | None:
    """Return the dotted key of a table header, or None when it is not one we can read."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if rest[0] == '"':
            end = rest.find('"', 1)
            while end != -1 and rest[end - 1] == "\\":
                end = rest.find('"', end + 1)
            if end == -1:
                return None
            try:
                parts.append(tomllib.loads(f"k = {rest[: end + 1]}")["k"])
            except tomllib.TOMLDecodeError:
                return None
            rest = rest[end + 1 :]
        elif rest[0] == "'":
            end = rest.find("'", 1)
            if end == -1:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :]
        else:
            match = _BARE.match(rest)
            if not match:
                return None
            parts.append(match.group(0))
            rest = rest[match.end() :]
        rest = rest.lstrip()
        if rest.startswith("."):
            rest = rest[1:].lstrip()
        elif rest:
            return None
    return tuple(parts)


def _table_spans(lines: list[str]) -> list[_Span]:
    headers: list[tuple[int, tuple[str, ...]]] = []
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped.startswith("["):
            continue
        if stripped.startswith("[["):
            headers.append((number, ("[[",)))
            continue
        match = _HEADER.match(line)
        path = _parse_key_path(match.group(1)) if match else None
        if path is not None:
            headers.append((number, path))
    spans = []
    for index, (start, path) in enumerate(headers):
        end = headers[index + 1][0] if index + 1 < len(headers) else len(lines)
        # Comments and blank lines just above the next header belong to that header.
        while end > start + 1 and (
            not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
        ):
            end -= 1
        spans.append(_Span(path, start, end))
    return spans


def _task_spans(lines: list[str], name: str) -> list[_Span]:
    return [s for s in _table_spans(lines) if len(s.path) >= 2 and s.path[:2] == ("tasks", name)]


# ---------------------------------------------------------------------------------------------
# Writing


def render_task_table(name: str, table: Mapping[str, Any]) -> str:
    """Return the TOML text of one task, keys in the documented order."""
    import tomli_w  # only commands that write the file need it (not `list` or serve)

    ordered = {key: table[key] for key in model.TASK_KEYS if key in table}
    return tomli_w.dumps({"tasks": {name: ordered}})


def _replace_spans(lines: list[str], spans: list[_Span], replacement: list[str]) -> list[str]:
    """Return `lines` with the first span replaced and the others removed."""
    result = list(lines)
    for index, span in sorted(enumerate(spans), key=lambda item: item[1].start, reverse=True):
        new = replacement if index == 0 else []
        result[span.start : span.end] = new
    return result


def _append_block(text: str, block: str) -> str:
    if not text.strip():
        return block
    return text.rstrip("\n") + "\n\n" + block


def _without_task(text: str, name: str) -> str:
    lines = text.splitlines()
    spans = _task_spans(lines, name)
    if not spans:
        raise _not_editable(name)
    result = list(lines)
    for span in sorted(spans, key=lambda s: s.start, reverse=True):
        start = span.start
        # A comment block glued to the header describes the task; it goes with it.
        while start > 0 and result[start - 1].lstrip().startswith("#"):
            start -= 1
        end = span.end
        while end < len(result) and not result[end].strip():
            end += 1
        if start > 0 and end >= len(result):
            while start > 0 and not result[start - 1].strip():
                start -= 1
        del result[start:end]
    return "\n".join(result) + ("\n" if result else "")


def task_text(text: str, name: str) -> str:
    """Return the text of one task's tables, for `edit NAME`."""
    lines = text.splitlines()
    spans = _task_spans(lines, name)
    if not spans:
        raise _not_editable(name)
    return "\n".join("\n".join(lines[s.start : s.end]) for s in spans) + "\n"


def splice_task(text: str, name: str, block: str) -> str:
    """Return `text` with task `name`'s tables replaced by `block`."""
    lines = text.splitlines()
    spans = _task_spans(lines, name)
    if not spans:
        raise _not_editable(name)
    return "\n".join(_replace_spans(lines, spans, block.rstrip("\n").splitlines())) + "\n"


def _not_editable(name: str) -> TaskFileError:
    return TaskFileError(
        "is not written as a [tasks.NAME] table, so the CLI cannot change it without touching other text",
        task=name,
        hint="change it with `cronctl edit`",
    )


def add_text(
    text: str, name: str, table: Mapping[str, Any], *, replace: bool, known: Mapping[str, Any]
) -> str:
    block = render_task_table(name, table)
    if name in known:
        if not replace:
            raise DuplicateTaskError(
                f"a task named '{name}' already exists", hint="use --replace to overwrite it"
            )
        return splice_task(text, name, block)
    return _append_block(text, block)


_ENABLED_LINE = re.compile(r"^(\s*enabled\s*=\s*)(true|false)(\s*(#.*)?)$")


def enabled_text(text: str, name: str, enabled: bool) -> str:
    lines = text.splitlines()
    spans = [s for s in _task_spans(lines, name) if len(s.path) == 2]
    if not spans:
        raise _not_editable(name)
    span = spans[0]
    value = "true" if enabled else "false"
    for number in range(span.start + 1, span.end):
        match = _ENABLED_LINE.match(lines[number])
        if match:
            lines[number] = match.group(1) + value + match.group(3)
            break
    else:
        lines.insert(span.start + 1, f"enabled = {value}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def locked(path: Path, wait: float | None = None, clock: Clock = SYSTEM_CLOCK) -> Iterator[None]:
    """Hold the advisory lock that serialises writers of `path` (on `path`.lock, never replaced).

    Waits up to `wait` seconds (LOCK_WAIT_SECONDS) for another writer, then raises
    LockHeldError (exit 75: try again).
    """
    wait = LOCK_WAIT_SECONDS if wait is None else wait
    target = _writable_target(path)
    lock_path = target.with_name(target.name + ".lock")
    try:
        ensure_private_dir(target.parent)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise TaskFileWriteError(
            f"{path}: cannot create the lock file {lock_path}: {exc.strerror}"
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
                        f"(it holds {lock_path}); nothing was written",
                        hint=f"try again; `fuser {lock_path}` shows the process holding it",
                    ) from None
                clock.sleep(0.01)
        yield
    finally:
        os.close(fd)


def _real(path: Path) -> Path:
    # Dotfile managers symlink the task file: write next to the target, keep the link.
    return Path(os.path.realpath(path))


def _writable_target(path: Path) -> Path:
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


_UNCHECKED: Any = object()


def write_atomic(path: Path, text: str, *, expect: bytes | None = _UNCHECKED) -> bool:
    """Replace `path` with `text`: temporary file, fsync, rename, fsync of the folder.

    With `expect` (the bytes the new text was made from; None: the file did not exist), the
    file is re-read just before the rename and nothing is replaced when it changed since: an
    editor saved it meanwhile (editors do not take our lock). Returns whether it was replaced.
    """
    target = _writable_target(path)
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
        if expect is not _UNCHECKED and snapshot(target) != expect:
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


UPDATE_ATTEMPTS = 3


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
            current = _parse_bytes(data, path)
            new_text = change(current)
            updated = parse_text(new_text, path)
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
        model.parse_task(name, table, current.defaults, model.machine_timezone())
        replaced = name in current.tasks
        twins = [t for t in current.tasks if t != name and t.lower() == name.lower()]
        return add_text(current.text, name, table, replace=replace, known=current.tasks)

    updated = update(path, change, touched={name})
    if warn is not None and twins and not replaced:
        others = " and ".join(f"'{t}'" for t in twins)
        warn(f"task names are case-sensitive: '{name}' is a new task beside {others}")
    return updated.tasks[name], replaced


def remove_tasks(path: Path, names: list[str]) -> list[str]:
    def change(current: TaskFile) -> str:
        text = current.text
        for name in names:
            current.get(name)
            text = _without_task(text, name)
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


def replace_text(path: Path, text: str, *, expect: bytes | None = _UNCHECKED) -> TaskFile:
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
