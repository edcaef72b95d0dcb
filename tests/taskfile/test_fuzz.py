"""h2, h3: whatever a task file holds, the loader answers with the task list or cronctl's own
error (TaskFileError: one line that starts with the file's path), never another exception.

The default run tries a few hundred documents in a few seconds; `--run-slow` tries 20,000 of
each kind. The same documents go through the real `cronctl` for a handful of examples.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cronctl import model, taskfile
from cronctl.errors import TaskFileError
from tests.taskfile.documents import documents, mangled_texts, serialised

PATH = Path("/srv/cron/tasks.toml")
TASK = {"schedule": "@daily", "command": "true"}
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
FAST = settings(max_examples=100, deadline=None, suppress_health_check=_QUIET)
SLOW = settings(max_examples=20_000, deadline=None, suppress_health_check=_QUIET)


def assert_loads_or_one_error(text: str) -> None:
    try:
        loaded = taskfile.parse_text(text, PATH, default_zone="UTC")
    except TaskFileError as error:
        message = str(error)
        assert message.startswith(f"{PATH}"), message
        assert "\n" not in message and "\n" not in (error.hint or ""), repr(message)
        return
    assert all(isinstance(task, model.Task) for task in loaded.tasks.values())


# What the fuzz found on the code before h2 and h3, kept as examples that always run.
FOUND = [
    {"tasks": {"a": {**TASK, "timeout": "9" * 5000}}},  # ValueError from int()
    {"tasks": {"a": {**TASK, "schedule": "9" * 5000 + " * * * *"}}},  # ValueError
]
FOUND_TEXTS = [
    "x = " + "[" * 500 + "]" * 500 + "\n",  # RecursionError
    "x = " + "{a=" * 400 + "1" + "}" * 400 + "\n",  # RecursionError
    'x = "' + "]" * 300 + '"\ny = ' + "{a=" * 400 + "1" + "}" * 400 + "\n",  # the same, unseen
    "[tasks.a]\nretries = " + "9" * 5000 + "\n",  # ValueError from tomllib
    "[tasks.a]\nretries = 0x" + "f" * 4000 + "\n",  # ValueError from str() of the number
    '[tasks.a]\nschedule = "@daily"\ncommand = 0x' + "f" * 4000 + "\n",  # the same, in a hint
]


@FAST
@given(documents())
@example(FOUND[0])
@example(FOUND[1])
def test_h2_generated_task_files_load_or_give_one_error(document):
    assert_loads_or_one_error(serialised(document))


@FAST
@given(mangled_texts())
@example(FOUND_TEXTS[0])
@example(FOUND_TEXTS[1])
@example(FOUND_TEXTS[2])
@example(FOUND_TEXTS[3])
@example(FOUND_TEXTS[4])
@example(FOUND_TEXTS[5])
def test_h2_mangled_task_files_load_or_give_one_error(text):
    assert_loads_or_one_error(text)


def assert_check_agrees_with_the_loader(text: str) -> None:
    """`check` (check_text) of any text: TaskFileErrors only, each one line naming the file; no
    error exactly when the loader takes the file, then the same tasks; else the loader's error
    among them (#14, item 6)."""
    checked, errors = taskfile.check_text(text, PATH, default_zone="UTC")
    for error in errors:
        assert str(error).startswith(f"{PATH}") and "\n" not in str(error), repr(str(error))
    try:
        loaded = taskfile.parse_text(text, PATH, default_zone="UTC")
    except TaskFileError as first:
        assert str(first) in [str(error) for error in errors], (str(first), errors)
        table = checked.raw.get("tasks")
        assert set(checked.tasks) <= set(table if isinstance(table, dict) else ())
        return
    assert errors == [] and checked.tasks == loaded.tasks


@FAST
@given(st.one_of(documents().map(serialised), mangled_texts()))
def test_c6_check_of_generated_task_files_agrees_with_the_loader(text):
    assert_check_agrees_with_the_loader(text)


@pytest.mark.slow
@SLOW
@given(st.one_of(documents().map(serialised), mangled_texts()))
def test_c6_check_of_twenty_thousand_task_files(text):
    assert_check_agrees_with_the_loader(text)


@pytest.mark.slow
@SLOW
@given(documents())
def test_h2_twenty_thousand_generated_task_files(document):
    assert_loads_or_one_error(serialised(document))


@pytest.mark.slow
@SLOW
@given(mangled_texts())
def test_h2_twenty_thousand_mangled_task_files(text):
    assert_loads_or_one_error(text)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[*_QUIET, HealthCheck.function_scoped_fixture],
)
@given(st.one_of(documents().map(serialised), mangled_texts()))
def test_h2_generated_task_files_never_print_a_traceback(tmp_path_factory, cronctl_exe, text):
    path = tmp_path_factory.mktemp("fuzz") / "tasks.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    for command in (["check"], ["list"]):
        result = subprocess.run(
            [*cronctl_exe, "--tasks-file", str(path), *command],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
        )
        assert result.returncode in (0, 2), result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 2:
            assert result.stderr.startswith(f"error: {path}"), result.stderr


