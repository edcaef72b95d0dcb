"""h3, h4: the limits of a task file (README, "The task file"): nesting, long numbers, size,
and what is read at all (a regular file, or a pipe for one command)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cronctl import taskfile
from cronctl.cli import complete
from cronctl.errors import TaskFileError
from cronctl.serve.reload import TaskFileWatcher
from cronctl.taskfile import stamp_of

PATH = Path("/srv/cron/tasks.toml")
TASK = '[tasks.a]\nschedule = "@daily"\ncommand = "true"\n'


def error_of(text: str) -> TaskFileError:
    with pytest.raises(TaskFileError) as caught:
        taskfile.parse_text(text, PATH, default_zone="UTC")
    assert "\n" not in str(caught.value)
    return caught.value


# ---------------------------------------------------------------------------------------------
# h3: nesting and numbers

DEEP = [
    # (text, line named)
    ("x = " + "[" * 500 + "]" * 500 + "\n", 1),
    ("x = " + "[" * 101 + "]" * 101 + "\n", 1),
    ("x = " + "{a=" * 500 + "1" + "}" * 500 + "\n", 1),
    (TASK + "env = " + "[" * 5000 + "]" * 5000 + "\n", 4),
    (TASK + "after = [\n" + "[\n" * 300 + "]\n" * 300 + "]\n", 104),
    # Brackets in a string lower the first count: Python's parser hits its recursion limit.
    (TASK + 'description = "' + "]" * 400 + '"\nx = ' + "{a=" * 400 + "1}" + "}" * 399, 5),
]


@pytest.mark.parametrize(("text", "line"), DEEP, ids=range(len(DEEP)))
def test_h3_nesting_deeper_than_the_limit_is_invalid_toml(text, line):
    """Before: RecursionError (a traceback in every command; serve died on reload)."""
    error = error_of(text)
    assert error.detail == "invalid TOML: arrays or inline tables nested more than 100 deep"
    assert error.line == line


def test_h3_nesting_up_to_the_limit_and_brackets_in_strings_are_not_refused_for_it():
    at_limit = "x = " + "[" * 100 + "]" * 100 + "\n"
    assert "nested" not in error_of(at_limit).detail  # parsed; refused as an unknown key
    in_strings = TASK + 'description = "' + "[" * 300 + '"\n' + "# " + "{" * 300 + "\n"
    in_strings += "when = '''\n" + "[" * 300 + "\n'''\n"
    loaded = taskfile.parse_text(in_strings, PATH, default_zone="UTC")
    assert loaded.tasks["a"].description == "[" * 300


LONG_NUMBERS = [
    # (text, what the error says, line)
    (TASK + "retries = " + "9" * 5000 + "\n", "invalid TOML: a number of more than 4300", 4),
    (TASK + "retries = 0x" + "f" * 4000 + "\n", "is a number of more than 4300 digits", 4),
    (TASK.replace('"true"', "0x" + "f" * 4000), "is a number of more than 4300 digits", 3),
    ("[defaults.smtp]\nport = 0o" + "7" * 6000 + "\n", "is a number of more than 4300", 2),
    (TASK + 'timeout = "' + "9" * 5000 + '"\n', "is not a duration like", 4),
    (TASK.replace("@daily", "9" * 5000 + " * * * *"), "out of range: a number of 5000", 2),
    (TASK.replace("@daily", "@every " + "9" * 5000 + "s"), "'@every 999", 2),
    (TASK + "keep_runs = " + "9" * 4300 + "\n", "must be at most 100000000", 4),
]


@pytest.mark.parametrize(("text", "says", "line"), LONG_NUMBERS, ids=range(len(LONG_NUMBERS)))
def test_h3_numbers_of_thousands_of_digits_are_one_error(text, says, line):
    """Before: ValueError from int() or str() of the number (exit 1, a traceback)."""
    error = error_of(text)
    assert says in str(error) and error.line == line


# ---------------------------------------------------------------------------------------------
# h4: what is read, and how much


def test_h4_a_file_over_the_limit_is_refused_and_one_at_the_limit_is_read(tmp_path):
    path = tmp_path / "tasks.toml"
    padding = taskfile.MAX_BYTES - len(TASK)
    path.write_text(TASK + "#" * (padding - 1) + "\n")
    assert os.path.getsize(path) == taskfile.MAX_BYTES
    assert list(taskfile.load(path, default_zone="UTC").tasks) == ["a"]
    with open(path, "a") as handle:
        handle.write("\n")
    with pytest.raises(TaskFileError, match="is larger than 16 MiB"):
        taskfile.load(path)
    # Text on its way to the file (`edit`, `add`) is held to the same limit.
    with pytest.raises(TaskFileError, match="is larger than 16 MiB"):
        taskfile.parse_text(path.read_text(), path)


def test_h4_devices_sockets_and_folders_are_never_read(tmp_path):
    """Before: /dev/zero was read until memory ran out (5.8 GB in 4 s)."""
    started = time.monotonic()
    for regular_only in (False, True):
        with pytest.raises(TaskFileError, match=r"is not a regular file \(a character device\)"):
            taskfile.load(Path("/dev/zero"), regular_only=regular_only)
    assert time.monotonic() - started < 1
    with pytest.raises(TaskFileError, match="is a folder"):
        taskfile.snapshot(tmp_path)


def test_h4_a_pipe_is_read_for_one_command_up_to_the_limit_and_never_by_serve(tmp_path):
    fifo = tmp_path / "tasks.toml"
    os.mkfifo(fifo)

    def endless() -> None:
        try:
            with open(fifo, "wb") as writer:
                while True:
                    writer.write(b"#" * 65536)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    with pytest.raises(TaskFileError, match="is larger than 16 MiB"):
        taskfile.load(fifo)
    writer.join(10)
    assert not writer.is_alive()
    with pytest.raises(TaskFileError, match=r"is not a regular file \(a pipe\)"):
        taskfile.load(fifo, regular_only=True)  # no writer: serve must not wait for one


def test_h4_completion_reads_no_more_than_the_task_file_limit(tmp_path):
    assert complete.TASK_FILE_LIMIT == taskfile.MAX_BYTES
    path = tmp_path / "tasks.toml"
    path.write_text(TASK + "#" * taskfile.MAX_BYTES)
    assert complete.task_names(path) == {}
    path.write_text(TASK)
    assert complete.task_names(path) == {"a": "@daily"}
    assert complete.task_names(Path("/dev/zero")) == {}


def test_h3_the_watcher_keeps_the_last_good_tasks_whatever_the_loader_raises(tmp_path, caplog):
    """serve's reload: an exception the loader should never raise is logged, not fatal."""
    path = tmp_path / "tasks.toml"
    path.write_text(TASK)

    def broken_loader(_: Path) -> taskfile.TaskFile:
        raise RecursionError("maximum recursion depth exceeded")

    watcher = TaskFileWatcher(path, stamp=stamp_of(path), loader=broken_loader)
    path.write_text(TASK + "# changed\n")
    assert watcher.poll(force=True) is None
    assert "not reloaded, the last good tasks keep running" in caplog.text
    assert "RecursionError" in caplog.text
