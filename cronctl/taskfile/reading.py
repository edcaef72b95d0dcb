"""Reading the task file: a bounded read of a regular file (or a pipe, for one command), bytes
to validated tasks, every error naming the file and the line.

The limits (README, "The task file"): a task file is read only up to MAX_BYTES, and arrays and
inline tables nest at most MAX_NESTING deep; beyond them the file is invalid, as is a number of
more than 4300 digits. Anything the file holds ends as a TaskFileError, never another exception:
tests/taskfile/test_fuzz.py feeds the loader generated documents to hold it to that.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cronctl import model
from cronctl.errors import TaskFileError, UnknownTaskError
from cronctl.locations import TASK_FILE_LIMIT
from cronctl.model.keys import REQUIRED_KEYS, TASKS_TABLE
from cronctl.model.kinds import MAX_INTEGER_DIGITS, check_shape
from cronctl.taskfile.layout import locate
from cronctl.taskfile.plain import read_plain

TOP_LEVEL_KEYS = ("defaults", "tasks")

MAX_BYTES = TASK_FILE_LIMIT
"""The most cronctl reads of a task file. A task is 100 to 300 bytes of TOML: 16 MiB holds
100,000 tasks of 160 bytes, the scale of issue 18 (docs/performance.md, "100,000 tasks": such
a file of 14 MB is read and validated in about 2 s, in under 200 MB); without a bound,
`--tasks-file /dev/zero` (or a log file named by mistake) grew memory without end."""

MAX_NESTING = 100
"""Arrays and inline tables nested deeper than this are refused (no task file needs more than
two levels); Python's TOML parser raised RecursionError from about 300 levels."""

_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class TaskFile:
    path: Path
    text: str
    tasks: dict[str, model.Task] = field(default_factory=dict)
    defaults: model.Defaults = field(default_factory=model.Defaults)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def secret_variables(self) -> frozenset[str]:
        """The environment variables that hold secrets of this file (`password_env` of
        [defaults.smtp], each task's `webhook_secret_env`): jobs never inherit them."""
        names = {t.notify.webhook_secret_env for t in self.tasks.values() if t.notify}
        if self.defaults.smtp is not None:
            names.add(self.defaults.smtp.password_env)
        return frozenset(name for name in names if name)

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


def load(path: Path, *, default_zone: str | None = None, regular_only: bool = False) -> TaskFile:
    """Return the parsed, validated task file; a missing file is an empty task list.

    `regular_only` refuses pipes too: a one-off `cronctl --tasks-file <(...) check` may read a
    pipe, but serve must never block on one it re-reads at every change.
    """
    return parse_bytes(snapshot(path, regular_only=regular_only), path, default_zone=default_zone)


def snapshot(path: Path, *, regular_only: bool = False) -> bytes | None:
    """Return the bytes of the task file, or None when it does not exist.

    Only a regular file is read (or, without `regular_only`, a pipe), and at most MAX_BYTES of
    it: a device, a socket or a folder is refused before it is opened, a larger file after
    MAX_BYTES + 1 bytes.
    """
    try:
        mode = os.stat(path).st_mode
        _check_kind(path, mode, pipe_ok=not regular_only)
        # A regular file is opened without blocking: swapped for a FIFO after the stat, it must
        # not hang serve at open; what was opened is checked again. A pipe opens as usual.
        regular = stat.S_ISREG(mode)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if regular else 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TaskFileError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        info = os.fstat(fd)
        _check_kind(path, info.st_mode, pipe_ok=not regular)
        if info.st_size > MAX_BYTES:
            raise _too_large(path)
        return _read_at_most(fd, path)
    except OSError as exc:
        raise TaskFileError(f"cannot read: {exc.strerror}", path=str(path)) from None
    finally:
        os.close(fd)


_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFIFO: "a pipe",
}


