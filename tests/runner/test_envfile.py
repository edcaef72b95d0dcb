"""`env_file` (issue 16, item 1): KEY=VALUE files read at each run, never quoted in a message.
The line format is a table; the runs are real processes writing a real SQLite history."""

from __future__ import annotations

import os
import stat

import pytest

from cronctl.model import Defaults, parse_task
from cronctl.model.checks import task_warnings
from cronctl.records import Trigger
from cronctl.runner.envfile import MAX_BYTES, parse_line, read_env_file
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.store import HistoryStore

SECRET = "s3cr3t-#value"

# line | name | value  (value "-": a blank or comment line, no variable)
LINES = r"""
KEY=value                      | KEY       | value
export KEY=value               | KEY       | value
  KEY = spaced out             | KEY       | spaced out
KEY=                           | KEY       |
KEY='single #quoted \n'        | KEY       | single #quoted \n
KEY="a \"b\" \\ c\nd"          | KEY       | a "b" \ c<NL>d
KEY=p#ss word # not a comment  | KEY       | p#ss word # not a comment
KEY=$HOME/${USER}              | KEY       | $HOME/${USER}
KEY=a=b=c                      | KEY       | a=b=c
_under_9=1                     | _under_9  | 1
exporter=1                     | exporter  | 1
# a comment                    | -         | -
   # an indented comment       | -         | -
<blank>                        | -         | -
"""

# line | what the error says (never the value)
BAD_LINES = r"""
just words                     | not NAME=value
9KEY=1                         | '9KEY' is not a valid environment variable name
MY-KEY=1                       | 'MY-KEY' is not a valid environment variable name
KEY="s3cr3t                    | the value's " quote is not closed on its line
KEY='s3cr3t                    | the value's ' quote is not closed on its line
KEY="s3cr3t\"                  | the value's " quote is not closed on its line
export                         | not NAME=value
"""


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in table.strip("\n").splitlines()]


@pytest.mark.parametrize(("line", "name", "value"), _rows(LINES))
def test_j1_env_file_lines(line, name, value):
    parsed = parse_line(line.replace("<blank>", ""))
    if name == "-":
        assert parsed is None
    else:
        assert parsed == (name, value.replace("<NL>", "\n"))


@pytest.mark.parametrize(("line", "message"), _rows(BAD_LINES))
def test_j1_malformed_lines_say_why_without_the_value(line, message):
    with pytest.raises(ValueError) as caught:
        parse_line(line)
    assert str(caught.value) == message
    assert "s3cr3t" not in str(caught.value)


def _task(tmp_path, command: str, env_file, **keys):
    raw = {"schedule": "@daily", "command": command, "env_file": env_file, **keys}
    return parse_task("backup", raw, Defaults(), "UTC")


def _run(store, task):
    return Executor(store, environ={"PATH": os.environ["PATH"]}).execute(
        RunRequest(task, Trigger.MANUAL)
    )


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened


def test_j1_a_rotated_secret_counts_from_the_next_run(store, tmp_path):
    secrets = tmp_path / "backup.env"
    secrets.write_text(f"export TOKEN='{SECRET}-1'\n")
    secrets.chmod(0o600)
    task = _task(tmp_path, 'printf %s "$TOKEN"', str(secrets))
    first = _run(store, task)
    secrets.write_text(f"TOKEN='{SECRET}-2'\n")  # rotated; the task is the same object
    second = _run(store, task)
    assert [first.status, second.status] == ["succeeded", "succeeded"]
    assert store.get_run(first.id).stdout.data == f"{SECRET}-1".encode()
    assert store.get_run(second.id).stdout.data == f"{SECRET}-2".encode()


def test_j1_files_in_order_then_env_over_them(store, tmp_path):
    one, two = tmp_path / "one.env", tmp_path / "two.env"
    one.write_text("A=one\nB=one\nC=one\n")
    two.write_text("B=two\nC=two\n")
    task = _task(
        tmp_path, 'printf "%s %s %s" "$A" "$B" "$C"', [str(one), str(two)], env={"C": "env"}
    )
    run = _run(store, task)
    assert store.get_run(run.id).stdout.data == b"one two env"


@pytest.mark.parametrize(
    ("content", "reason_end"),
    [
        (None, ": cannot read it: No such file or directory"),
        (f"OK=1\n\nTOKEN {SECRET}\n", ", line 3: not NAME=value"),
        (f'TOKEN="{SECRET}\n', ", line 1: the value's \" quote is not closed on its line"),
        ("A=1\n" + "#" * MAX_BYTES, f": longer than {MAX_BYTES // 1024} KiB"),
    ],
)
def test_j1_an_unusable_file_ends_the_run_error_naming_file_and_line(
    store, tmp_path, content, reason_end
):
    path = tmp_path / "backup.env"
    if content is not None:
        path.write_text(content)
    marker = tmp_path / "ran"
    run = _run(store, _task(tmp_path, f"touch {marker}", str(path)))
    recorded = store.get_run(run.id)
    assert recorded.status == "error"
    assert recorded.reason == f"env_file {path}{reason_end}"
    assert SECRET not in recorded.reason and not marker.exists()


def test_j1_a_device_or_fifo_is_refused_without_hanging(store, tmp_path):
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        run = _run(store, _task(tmp_path, "true", str(path)))
        assert store.get_run(run.id).reason == f"env_file {path}: not a regular file"


def test_j1_home_relative_paths_are_read_from_home(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "app.env").write_text("WHO=home\n")
    run = _run(store, _task(tmp_path, 'printf %s "$WHO"', "~/app.env"))
    assert store.get_run(run.id).stdout.data == b"home"


@pytest.mark.parametrize("path", ["backup.env", "./backup.env", "../x.env", "~other/x.env"])
def test_j1_a_relative_path_is_refused_by_the_task_file(tmp_path, path):
    from cronctl.errors import TaskFileError

    with pytest.raises(TaskFileError) as caught:
        _task(tmp_path, "true", path)
    assert "is a relative path" in caught.value.message


@pytest.mark.parametrize(
    ("mode", "warning"),
    [
        (0o600, None),
        (0o400, None),
        (0o640, "is readable by its group: chmod 600"),
        (0o644, "is readable by everyone: chmod 600"),
    ],
)
def test_j1_check_warns_about_a_file_others_can_read(tmp_path, mode, warning):
    from datetime import UTC, datetime

    path = tmp_path / "backup.env"
    path.write_text("A=1\n")
    path.chmod(mode)
    found = [
        w
        for w in task_warnings(_task(tmp_path, "true", str(path)), datetime.now(UTC), {})
        if "env_file" in w
    ]
    assert found == ([] if warning is None else [f"env_file {path} {warning} {path}"])
    assert stat.S_IMODE(path.stat().st_mode) == mode  # a warning, not a change


def test_j1_check_warns_about_a_missing_file(tmp_path):
    from datetime import UTC, datetime

    path = tmp_path / "gone.env"
    [warning] = [
        w
        for w in task_warnings(_task(tmp_path, "true", str(path)), datetime.now(UTC), {})
        if "env_file" in w
    ]
    assert warning == (
        f"env_file {path} cannot be read here (No such file or directory):"
        " every run would end `error`"
    )


def test_j1_read_env_file_keeps_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.env"
    path.write_bytes(b"NAME=caf\xe9\n")
    value = read_env_file(str(path))["NAME"]
    assert os.fsencode(value) == b"caf\xe9"
