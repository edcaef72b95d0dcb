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
