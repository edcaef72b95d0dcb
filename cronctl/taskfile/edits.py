"""Changes to the text of one task, leaving every other byte of the file as the user wrote it.

Each function takes the file's text and returns the new text; nothing here touches the disk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cronctl import model
from cronctl.errors import DuplicateTaskError, TaskFileError
from cronctl.taskfile.layout import Span, task_spans


def render_task_table(name: str, table: Mapping[str, Any]) -> str:
    """Return the TOML text of one task, keys in the documented order."""
    import tomli_w  # only commands that write the file need it (not `list` or serve)

    ordered = {key: table[key] for key in model.TASK_KEYS if key in table}
    return tomli_w.dumps({"tasks": {name: ordered}})


def _replace_spans(lines: list[str], spans: list[Span], replacement: list[str]) -> list[str]:
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


def without_task(text: str, name: str) -> str:
    """Return `text` without task `name`'s tables, the comment above them and their blank
    lines."""
    lines = text.splitlines()
    spans = task_spans(lines, name)
    if not spans:
        raise not_editable(name)
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
    spans = task_spans(lines, name)
    if not spans:
        raise not_editable(name)
    return "\n".join("\n".join(lines[s.start : s.end]) for s in spans) + "\n"


def splice_task(text: str, name: str, block: str) -> str:
    """Return `text` with task `name`'s tables replaced by `block`."""
    lines = text.splitlines()
    spans = task_spans(lines, name)
    if not spans:
        raise not_editable(name)
    return "\n".join(_replace_spans(lines, spans, block.rstrip("\n").splitlines())) + "\n"


def not_editable(name: str) -> TaskFileError:
    return TaskFileError(
        "is not written as a [tasks.NAME] table, so the CLI cannot change it without touching "
        "other text",
        task=name,
        hint="change it with `cronctl edit`",
    )


def add_text(
    text: str, name: str, table: Mapping[str, Any], *, replace: bool, known: Mapping[str, Any]
) -> str:
    """Return `text` with task `name` appended (or, with `replace`, put in place of the old)."""
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
    """Return `text` with task `name`'s `enabled` line set (or added under its header)."""
    lines = text.splitlines()
    spans = [s for s in task_spans(lines, name) if len(s.path) == 2]
    if not spans:
        raise not_editable(name)
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


# ---------------------------------------------------------------------------------------------
# Renaming a task: its tables' headers, its dotted keys, and the `after` lists that name it.
# Each line keeps every other character (comments, spacing, quoting style where it can).

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MULTI_QUOTES = re.compile(r'"""|\'\'\'')


def _segments(line: str, start: int) -> tuple[list[tuple[str, int, int]], int] | None:
    """The dotted key at `line[start:]`: each part with the span of its text (quotes
    included), and where the key ends; None when no key starts there."""
    parts: list[tuple[str, int, int]] = []
    at = start
    while True:
        while at < len(line) and line[at] in " \t":
            at += 1
        if at < len(line) and line[at] in "\"'":
            quote = line[at]
            end = line.find(quote, at + 1)
            while quote == '"' and end != -1 and line[end - 1] == "\\":
                end = line.find(quote, end + 1)
            if end == -1:
                return None
            raw = line[at + 1 : end]
            parts.append((raw, at, end + 1))  # names (the name rule) hold no escapes
            at = end + 1
        else:
            match = _BARE_KEY.match(line, at)
            if not match:
                return None
            parts.append((match.group(0), at, match.end()))
            at = match.end()
        after = at
        while after < len(line) and line[after] in " \t":
            after += 1
        if after < len(line) and line[after] == ".":
            at = after + 1
            continue
        return parts, at


def _spelled(new: str, original: str) -> str:
    """`new` as a key, quoted as the key it replaces was (bare when it can be)."""
    if original[0] in "\"'":
        return original[0] + new + original[0]
    return new if _BARE_KEY.fullmatch(new) else f'"{new}"'


def _rename_key(line: str, start: int, prefix: tuple[str, ...], old: str, new: str) -> str:
    """Rename part `old` of the key at `line[start:]` when the full key (`prefix` + key) is
    task `old`'s: ("tasks", old, ...)."""
    found = _segments(line, start)
    if found is None:
        return line
    parts = found[0]
    full = prefix + tuple(p for p, _, _ in parts)
    if len(full) < 2 or full[:2] != ("tasks", old):
        return line
    index = 1 - len(prefix)  # where "old" sits among this line's parts
    if index < 0:
        return line
    _, begin, end = parts[index]
    return line[:begin] + _spelled(new, line[begin:end]) + line[end:]


_AFTER_STRING = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'[^']*')")


def _rename_in_value(text: str, old: str, new: str) -> str:
    """The strings `old` of an `after` value renamed, every other character kept."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        return token[0] + new + token[0] if token[1:-1] == old else token

    head, hash_, comment = _split_comment(text)
    return _AFTER_STRING.sub(swap, head) + hash_ + comment


def _split_comment(text: str) -> tuple[str, str, str]:
    """`text` split at its comment's `#` (outside strings)."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return text[:index], "#", text[index + 1 :]
    return text, "", ""


def renamed_text(text: str, old: str, new: str) -> str:
    """Return `text` with task `old` named `new`: the headers of its tables (`[tasks.OLD]`,
    `[tasks.OLD.env]`, quoted or not), its dotted keys (`OLD.command = ` in `[tasks]`,
    `tasks.OLD.x = ` at the top), and the strings `old` in the `after` lists of every task.
    The caller checks the result by parsing it (cronctl.renaming)."""
    lines = text.splitlines()
    table: tuple[str, ...] = ()
    in_string: str | None = None
    after_depth = 0  # open brackets of a multi-line `after` list
    for number, line in enumerate(lines):
        quotes = _MULTI_QUOTES.findall(line)
        if in_string is not None:
            if quotes.count(in_string) % 2:
                in_string = None
            continue
        if after_depth:
            lines[number] = _rename_in_value(line, old, new)
            after_depth = max(0, after_depth + _depth(line))
            continue
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.startswith("[") and not stripped.startswith("[["):
            found = _segments(line, indent + 1)
            if found is not None:
                parts, _ = found
                lines[number] = _rename_key(line, indent + 1, (), old, new)
                table = tuple(p for p, _, _ in parts)
                continue
        found = _segments(line, indent)
        if found is not None and line[found[1] :].lstrip().startswith("="):
            full = table + tuple(p for p, _, _ in found[0])
            line = lines[number] = _rename_key(line, indent, table, old, new)
            renamed = _segments(line, indent)
            assert renamed is not None  # a key renamed is still a key
            value_at = line.index("=", renamed[1]) + 1
            if len(full) == 3 and full[0] == "tasks" and full[2] == "after":
                value = _rename_in_value(line[value_at:], old, new)
                lines[number] = line[:value_at] + value
                after_depth = max(0, _depth(value))
            elif len(full) == 2 and full[0] == "tasks" and "after" in line[value_at:]:
                lines[number] = line[:value_at] + _rename_in_value(line[value_at:], old, new)
        for quote in ('"""', "'''"):
            if quotes.count(quote) % 2:
                in_string = quote
                break
    return "\n".join(lines) + ("\n" if text.endswith("\n") or not text else "")


def _depth(text: str) -> int:
    """Brackets opened less brackets closed in `text`, outside strings and comments."""
    head = _split_comment(text)[0]
    head = _AFTER_STRING.sub("", head)
    return head.count("[") - head.count("]")