def _check_kind(path: Path, mode: int, *, pipe_ok: bool) -> None:
    if stat.S_ISREG(mode) or (stat.S_ISFIFO(mode) and pipe_ok):
        return
    if stat.S_ISDIR(mode):
        raise TaskFileError("is a folder, not a task file", path=str(path))
    kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
    hint = (
        "one command reads a pipe (`--tasks-file <(...)`); serve reads a regular file"
        if stat.S_ISFIFO(mode)
        else "point --tasks-file (or CRONCTL_TASKS) at a regular file"
    )
    raise TaskFileError(f"is not a regular file ({kind})", path=str(path), hint=hint)


def _read_at_most(fd: int, path: Path) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, min(_READ_CHUNK, MAX_BYTES + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BYTES:
            raise _too_large(path)
    return b"".join(chunks)


def _too_large(path: Path) -> TaskFileError:
    return TaskFileError(
        f"is larger than {MAX_BYTES // (1024 * 1024)} MiB, the most cronctl reads of a task file",
        path=str(path),
        hint="is it the right file? 16 MiB holds 100,000 tasks",
    )


def parse_bytes(data: bytes | None, path: Path, *, default_zone: str | None = None) -> TaskFile:
    """Return the TaskFile for the bytes `snapshot` read (None: no file, no tasks)."""
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


def parse_text(
    text: str, path: Path, *, default_zone: str | None = None, known: TaskFile | None = None
) -> TaskFile:
    """Return the TaskFile for `text`; every error names the file and, where known, the line.

    Tasks without a `timezone` (theirs or [defaults]') get `default_zone`, by default the
    machine's zone. `known` is the same file as read before a write: a task whose table and
    defaults are what they were then is taken from it, not validated again (a task is a
    function of its table, the defaults and the zone), which keeps `add` on a file of 10,000
    tasks under a second.
    """
    # The text a write would save (`edit`, `add`) is held to what a read accepts.
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _too_large(path)
    with collector_paused():
        raw = _toml(text, path)
        try:
            reuse = (
                known
                if known is not None and known.raw.get("defaults") == raw.get("defaults")
                else None
            )
            defaults, tasks = _validate(raw, default_zone, reuse=reuse)
        except TaskFileError as exc:
            raise _placed(exc, path, text) from None
    return TaskFile(path=path, text=text, tasks=tasks, defaults=defaults, raw=raw)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a task file becomes objects.

    A load makes millions of objects and none of them is garbage, yet each collection of the
    oldest generation walks all of them again: validating 100,000 tasks took 2.3 s with the
    collector and 1.1 s without (docs/performance.md, "100,000 tasks"). The objects of a task
    file form no cycles, so nothing is left for the collector to find afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _toml(text: str, path: Path) -> dict[str, Any]:
    """Return the TOML document of `text`; whatever tomllib raises is invalid TOML."""
    plain = read_plain(text)  # the usual file, four times as fast (taskfile/plain.py)
    if plain is not None:
        return plain
    deep = _too_deep(text)
    if deep is not None:
        raise _nested_too_deep(path, deep)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line = int(found.group(1)) if found else None
        if found is None and _TOML_END.search(message):
            line = max(1, len(text.splitlines()))  # "at end of document": the last line
        reason = _TOML_END.sub("", _TOML_POSITION.sub("", message))
        raise TaskFileError(f"invalid TOML: {reason}", path=str(path), line=line) from None
    except RecursionError:  # nesting _too_deep did not see (brackets in strings misled it)
        raise _nested_too_deep(path, _too_deep(text, exact=True)) from None
    except ValueError:  # int() of a decimal number of more than 4300 digits
        found = _LONG_NUMBER.search(text)
        raise TaskFileError(
            f"invalid TOML: a number of more than {MAX_INTEGER_DIGITS} digits",
            path=str(path),
            line=text.count("\n", 0, found.start()) + 1 if found else None,
        ) from None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_TOML_END = re.compile(r"\s*\(at end of document\)$")
_LONG_NUMBER = re.compile(rf"[0-9_]{{{MAX_INTEGER_DIGITS + 1},}}")
# What holds brackets that do not nest: strings (multi-line first) and comments.
_NOT_NESTING = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*', re.DOTALL
)
_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH = {"[": 1, "{": 1, "]": -1, "}": -1}


