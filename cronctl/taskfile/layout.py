"""Where things are in the text of the task file, found from its lines without parsing it all:
the lines of each table (writes change one task's text and nothing else) and the line of a key
(every error names one).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass

KeyPath = tuple[str, ...]  # a dotted key, split: ("tasks", "backup", "notify", "on")


def locate(text: str, task: str | None, key: str | None) -> int | None:
    """Return the 1-based line of `key` (dotted: `notify.on`, `env.HOME`) of `task`, or None.

    With no task, `key` is a key of [defaults] or, failing that, a top-level key (`[taks.x]`).
    The line is that of the key itself, in a table header (`[tasks.a.notify]`, `[[tasks.a]]`)
    or an assignment (`on = ...`, `notify.on = ...`, `backup = 5` in [tasks]); failing that,
    of the nearest table or key that holds it (a missing key: its task's header).
    """
    parts = tuple(key.split(".")) if key is not None else ()
    if task is None:
        targets = [("defaults", *parts), parts] if parts else [("defaults",)]
    else:
        targets = [("tasks", task, *parts)]
    found = list(key_lines(text.splitlines()))
    for target in targets:
        line = _first_line(found, target)
        if line is not None:
            return line
    target = targets[0]
    for length in range(len(target) - 1, 0, -1):
        line = _first_line(found, target[:length])
        if line is not None:
            return line
    return None


def _first_line(found: list[tuple[int, KeyPath]], target: KeyPath) -> int | None:
    """The first line of exactly `target`, else the first of a key inside it."""
    for number, path in found:
        if path == target:
            return number
    for number, path in found:
        if path[: len(target)] == target:
            return number
    return None


_MULTI_LINE_QUOTES = re.compile(r'"""|\'\'\'')


def key_lines(lines: list[str]) -> Iterator[tuple[int, KeyPath]]:
    """Yield (1-based line, full dotted key) of each table header and each `key = ` line.

    Lines inside a multi-line string are skipped; a value's other lines (a long array) hold no
    `key =` that counts, since their first token is not followed by `=`.
    """
    table: KeyPath = ()
    in_string: str | None = None
    for number, line in enumerate(lines, start=1):
        quotes = _MULTI_LINE_QUOTES.findall(line)
        if in_string is not None:
            if quotes.count(in_string) % 2:
                in_string = None
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            header = _header_path(stripped)
            if header is not None:
                table = header
                yield number, table
        else:
            split = split_key_path(stripped)
            if split is not None and split[1].startswith("="):
                yield number, table + split[0]
        for quote in ('"""', "'''"):
            if quotes.count(quote) % 2:
                in_string = quote
                break


_HEADER_END = re.compile(r"\s*(#.*)?$")


def _header_path(stripped: str) -> KeyPath | None:
    """Return the key of a `[table]` or `[[array of tables]]` header line."""
    close = "]]" if stripped.startswith("[[") else "]"
    split = split_key_path(stripped[len(close) :])
    if split is None or not split[1].startswith(close):
        return None
    if not _HEADER_END.fullmatch(split[1][len(close) :]):
        return None
    return split[0]


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def split_key_path(text: str) -> tuple[KeyPath, str] | None:
    """Return the dotted key at the start of `text` and the rest after it, stripped on the left;
    None when `text` does not start with a key."""
    parts: list[str] = []
    rest = text.lstrip()
    while True:
        if rest.startswith('"'):
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
        elif rest.startswith("'"):
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
        if not rest.startswith("."):
            return tuple(parts), rest
        rest = rest[1:].lstrip()


# ---------------------------------------------------------------------------------------------
# Finding the tables of the text by their header lines, without parsing it all: reading gives
# an error its line with them, and writing changes one task's text and nothing else.


@dataclass(frozen=True)
class Span:
    """The lines of one table: its header and the lines that belong to it."""

    path: tuple[str, ...]
    start: int  # index of the header line
    end: int  # index after the last line that belongs to the table


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
        path = _header_path(stripped)
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
