"""Reading the task file: bytes to validated tasks, every error naming the file and the line;
where each table of the text starts and ends."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronctl import model
from cronctl.errors import TaskFileError, UnknownTaskError

TOP_LEVEL_KEYS = ("defaults", "tasks")


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

    `regular_only` refuses pipes and devices: a one-off `cronctl --tasks-file <(...) check`
    may read a pipe, but serve must never block on one it re-reads at every change.
    """
    return parse_bytes(snapshot(path, regular_only=regular_only), path, default_zone=default_zone)


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


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_TOML_END = re.compile(r"\s*\(at end of document\)$")


def parse_text(text: str, path: Path, *, default_zone: str | None = None) -> TaskFile:
    """Return the TaskFile for `text`; every error names the file and, where known, the line.

    Tasks without a `timezone` (theirs or [defaults]') get `default_zone`, by default the
    machine's zone.
    """
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
        defaults, tasks = _validate(raw, default_zone)
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
    raw: Mapping[str, Any], default_zone: str | None
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
    # The machine's zone is looked up only for tasks: it loads the zone rules (cronctl.schedule).
    zone = (default_zone or model.machine_timezone()) if table else ""
    tasks = {name: model.parse_task(name, body, defaults, zone) for name, body in table.items()}
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
    section: tuple[str, ...] = ("defaults",) if task is None else ("tasks", task)
    all_spans = table_spans(lines)
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
        found = _dotted_key_line(lines, spans, section, key)
        if found is not None:
            return found
    return spans[0].start + 1


def _dotted_key_line(
    lines: list[str], spans: list[Span], section: tuple[str, ...], key: str
) -> int | None:
    """Return the line of `key` (`timeout`, `notify.timeout`) in the tables of `section`."""
    leaf = key.split(".")[-1]
    sub = tuple(key.split(".")[:-1])
    pattern = re.compile(rf"\s*(\"?){re.escape(leaf)}\1\s*=")
    for span in spans:
        if span.path[len(section) :] != sub:
            continue
        for number in range(span.start + 1, span.end):
            if pattern.match(lines[number]):
                return number + 1
    return None


def _key_line(lines: list[str], spans: list[Span], key: str) -> int | None:
    """Return the line of a `key = ...` assignment directly in one of `spans`."""
    pattern = re.compile(rf"\s*([\"']?){re.escape(key)}\1\s*=")
    for span in spans:
        for number in range(span.start + 1, span.end):
            if pattern.match(lines[number]):
                return number + 1
    return None


def _top_level_line(lines: list[str], spans: list[Span], key: str) -> int | None:
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
# Finding the tables of the text by their header lines, without parsing it all: reading gives
# an error its line with them, and writing changes one task's text and nothing else.


@dataclass(frozen=True)
class Span:
    """The lines of one table: its header and the lines that belong to it."""

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


def table_spans(lines: list[str]) -> list[Span]:
    """Return the span of every table of `lines`, in order (`[[...]]` arrays as `("[[",)`)."""
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
        spans.append(Span(path, start, end))
    return spans


def task_spans(lines: list[str], name: str) -> list[Span]:
    """Return the spans of task `name`: [tasks.NAME] and its sub-tables."""
    return [s for s in table_spans(lines) if len(s.path) >= 2 and s.path[:2] == ("tasks", name)]