def _too_deep(text: str, *, exact: bool = False) -> int | None:
    """Return the line where arrays and inline tables nest more than MAX_NESTING deep, or None.

    The brackets of the whole text are counted first (about 30 ms for 4 MiB); only when they
    go that deep are strings and comments, which may hold brackets, taken out and the lines
    counted. `exact` goes straight to that (and returns the deepest line when none is over).
    """
    if not exact:
        if text.count("[") + text.count("{") <= MAX_NESTING:
            return None
        brackets = _BRACKETS.sub("", text)
        if max(itertools.accumulate(map(_DEPTH.__getitem__, brackets)), default=0) <= MAX_NESTING:
            return None
    bare = _NOT_NESTING.sub(lambda found: "\n" * found.group().count("\n"), text)
    depth, deepest, deepest_line = 0, 0, None
    for number, line in enumerate(bare.split("\n"), start=1):
        for char in _BRACKETS.sub("", line):
            depth += _DEPTH[char]
            if depth > deepest:
                deepest, deepest_line = depth, number
            if depth > MAX_NESTING:
                return number
    return deepest_line if exact else None


def _nested_too_deep(path: Path, line: int | None) -> TaskFileError:
    return TaskFileError(
        f"invalid TOML: arrays or inline tables nested more than {MAX_NESTING} deep",
        path=str(path),
        line=line,
    )


def check_all(
    path: Path, *, default_zone: str | None = None
) -> tuple[TaskFile, list[TaskFileError]]:
    """Return the valid tasks of the file at `path` and every error of the others (`check`).

    Unlike `load`, which refuses the file at its first error, each task is checked whole: an
    error names its key and line, that key is set aside and the task checked again, so that
    three mistakes in three tasks (or in one) are three errors. A file that cannot be read or
    is not TOML is one error (tomllib stops at the first). Every other command refuses the
    whole file at its first error, and serve keeps its last valid tasks: only `check` looks
    past one.
    """
    try:
        text = "" if (data := snapshot(path)) is None else decode(data, path)
    except TaskFileError as exc:
        return TaskFile(path=path, text=""), [exc]
    return check_text(text, path, default_zone=default_zone)


def check_text(
    text: str, path: Path, *, default_zone: str | None = None
) -> tuple[TaskFile, list[TaskFileError]]:
    """`check_all` of the text of a file: its valid tasks and every error, in line order."""
    try:
        if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise _too_large(path)
        raw = _toml(text, path)
    except TaskFileError as exc:
        return TaskFile(path=path, text=""), [exc]
    found: list[TaskFileError] = []
    defaults, tasks = _validate(raw, default_zone, found)
    errors = [_placed(exc, path, text) for exc in found]
    errors.sort(key=lambda exc: exc.line or 0)  # stable: the file's order, line by line
    return TaskFile(path=path, text=text, tasks=tasks, defaults=defaults, raw=raw), errors


def _placed(exc: TaskFileError, path: Path, text: str) -> TaskFileError:
    """`exc` naming the file and the line of its key."""
    return TaskFileError(
        exc.detail,
        path=str(path),
        line=exc.line or locate(text, exc.task, exc.key),
        task=exc.task,
        key=exc.key,
        hint=exc.hint,
    )


Parsed = TypeVar("Parsed")


def _each_error(
    parse: Callable[[Any], Parsed],
    table: Any,
    found: list[TaskFileError] | None,
    *,
    required: tuple[str, ...] = (),
) -> Parsed | None:
    """Return `parse(table)`. Without `found`, its error is raised. With it, each error is
    added to `found`, its key taken out of the table and the rest parsed again, until what is
    left parses (returned: the caller decides what a table with errors is worth) or the error
    is not one key's (None: the table stays invalid). A required key ends it too: without it,
    the next error would only say that it is missing."""
    if found is None:
        return parse(table)
    while True:
        try:
            return parse(table)
        except TaskFileError as exc:
            if not _follows_a_typo(exc, table, found):
                found.append(exc)
            if exc.key is None or exc.key.split(".")[0] in required:
                return None
            table = _without(table, exc.key)
            if table is None:
                return None


