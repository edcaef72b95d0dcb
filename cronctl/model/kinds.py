"""The shape rule: what kind of TOML value each key of the task file may hold.

TOML gives every value one of ten kinds (a string, an integer, a table, an array, a date...).
Each key says which kinds it takes (its Shape, in the table of task keys and the notify and
smtp tables of cronctl.model.keys), and `check_shape` holds every value the file reads to its
key's shape before the key's own check runs: a key's check only ever sees a value of its kind,
whatever the file holds there (`notify = "failure"`, `[defaults] smtp = 1`, `env = [[1]]`, a
table where a string goes, an array of tables). The error names the task and the key and says
what the key takes, in the words of TOML, never Python's.

The rule descends only as deep as the shapes go (a task's `notify` table, an `env` table, the
items of an array), never as deep as the value goes: a value nested a hundred levels deep is
refused at the first level where it is not what its key takes.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, NamedTuple, NoReturn

from cronctl.errors import TaskFileError

# Python refuses to write an integer of more than 4300 digits in decimal
# (sys.get_int_max_str_digits), and tomllib to read one: nothing that long is a number here.
MAX_INTEGER_DIGITS = 4300
_TOO_LONG = 10**MAX_INTEGER_DIGITS


def kind_of(value: Any) -> str:
    """Return the TOML kind of a value tomllib made: "string", "integer", "table"..."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, datetime.datetime):
        return "offset date-time" if value.tzinfo is not None else "local date-time"
    if isinstance(value, datetime.date):
        return "local date"
    if isinstance(value, datetime.time):
        return "local time"
    return type(value).__name__  # not from TOML (a caller's own table): named as it is


def described(value: Any) -> str:
    """Return the kind of `value` with its article, for an error: "an integer", "a table"."""
    kind = kind_of(value)
    if kind == "array" and value and all(isinstance(item, Mapping) for item in value):
        kind = "array of tables"  # [[...]]: what a reader of the file wrote
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind}"


class Shape(NamedTuple):
    """What a key may hold: the kinds of TOML value, and for an array or a table, its items."""

    kinds: frozenset[str]
    words: str  # what it must be, for the error: "a string", "true or false"
    items: Shape | None = None  # each item of an array, each value of a table of any keys
    keys: Mapping[str, Shape] | None = None  # a table of known keys: the shape of each


def shape(words: str, *kinds: str, items: Shape | None = None) -> Shape:
    return Shape(frozenset(kinds), words, items)


def table_of(words: str, keys: Mapping[str, Shape]) -> Shape:
    """A table whose known keys each have a shape (unknown keys are refused by check_keys)."""
    return Shape(frozenset({"table"}), words, keys=keys)


STRING = shape("a string", "string")
WHOLE_NUMBER = shape("a whole number", "integer")
BOOLEAN = shape("true or false", "boolean")
DURATION = shape(
    'a duration (a string like "5m") or a whole number of seconds', "string", "integer"
)
STRINGS = shape("a list of strings", "array", items=STRING)
STRING_OR_STRINGS = shape("a string or a list of strings", "string", "array", items=STRING)


def _fail(task: str | None, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise TaskFileError(message, task=task, key=key, hint=hint)


def _quote_hint(key: str | None, value: Any) -> str | None:
    """`A = 1` where a string goes: say how to quote it (numbers and booleans only)."""
    if key is None or kind_of(value) not in ("integer", "float", "boolean"):
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f'quote it: {key.rsplit(".", 1)[-1]} = "{text}"'


def check_shape(
    task: str | None, key: str | None, value: Any, expected: Shape, *, inner: str | None = None
) -> None:
    """Raise TaskFileError(task, key) unless `value` has the shape `expected`, all the way down.

    The keys of a table are named `key.name` (`notify.on`, `env.HOME`); `inner` overrides that
    prefix ("" for the table of a task or of [defaults], whose keys are named alone).
    """
    if type(value) is str and "string" in expected.kinds:
        return  # most values are: checked first (docs/performance.md, "100,000 tasks")
    kind = kind_of(value)
    if kind == "integer" and abs(value) >= _TOO_LONG:  # first: not even a hint may print it
        _fail(task, key, f"is a number of more than {MAX_INTEGER_DIGITS} digits")
    if kind not in expected.kinds:
        hint = _quote_hint(key, value) if "string" in expected.kinds else None
        _fail(task, key, f"must be {expected.words}, not {described(value)}", hint)
    if kind == "array" and expected.items is not None:
        for number, item in enumerate(value, start=1):
            if kind_of(item) not in expected.items.kinds:
                _fail(task, key, f"must be {expected.words}; item {number} is {described(item)}")
            check_shape(task, key, item, expected.items)
    if kind == "table" and (expected.keys is not None or expected.items is not None):
        prefix = f"{key}." if inner is None else inner
        for name, item in value.items():
            item_shape = expected.items if expected.keys is None else expected.keys.get(name)
            if type(item) is str and item_shape is not None and "string" in item_shape.kinds:
                continue  # as above, without naming the key
            if item_shape is not None:
                check_shape(task, f"{prefix}{name}", item, item_shape)
