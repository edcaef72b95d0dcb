"""`--json`'s text: exactly `json.dumps(data, indent=2, ensure_ascii=False)`, made by the C
encoder (the json module runs its pure-Python encoder whenever `indent` is given).

Every innermost container (a `list` row, a task's dict of figures: all its members scalars or
empty) is one call of the C encoder, its item separator holding the newline and the
indentation of its depth; only the containers around them are walked here. A string never
holds a raw newline (the encoder escapes it), so no separator can be mistaken for text.
`list --json` of 100,000 tasks spent 2 to 3 s in the Python encoder (docs/performance.md,
"100,000 tasks", round 2). tests/test_jsontext.py compares it with `json.dumps` on generated
documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from itertools import compress
from typing import Any

INDENT = "  "
_SCALARS = (str, int, float, type(None))  # bool is an int
_CONTAINERS = (dict, list, tuple)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
_STR_ONLY = frozenset((str,))
_PLAIN_TYPES = frozenset((*_SCALARS, bool, *_CONTAINERS))


def indented_json(data: Any) -> str:
    """`json.dumps(data, indent=2, ensure_ascii=False)`, byte for byte, faster."""
    parts: list[str] = []
    _encode(data, 0, parts.append)
    return "".join(parts)


@cache
def _encoder(level: int) -> json.JSONEncoder:
    """The C encoder for an innermost container at depth `level`."""
    return json.JSONEncoder(ensure_ascii=False, separators=("," + _newline(level + 1), ": "))


@cache
def _newline(level: int) -> str:
    return "\n" + INDENT * level


def _is_leaf(value: object) -> bool:
    return isinstance(value, _SCALARS) or (isinstance(value, _CONTAINERS) and not value)


def _innermost(children: Any) -> bool:
    """Whether every one of `children` is a scalar or an empty container. The common case
    (only the exact built-in types) is decided without a Python loop: a row of `list --json`
    has 30 members, and a loop over them cost more than the C encoder."""
    types = list(map(type, children))
    if _PLAIN_TYPES.issuperset(types):
        return not any(compress(children, map(_CONTAINER_TYPES.__contains__, types)))
    return all(_is_leaf(child) for child in children)


def _encode(value: Any, level: int, emit: Callable[[str], None]) -> None:
    if isinstance(value, dict):
        if not _STR_ONLY.issuperset(map(type, value)) and not all(
            isinstance(key, str) for key in value
        ):
            # Keys the encoder converts (numbers, None): the json module's own text, indented
            # to this depth (rare: no shape of cronctl's has them).
            indented = json.dumps(value, indent=2, ensure_ascii=False)
            emit(indented.replace("\n", _newline(level)))
            return
        children: Any = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    else:
        emit(_encoder(level).encode(value))
        return
    if not value or _innermost(children):
        text = _encoder(level).encode(value)
        if value:
            text = text[0] + _newline(level + 1) + text[1:-1] + _newline(level) + text[-1]
        emit(text)
        return
    inner = _newline(level + 1)
    emit(("{" if isinstance(value, dict) else "[") + inner)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for index, (key, child) in enumerate(items):
        if index:
            emit("," + inner)
        if isinstance(value, dict):
            emit(_encoder(level).encode(key) + ": ")
        _encode(child, level + 1, emit)
    emit(_newline(level) + ("}" if isinstance(value, dict) else "]"))