def _follows_a_typo(error: TaskFileError, table: Any, found: list[TaskFileError]) -> bool:
    """Whether `error` says a key is required that an error before it suggested for a typo
    (`schedual`: "did you mean 'schedule'?"): one mistake, told once."""
    return (
        isinstance(table, Mapping)
        and error.key is not None
        and error.key not in table
        and any(
            earlier.task == error.task and earlier.hint == f"did you mean '{error.key}'?"
            for earlier in found
        )
    )


def _without(table: Any, key: str) -> dict[str, Any] | None:
    """A copy of `table` without the (dotted) `key`; None when it has no such key."""
    if not isinstance(table, Mapping):
        return None
    if key in table:
        return {name: value for name, value in table.items() if name != key}
    head, dot, rest = key.partition(".")
    if not dot or head not in table:
        return None
    inner = _without(table[head], rest)
    return None if inner is None else {**table, head: inner}


def _validate(
    raw: Mapping[str, Any],
    default_zone: str | None,
    found: list[TaskFileError] | None = None,
    *,
    reuse: TaskFile | None = None,
) -> tuple[model.Defaults, dict[str, model.Task]]:
    """Return the defaults and tasks of `raw`; raise the first error, or with `found`, add each
    error to it and return the defaults that are valid and the tasks that are."""
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            near = model.suggest(key, TOP_LEVEL_KEYS)
            hint = (
                f"did you mean [{near}]?"
                if near
                else "the file holds [defaults] and [tasks.NAME] tables"
            )
            _report(TaskFileError("unknown top-level key", key=key, hint=hint), found)
    parsed_defaults = _each_error(model.parse_defaults, raw.get("defaults", {}), found)
    defaults = parsed_defaults if parsed_defaults is not None else model.Defaults()
    table = raw.get("tasks", {})
    try:
        check_shape(None, "tasks", table, TASKS_TABLE)
    except TaskFileError as exc:
        _report(exc, found)
        return defaults, {}
    # The machine's zone is looked up only for tasks: it loads the zone rules (cronctl.schedule).
    zone = (default_zone or model.machine_timezone()) if table else ""
    tasks: dict[str, model.Task] = {}
    before = reuse.raw.get("tasks", {}) if reuse is not None else {}
    for name, body in table.items():
        if found is None:  # the loader of every other command: the first error is raised
            if reuse is not None and name in reuse.tasks and before.get(name) == body:
                tasks[name] = reuse.tasks[name]
            else:
                tasks[name] = model.parse_task(name, body, defaults, zone)
            continue
        errors_before = len(found)
        task = _each_error(
            functools.partial(_parse_task, name, defaults=defaults, zone=zone),
            body,
            found,
            required=REQUIRED_KEYS,
        )
        if task is not None and len(found) == errors_before:
            tasks[name] = task  # a task with an error is not valid, whatever else it holds
    for task in list(tasks.values()):
        for other in task.after:
            if other not in table:
                near = model.suggest(other, tuple(table))
                _report(
                    TaskFileError(
                        f"names an unknown task '{other}'",
                        task=task.name,
                        key="after",
                        hint=f"did you mean '{near}'?" if near else None,
                    ),
                    found,
                )
                tasks.pop(task.name, None)
    return defaults, tasks


def _parse_task(name: str, body: Any, *, defaults: model.Defaults, zone: str) -> model.Task:
    return model.parse_task(name, body, defaults, zone)


def _report(error: TaskFileError, found: list[TaskFileError] | None) -> None:
    if found is None:
        raise error
    found.append(error)
