"""Generated task files for the fuzz tests: TOML documents built from the real key names and
random ones, with values of every TOML kind at random depths, serialised with tomli_w; and the
same texts cut, spliced and salted with tokens that TOML and cronctl find hard."""

from __future__ import annotations

import datetime as dt
import re
import string
import sys

import tomli_w
from hypothesis import assume
from hypothesis import strategies as st

from cronctl import model

NAMES = ["backup", "a", "b", "db.dump", "x-1"]
REAL_KEYS = sorted(
    {
        *model.TASK_KEYS,
        *model.NOTIFY_KEYS,
        *model.SMTP_KEYS,
        "smtp",
        "notify",
        "env",
        "tasks",
        "defaults",
        "password",
        "webhook_secret",
        "HOME",
    }
)
# Strings that meet a rule of some key: schedules, durations, zones, policies, events, URLs,
# and those that broke a reader once (thousands of digits, NULs, newlines).
NASTY_STRINGS = [
    "@daily",
    "*/5 * * * *",
    "0 0 31 2 *",
    "@every 90s",
    "@every " + "9" * 5000 + "s",
    "9" * 5000 + " * * * *",
    "5m",
    "1h30m",
    "9" * 5000,
    "-1",
    "UTC",
    "Europe/Berlin",
    "../../etc/passwd",
    "skip",
    "queue",
    "failure",
    "json",
    "slack",
    "http://hooks.example.org/x",
    "me@example.org",
    "",
    " ",
    "\x00",
    "a\nb",
    "\x1b[31m",
]
_INTEGERS = st.one_of(
    st.integers(-10, 200),
    st.sampled_from([2**31, 2**63 - 1, -(2**63), 2**64, 10**30]),
    st.integers(),
)
SCALARS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(NASTY_STRINGS),
    _INTEGERS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.times(),
)
KEYS = st.one_of(st.sampled_from(REAL_KEYS), st.text(max_size=8))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=8,
)


@st.composite
def nested(draw: st.DrawFn) -> object:
    """A scalar inside arrays or one-key tables (or both, in turn), up to 150 levels deep, past
    the limit of 100. (Deeper nesting is spliced into texts by `mangled_texts`: hypothesis
    reports a failing example with a repr that recurses for each level.)"""
    value: object = draw(SCALARS)
    pattern = draw(st.sampled_from(["[", "{", "[{"]))
    depth = draw(st.one_of(st.integers(0, 5), st.integers(0, 5), st.integers(0, 150)))
    key = draw(KEYS)
    for level in range(depth):
        value = [value] if pattern[level % len(pattern)] == "[" else {key: value}
    return value


ANY_VALUE = st.one_of(VALUES, VALUES, nested())


def _table(keys: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(keys, ANY_VALUE, max_size=5)


@st.composite
def task_table(draw: st.DrawFn) -> object:
    """A task that is valid but for some keys, or any value at all where a task goes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(ANY_VALUE)
    table: dict[str, object] = {"schedule": "@daily", "command": "true"}
    table.update(draw(_table(st.sampled_from(model.TASK_KEYS))))
    if draw(st.booleans()):
        table["notify"] = draw(st.one_of(_table(st.sampled_from(model.NOTIFY_KEYS)), ANY_VALUE))
    return table


@st.composite
def defaults_table(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(ANY_VALUE)
    table = draw(_table(st.sampled_from(model.DEFAULT_KEYS)))
    if draw(st.booleans()):
        table["smtp"] = draw(st.one_of(_table(st.sampled_from(model.SMTP_KEYS)), ANY_VALUE))
    if draw(st.booleans()):
        table["notify"] = draw(_table(st.sampled_from(model.NOTIFY_KEYS)))
    return table


@st.composite
def documents(draw: st.DrawFn) -> dict[str, object]:
    """A task file's TOML document: mostly [defaults] and [tasks.NAME] with some keys of any
    shape; sometimes any table at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.dictionaries(KEYS, ANY_VALUE, max_size=4))
    document: dict[str, object] = {}
    names = st.one_of(st.sampled_from(NAMES), st.text(max_size=6))
    tasks = draw(st.dictionaries(names, task_table(), max_size=3))
    document["tasks"] = draw(ANY_VALUE) if draw(st.integers(0, 19)) == 0 else tasks
    if draw(st.booleans()):
        document["defaults"] = draw(defaults_table())
    return document


def serialised(document: dict[str, object]) -> str:
    """The TOML text of `document`; rejects what tomli_w cannot write (a NUL in a key...)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # tomli_w recurses for each level of nesting
    try:
        return tomli_w.dumps(document)
    except (TypeError, ValueError):
        assume(False)
        raise AssertionError("unreachable") from None
    finally:
        sys.setrecursionlimit(limit)


# Tokens spliced into a valid text: brackets by the hundred, numbers of thousands of digits in
# every base, broken dates, quotes, a byte-order mark, stray escapes.
TOKENS = [
    "[" * 400,
    "{a=" * 400,
    "[" * 600 + "]" * 600 + "\n",
    "x = " + "{a=" * 500 + "1" + "}" * 500 + "\n",
    "]",
    "}",
    "[[tasks]]\n",
    "[[tasks.a]]\n",
    "[tasks.a.notify]\n",
    "=",
    '"',
    "'''",
    '"""',
    "\\",
    "\n",
    "#",
    "retries = " + "9" * 5000 + "\n",
    "retries = 0x" + "f" * 4000 + "\n",
    "0x" + "f" * 4000,
    "9" * 5000,
    "[" * 300 + "]" * 300,
    "port = 0o" + "7" * 6000 + "\n",
    "x = 1979-05-27T00:32:00+25:00\n",
    "x = 9999-12-31T23:59:59-23:59\n",
    "x = 2020-02-30\n",
    "x = nan\n",
    "\ufeff",
    "\x00",
    "\udcff",
]


@st.composite
def mangled_texts(draw: st.DrawFn) -> str:
    """A serialised document with a few tokens spliced in (where a value goes, at the start of
    a line, or anywhere), or a part of it cut out."""
    text = serialised(draw(documents()))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["value", "line", "anywhere"]))
        marks = {"value": " = ", "line": "\n", "anywhere": ""}[where]
        starts = [found.end() for found in re.finditer(re.escape(marks), text)] if marks else []
        at = draw(st.sampled_from(starts)) if starts else draw(st.integers(0, len(text)))
        if draw(st.integers(0, 3)):
            piece = draw(st.one_of(st.sampled_from(TOKENS), st.text(string.printable, max_size=6)))
            # A value may take the place of the one it lands on (up to the end of its line).
            end = text.find("\n", at) if where == "value" and draw(st.booleans()) else at
            text = text[:at] + piece + text[at if end == -1 else end :]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
    return text
