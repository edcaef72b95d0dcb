"""A fast reader for the plain TOML that task files are written in, tomllib's exact result or
nothing (docs/performance.md, "100,000 tasks").

Python's TOML parser reads about 7 MB a second: 2.1 s for a file of 100,000 tasks, more than
the rest of serve's start. Task files, as `cronctl add` and people write them, use a small part
of TOML: `[table.headers]` of bare keys, `key = value` lines whose values are strings without
escapes, integers, booleans or one-line inline tables of those (`a = {schedule = "@daily",
command = "true"}`, 41 bytes a task: how bench_peers writes 100,000 of them), blank lines and
comments. `read_plain` reads a text made only of such lines, one regular expression a line,
about four times as fast; at anything else (an array, a nested inline table, an escape, a
float, a dotted or quoted key, a table or key given twice, a header adding to an inline table,
a carriage return) it returns None and the caller hands the whole text to tomllib, which then
also words any error. tests/taskfile/test_plain.py holds it to tomllib's result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_BARE = r"[A-Za-z0-9_-]+"
# Characters TOML allows in a one-line string or a comment: anything but control characters
# (tab excepted) and, in strings, the closing quote; a backslash (an escape) is left to tomllib.
_BASIC = r'"(?P<basic>[^"\\\x00-\x08\x0a-\x1f\x7f]*)"'
_LITERAL = r"'(?P<literal>[^'\x00-\x08\x0a-\x1f\x7f]*)'"
# Decimal integers of at most 18 digits (no underscores, no leading zeros, no other base): a
# signed 64-bit integer, which is all TOML promises.
_INTEGER = r"(?P<integer>[+-]?(?:0|[1-9][0-9]{0,17}))"
_BOOLEAN = r"(?P<boolean>true|false)"
# The same values without names, for the pairs of an inline table (`a = {x = "1", y = 2}`):
# one group a value, told apart by its first character.
_VALUE = (
    r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"|\'[^\'\x00-\x08\x0a-\x1f\x7f]*\''
    r"|[+-]?(?:0|[1-9][0-9]{0,17})|true|false"
)
_PAIR_SHAPE = rf"{_BARE}[ \t]*=[ \t]*(?:{_VALUE})"
_INLINE = rf"\{{[ \t]*(?P<inline>(?:{_PAIR_SHAPE}(?:[ \t]*,[ \t]*{_PAIR_SHAPE})*)?)[ \t]*\}}"
_LINE = re.compile(
    rf"[ \t]*(?:(?P<key>{_BARE})[ \t]*=[ \t]*"
    rf"(?:{_BASIC}|{_LITERAL}|{_INTEGER}|{_BOOLEAN}|{_INLINE})"
    rf"|\[[ \t]*(?P<table>{_BARE}(?:[ \t]*\.[ \t]*{_BARE})*)[ \t]*\])?"
    r"[ \t]*(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?"
)
# The pairs of an inline table the line's expression accepted: each key and its value's text.
_PAIR = re.compile(rf"({_BARE})[ \t]*=[ \t]*({_VALUE})")
_DOT = re.compile(r"[ \t]*\.[ \t]*")
_CHUNK = 1024 * 1024
_SHARED_LENGTH = 40  # longer values (commands, descriptions) are rarely equal


def read_plain(text: str) -> dict[str, Any] | None:
    """Return the TOML document of `text` when it is plain (see above), else None."""
    if "\r" in text:
        return None  # CRLF is TOML, a lone CR is not: tomllib tells them apart
    document: dict[str, Any] = {}
    table = document
    path: tuple[str, ...] = ()
    defined: set[tuple[str, ...]] = set()
    inline: set[tuple[str, ...]] = set()  # inline tables: closed, no header may add to them
    # Equal keys and short values (schedules, zones, durations, policies) become one string:
    # 100,000 tasks held 12 MB of copies of a few dozen values, and 23 MB of keys at the
    # peak of serve's start (docs/performance.md, "100,000 tasks").
    seen: dict[str, str] = {}
    match_line = _LINE.fullmatch
    for line in _lines(text):
        found = match_line(line)
        if found is None:
            return None
        key = found["key"]
        if key is not None:
            if key in table:
                return None  # a key given twice, or a table's name as a key
            value: Any
            if (value := found["basic"]) is None and (value := found["literal"]) is None:
                number = found["integer"]
                if number is not None:
                    value = int(number)
                elif (pairs := found["inline"]) is not None:
                    value = _inline_table(pairs, seen)
                    if value is None:
                        return None
                    inline.add((*path, key))
                else:
                    value = found["boolean"] == "true"
            elif len(value) <= _SHARED_LENGTH:
                value = seen.setdefault(value, value)
            table[seen.setdefault(key, key)] = value
            continue
        header = found["table"]
        if header is not None:
            path = tuple(seen.setdefault(part, part) for part in _DOT.split(header))
            if path in defined or (inline and _inside(path, inline)):
                return None  # a table defined twice, or added to an inline table
            defined.add(path)
            found_table = _table_at(document, path)
            if found_table is None:
                return None
            table = found_table
    return document


def _inline_table(pairs: str, seen: dict[str, str]) -> dict[str, Any] | None:
    """The table of an inline table's pairs (the line's expression accepted them: only values
    of the plain kinds); None when a key is given twice."""
    table: dict[str, Any] = {}
    found = _PAIR.findall(pairs)
    for key, text in found:
        first = text[0]
        value: Any
        if first == '"' or first == "'":
            value = text[1:-1]
            if len(value) <= _SHARED_LENGTH:
                value = seen.setdefault(value, value)
        elif first == "t" or first == "f":
            value = first == "t"
        else:
            value = int(text)
        table[seen.setdefault(key, key)] = value
    return table if len(table) == len(found) else None


def _inside(path: tuple[str, ...], inline: set[tuple[str, ...]]) -> bool:
    """Whether the table at `path` is an inline table or lies inside one."""
    return any(path[:length] in inline for length in range(1, len(path) + 1))


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, split a megabyte at a time: the list of 600,000 lines of a 14 MB
    file at once was 35 MB more at the peak of serve's start, which its RSS keeps."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _CHUNK)
        if end == -1:
            end = len(text)
        yield from text[start:end].split("\n")
        start = end + 1


def _table_at(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The table a header names, made with the tables it implies; None when a part of the
    path is a value. (Plain lines make no table but by a header.)"""
    table = document
    for part in path:
        inner = table.get(part)
        if inner is None:
            inner = table[part] = {}
        elif not isinstance(inner, dict):
            return None
        table = inner
    return table