# ---------------------------------------------------------------------------------------------
# Every key, every shape: the rule holds key by key (the fuzz above samples; this is all of it)

SHAPES = {
    "a string": "failure",
    "an empty string": "",
    "an integer": 7,
    "a negative integer": -1,
    "a float": 1.5,
    "nan": float("nan"),
    "a boolean": True,
    "a date": dt.date(2020, 1, 1),
    "a date-time": dt.datetime(2020, 1, 1, 1, 1, tzinfo=dt.UTC),
    "a time": dt.time(1, 2),
    "an empty array": [],
    "an array of strings": ["a", "b"],
    "an array of integers": [1],
    "an array of tables": [{"a": "b"}],
    "an array of arrays": [["x"]],
    "an empty table": {},
    "a table": {"a": "b"},
    "a table of tables": {"a": {"b": 1}},
}
# Python's names for what TOML calls a table, an integer, an array...
PYTHON_WORDS = re.compile(r"\bnot (dict|int|list|float|str|bool)\b|datetime\.|\{'")


def every_place(value: object) -> dict[str, dict[str, object]]:
    """The document with `value` at each place of the file that has a key of its own."""
    places: dict[str, dict[str, object]] = {
        "tasks": {"tasks": value},
        "defaults": {"defaults": value},
        "tasks.a": {"tasks": {"a": value}},
        "tasks.a.env.X": {"tasks": {"a": {**TASK, "env": {"X": value}}}},
    }
    for key in model.TASK_KEYS:
        places[f"tasks.a.{key}"] = {"tasks": {"a": {**TASK, key: value}}}
    for key in model.DEFAULT_KEYS:
        places[f"defaults.{key}"] = {"defaults": {key: value}, "tasks": {"a": TASK}}
    for key in model.NOTIFY_KEYS:
        places[f"tasks.a.notify.{key}"] = {"tasks": {"a": {**TASK, "notify": {key: value}}}}
        places[f"defaults.notify.{key}"] = {"defaults": {"notify": {key: value}}}
    for key in model.SMTP_KEYS:
        places[f"defaults.smtp.{key}"] = {"defaults": {"smtp": {key: value}}}
    return places


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_h2_every_shape_at_every_key_loads_or_names_the_line_and_key(shape):
    """Before: `notify = "failure"` was a TypeError, `env.X = {}` named no line, messages
    said "dict" and "int"; a table where a string goes was refused at the task's header."""
    for place, document in every_place(SHAPES[shape]).items():
        text = serialised(document)
        try:
            taskfile.parse_text(text, PATH, default_zone="UTC")
        except TaskFileError as error:
            message = str(error)
            assert message.startswith(f"{PATH}:") and error.line, (place, message)
            assert not PYTHON_WORDS.search(message), (place, message)
            # The line named is the key's own; a missing key's is its task's header; a value
            # from [defaults] is named at the task that takes it.
            leaf = (error.key or "").rsplit(".", 1)[-1]
            named = text.splitlines()[error.line - 1]
            assert leaf in named or "is required" in message or place.startswith("defaults."), (
                place,
                message,
                named,
            )
