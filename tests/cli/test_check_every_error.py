"""`check` reports every problem of the task file, each at its own line, through the real
`cronctl` script (#14, item 6); every other command still refuses at the first error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.cfg_helpers import cfg_run, home_with

THREE_TASKS = """\
[tasks.a]
schedule = "0 9 * * *"
command = "true"

[tasks.a.env]
HOME = 1

[tasks.b]
schedule = "@daily"
command = "true"

[tasks.b.notify]
on = ["failure"]
command = "true"
timeout = "0s"

[tasks.c]
schedule = "0 99 * * *"
command = "true"

[tasks.ok]
schedule = "@daily"
command = "true"
"""

ONE_TASK_THREE_KEYS = """\
[tasks.a]
schedule = "@daily"
command = "true"
retries = -1
overlap = "sometimes"
timeout = "soon"
"""

ALL_OVER = """\
[defaults]
retries = "two"

[tasks.a]
schedule = "@daily"
command = "true"
after = ["nosuch"]

[tasks.b]
schedual = "@daily"
command = "true"

[task.c]
x = 1
"""

ENV_AND_NOTIFY = """\
[tasks.a]
schedule = "@daily"
command = "true"

[tasks.a.env]
OK = "1"
"1BAD" = "x"

[tasks.a.notify]
command = "true"
on = ["failure", "sometimes"]
email = "nobody"
"""

CASES = [
    # (id, file, [(line, task, key)] of the errors in order, the valid tasks)
    (
        "three_tasks",
        THREE_TASKS,
        [(6, "a", "env.HOME"), (15, "b", "notify.timeout"), (18, "c", "schedule")],
        ["ok"],
    ),
    (
        "one_task_three_keys",
        ONE_TASK_THREE_KEYS,
        [(4, "a", "retries"), (5, "a", "overlap"), (6, "a", "timeout")],
        [],
    ),
    (
        # The typo of a required key is one error (its hint names the key), not two.
        "defaults_after_typo_top_level",
        ALL_OVER,
        [(2, None, "retries"), (7, "a", "after"), (10, "b", "schedual"), (13, None, "task")],
        [],
    ),
    (
        # Each key of [tasks.a.env] and [tasks.a.notify] at its own line, not the header's.
        "env_and_notify_keys",
        ENV_AND_NOTIFY,
        [(7, "a", "env.1BAD"), (11, "a", "notify.on"), (12, "a", "notify.email")],
        [],
    ),
    ("toml_syntax_is_one_error", "[tasks.a]\nschedule = \n[tasks.b\n", [(2, None, None)], []),
]


@pytest.mark.parametrize(
    ("text", "expected", "valid"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_c6_check_lists_every_error_at_its_line(
    cronctl_exe: list[str], tmp_path: Path, text: str, expected: list, valid: list[str]
) -> None:
    home = home_with(tmp_path, "home", text)
    path = home / "tasks.toml"
    env = {"CRONCTL_HOME": str(home)}
    plain = cfg_run(cronctl_exe, "check", env=env)
    assert plain.returncode == 2, plain.stderr
    assert "Traceback" not in plain.stderr
    errors = [line for line in plain.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(expected), plain.stderr
    for line_text, (line, task, key) in zip(errors, expected, strict=True):
        assert line_text.startswith(f"error: {path}:{line}: "), plain.stderr
        if task is not None:
            assert f"task '{task}'" in line_text
        if key is not None:
            assert f"key '{key}'" in line_text
    others = [line for line in plain.stderr.splitlines() if not line.startswith("error: ")]
    if key is not None or task is not None:  # the file was read: a summary line ends it
        assert others[-1].startswith(f"{path}: invalid, {len(expected)} error")
        assert all(line.startswith("hint: ") for line in others[:-1]), plain.stderr
    else:
        assert all(line.startswith("hint: ") for line in others), plain.stderr

    as_json = cfg_run(cronctl_exe, "check", "--json", env=env)
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert data["valid"] is False and data["valid_tasks"] == valid
    assert [(e["line"], e["task"], e["key"]) for e in data["errors"]] == expected
    for error in data["errors"]:
        assert set(error) == {"file", "line", "task", "key", "message", "hint"}
        assert error["file"] == str(path) and error["message"]


def test_c6_check_of_a_valid_file_and_the_json_of_its_tasks(
    cronctl_exe: list[str], tmp_path: Path
) -> None:
    home = home_with(tmp_path, "home", '[tasks.one]\nschedule = "@daily"\ncommand = "true"\n')
    env = {"CRONCTL_HOME": str(home)}
    plain = cfg_run(cronctl_exe, "check", env=env)
    assert plain.returncode == 0
    assert plain.stderr.strip() == f"{home / 'tasks.toml'}: 1 task, valid."
    data = json.loads(cfg_run(cronctl_exe, "check", "--json", env=env).stdout)
    assert data == {
        "valid": True,
        "file": str(home / "tasks.toml"),
        "tasks": 1,
        "valid_tasks": ["one"],
        "errors": [],
        "warnings": [],
        # A SQLite history: one host, nothing compared (README.md#task-files-that-differ).
        "compared_with": None,
        "divergent": [],
        "comparison_note": None,
    }


@pytest.mark.parametrize(
    "command", [["list"], ["show", "ok"], ["run-now", "ok"], ["export", "--format", "crontab"]]
)
def test_c6_other_commands_refuse_at_the_first_error(
    cronctl_exe: list[str], tmp_path: Path, command: list[str]
) -> None:
    home = home_with(tmp_path, "home", THREE_TASKS)
    done = cfg_run(cronctl_exe, *command, env={"CRONCTL_HOME": str(home)})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) <= 2 and lines[0].startswith(f"error: {home / 'tasks.toml'}:6: ")
    assert all(line.startswith("hint: ") for line in lines[1:])
