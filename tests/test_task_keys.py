"""The table of task keys (cronctl.model.keys) and everything held to it: the Task fields and
defaults, the checks, `add`'s options and their help, `show`'s lines and the task JSON.

A key added to one of them and not to the others fails here. README's task-file section is
checked in tests/system/test_docs.py.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from datetime import UTC, datetime

import pytest
import typer

from cronctl import model, taskfile
from cronctl.errors import TaskFileError
from cronctl.model import TASK_KEY, TASK_KEY_TABLE, TASK_KEYS, CatchUp, Overlap, Task
from cronctl.model.limits import LIMIT_HELP, LIMIT_KEYS, LIMIT_OPTIONS
from cronctl.render import Renderer
from cronctl.shapes import task_json

# Keys without a `show` line of their own, and where they are instead (notify: a line a key
# of its table, notify.on, notify.command, ...).
NOT_ON_THEIR_OWN_SHOW_LINE = {
    "retry_delay": "retries",
    "limits": "limits.*",
    "notify": "notify.*",
}
# Keys that are not part of the task JSON.
NOT_IN_JSON: set[str] = set()


# A task that sets every key to a value that is not its default.
EVERY_KEY = {
    "schedule": "0 2 * * *",
    "command": "restic backup ~/docs",
    "description": "Nightly backup",
    "enabled": False,
    "timezone": "America/New_York",
    "timeout": "30m",
    "retries": 2,
    "retry_delay": "1m",
    "overlap": "queue",
    "catch_up": "once",
    "jitter": "5m",
    "working_dir": "~/backups",
    "shell": "/bin/bash",
    "env": {"RESTIC_REPOSITORY": "/srv/restic"},
    "env_file": ["~/.config/backup.env"],
    "when": "test -s ~/queue/pending",
    "after": ["extract"],
    "keep_runs": 10,
    "lock": ["db"],
    "nice": 10,
    "limits": {"memory": "512M", "cpu": "10m", "open_files": 1024, "processes": 64},
    "notify": {
        "on": ["failure", "recovery"],
        "after_failures": 3,
        "command": "true",
        "webhook": "https://hooks.example.org/x",
        "format": "slack",
        "webhook_secret_env": "HOOK_SECRET",
        "healthchecks": "https://hc-ping.com/uuid",
        "email": ["ops@example.org"],
        "timeout": "30s",
    },
}


def every_key_task() -> Task:
    assert list(EVERY_KEY) == list(TASK_KEYS), "EVERY_KEY must set every key of the table"
    task = model.parse_task("backup", EVERY_KEY, model.Defaults(), "UTC")
    for key in TASK_KEY_TABLE:
        if not key.required:
            assert getattr(task, key.name) != key.default, f"EVERY_KEY leaves {key.name} default"
    return task


def add_parameters() -> dict[str, typer.core.click.Parameter]:
    """Return {option or argument name: its Click parameter} of `cronctl add`."""
    from cronctl.cli import app

    add = typer.main.get_command(app).commands["add"]  # type: ignore[attr-defined]
    found = {}
    for param in add.params:
        if param.param_type_name == "argument":
            found[(param.metavar or param.name).upper()] = param
        else:
            found.update({opt: param for opt in param.opts})
    return found


# ---------------------------------------------------------------------------------------------
# The table and the Task


def test_the_table_lists_the_task_fields_in_order():
    fields = [f.name for f in dataclasses.fields(Task) if f.name != "name"]
    assert list(TASK_KEYS) == fields


@pytest.mark.parametrize("key", TASK_KEY_TABLE, ids=lambda k: k.name)
def test_each_default_is_the_task_field_default(key):
    field = {f.name: f for f in dataclasses.fields(Task)}[key.name]
    if key.required:
        assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        return
    if field.default_factory is not dataclasses.MISSING:
        assert field.default_factory() == key.default
    else:
        assert field.default == key.default


@pytest.mark.parametrize("key", TASK_KEY_TABLE, ids=lambda k: k.name)
def test_each_key_says_what_it_is(key):
    assert key.toml_type and key.help.strip() and key.add_options


def test_only_schedule_and_command_are_required():
    assert model.REQUIRED_KEYS == ("schedule", "command")
    assert model.DEFAULT_KEYS == (*TASK_KEYS[2:], "smtp", "db")


@pytest.mark.parametrize("key", TASK_KEY_TABLE, ids=lambda k: k.name)
def test_each_key_is_checked_with_its_name_in_the_error(key):
    raw = {"schedule": "@daily", "command": "true", key.name: [[1]]}
    with pytest.raises(TaskFileError) as caught:
        model.parse_task("t", raw, model.Defaults(), "UTC")
    assert caught.value.task == "t" and caught.value.key.split(".")[0] == key.name


def test_defaults_take_every_key_but_schedule_and_command():
    defaults = model.parse_defaults({"retries": 2, "overlap": "queue", "shell": "/bin/bash"})
    task = model.parse_task("t", {"schedule": "@daily", "command": "x"}, defaults, "UTC")
    assert (task.retries, task.overlap, task.shell) == (2, "queue", "/bin/bash")
    with pytest.raises(TaskFileError, match="unknown key in"):
        model.parse_defaults({"schedule": "@daily"})


# ---------------------------------------------------------------------------------------------
# Overlap and catch-up are enums whose values are the words of the file


def test_overlap_and_catch_up_are_enums_equal_to_their_words():
    raw = {"schedule": "@daily", "command": "x", "overlap": "replace", "catch_up": "all"}
    task = model.parse_task("t", raw, model.Defaults(), "UTC")
    assert task.overlap is Overlap.REPLACE and task.catch_up is CatchUp.ALL
    assert task.overlap == "replace" and task.catch_up == "all"
    assert f"{task.overlap}" == "replace"
    data = json.loads(json.dumps(task_json(task, None)))
    assert (data["overlap"], data["catch_up"]) == ("replace", "all")
    assert type(task_json(task, None)["overlap"]) is str
    assert Task(name="d", schedule="@daily", command="x").overlap is Overlap.SKIP


def test_an_unknown_policy_names_the_choices():
    raw = {"schedule": "@daily", "command": "x", "overlap": "later"}
    with pytest.raises(TaskFileError, match="'later' is not one of skip, queue, allow, replace"):
        model.parse_task("t", raw, model.Defaults(), "UTC")


# ---------------------------------------------------------------------------------------------
# `add` has an option for every key, with the table's help


@pytest.mark.parametrize("key", TASK_KEY_TABLE, ids=lambda k: k.name)
def test_add_has_the_options_of_each_key(key):
    params = add_parameters()
    for option in key.add_options:
        assert option in params, f"`add` has no {option} for {key.name}"
        assert params[option].help or params[option].param_type_name == "argument"
    first = params[key.add_options[0]]
    if first.param_type_name == "option" and key.show_lines is None:  # a table: one a key
        assert first.help == key.help


def test_add_has_an_option_for_each_limit_with_its_help():
    params = add_parameters()
    for limit, option in zip(LIMIT_KEYS, LIMIT_OPTIONS, strict=True):
        assert params[option].help == LIMIT_HELP[limit]


def test_add_sets_every_key(cli, tasks_path):
    """`add` with every option writes every key, in the table's order."""
    result = cli(
        "add",
        "full",
        "@daily",
        "echo hi",
        *("--description", "d", "--disabled", "--tz", "Asia/Tokyo", "--timeout", "1h"),
        *("--retries", "3", "--retry-delay", "2m", "--overlap", "queue", "--catch-up", "once"),
        *("--jitter", "10s", "--working-dir", "/tmp", "--shell", "/bin/bash", "--env", "A=1"),
        *("--env-file", "/etc/full.env", "--lock", "db", "--nice", "5", "--limit-memory", "1G"),
        *("--limit-cpu", "1m", "--limit-open-files", "100", "--limit-processes", "9"),
        *("--when", "true", "--keep-runs", "50", "--notify-on", "success"),
    )
    assert result.exit_code == 0, result.stderr
    cli("add", "other", "@daily", "true", "--after", "full")
    written = taskfile.load(tasks_path)
    table = tomllib.loads(written.text)["tasks"]
    assert set(table["full"]) == set(TASK_KEYS) - {"after"}
    assert written.tasks["other"].after == ("full",)
    text = taskfile.task_text(written.text, "full")
    keys = [line.split(" = ")[0] for line in text.splitlines() if " = " in line]
    assert keys[:3] == ["schedule", "command", "description"]
    main_keys = [k for k in keys if k in TASK_KEYS]
    assert main_keys == [k for k in TASK_KEYS if k in main_keys]


# ---------------------------------------------------------------------------------------------
# `show` and the task JSON come from the table


def test_show_lists_every_key_in_table_order():
    task = every_key_task()
    lines = Renderer().task_settings(task)
    labels = [label for label, _ in lines]
    expected = ["name"]
    for key in TASK_KEYS:
        if key == "limits":
            expected += [f"limits.{limit}" for limit in LIMIT_KEYS]
        elif key == "notify":
            expected += [f"notify.{notify_key}" for notify_key in model.NOTIFY_KEYS]
        elif key not in NOT_ON_THEIR_OWN_SHOW_LINE:
            expected.append(key)
    assert labels == expected
    without_line = [k.name for k in TASK_KEY_TABLE if k.show is None]
    assert sorted(without_line) == sorted(NOT_ON_THEIR_OWN_SHOW_LINE)
    assert dict(lines)["retries"] == "2 (delay 1m, doubling)"
    assert dict(lines)["enabled"] == "no" and dict(lines)["env"] == "RESTIC_REPOSITORY=/srv/restic"


def test_show_lists_the_optional_keys_only_when_set():
    task = Task(name="t", schedule="@daily", command="x")
    labels = [label for label, _ in Renderer().task_settings(task)]
    assert {"shell", "env", "when", "after"}.isdisjoint(labels)
    assert dict(Renderer().task_settings(task))["timeout"] == "none"


def test_show_names_the_shell_when_it_is_not_the_default():
    default = Task(name="t", schedule="@daily", command="x", shell=model.DEFAULT_SHELL)
    other = dataclasses.replace(default, shell="/bin/dash")
    assert "shell" not in dict(Renderer().task_settings(default))
    assert dict(Renderer().task_settings(other))["shell"] == "/bin/dash"
    assert TASK_KEY["shell"].default == model.DEFAULT_SHELL


def test_the_task_json_holds_every_exported_key():
    task = every_key_task()
    data = task_json(task, datetime(2026, 3, 7, 12, tzinfo=UTC))
    exported = [k.name for k in TASK_KEY_TABLE if k.json is not None]
    assert [k for k in data if k in TASK_KEYS] == exported
    assert sorted(set(TASK_KEYS) - set(exported)) == sorted(NOT_IN_JSON)
    assert list(data)[:7] == ["name", *TASK_KEYS[:5], "next_run"]
    assert data["env"] == {"RESTIC_REPOSITORY": "/srv/restic"} and data["after"] == ["extract"]
    assert json.loads(json.dumps(data)) == data


def test_h2_every_key_of_every_table_has_its_shape():
    """The shape rule (cronctl.model.kinds) knows each key of [tasks.NAME], notify and
    [defaults.smtp]: a key without a shape would let any kind of value reach its check."""
    from cronctl.model import keys
    from cronctl.model.kinds import Shape

    assert all(isinstance(key.shape, Shape) for key in TASK_KEY_TABLE)
    assert list(keys.NOTIFY_SHAPES) == list(model.NOTIFY_KEYS)
    assert list(keys.SMTP_SHAPES) == list(model.SMTP_KEYS)
    assert set(keys.DEFAULTS_TABLE.keys or {}) == set(model.DEFAULT_KEYS)


# ---------------------------------------------------------------------------------------------
# Issue 14, item 9: every setting is visible (`show`, the task JSON) and settable (`add`)


def test_c9_every_key_of_the_task_and_notify_tables_has_an_add_option_a_show_line_and_json():
    from cronctl.model.notify_keys import NOTIFY_KEY_TABLE

    task = every_key_task()
    params = add_parameters()
    labels = [label for label, _ in model.show_lines(task)]
    data = task_json(task, None)
    assert [key.name for key in NOTIFY_KEY_TABLE] == list(model.NOTIFY_KEYS)
    for key in TASK_KEY_TABLE:
        assert key.add_options and all(option in params for option in key.add_options), key.name
        on_its_line = key.name in labels or f"{key.name}." in " ".join(labels)
        assert on_its_line or key.name in NOT_ON_THEIR_OWN_SHOW_LINE, key.name
        assert key.name in data, key.name
    for notify_key in NOTIFY_KEY_TABLE:
        option = params.get(notify_key.add_option)
        assert option is not None, f"`add` has no {notify_key.add_option}"
        assert option.help == notify_key.help
        assert f"notify.{notify_key.name}" in labels, notify_key.name
        assert notify_key.name in data["notify"], notify_key.name
    assert data["notify"]["timeout"] == 30 and data["notify"]["after_failures"] == 3


def test_c9_add_sets_every_notify_key_and_show_and_json_tell_them_never_a_secret(
    cronctl_exe, tasks_path, tmp_path
):
    """Through the real command: `add` with every --notify-* option writes each key of the
    notify table; `show`, `show --json`, `list --json` and `add --json` list them, and the value
    of the secret's variable appears nowhere."""
    import os
    import subprocess

    env = {**os.environ, "HOOK_SECRET": "s3cr3t-value", "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*cronctl_exe, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert "s3cr3t-value" not in done.stdout + done.stderr
        return done

    options = (
        *("--notify-on", "failure", "--notify-on", "recovery", "--notify-after-failures", "3"),
        *("--notify-command", "true", "--notify-webhook", "https://hooks.example.org/x"),
        *("--notify-format", "slack", "--notify-webhook-secret-env", "HOOK_SECRET"),
        *("--notify-healthchecks", "https://hc-ping.com/u", "--notify-email", "ops@example.org"),
        *("--notify-timeout", "30s"),
    )
    added = run("add", "backup", "@daily", "true", *options, "--json")
    assert added.returncode == 0, added.stderr
    written = tomllib.loads(tasks_path.read_text())["tasks"]["backup"]["notify"]
    assert list(written) == list(model.NOTIFY_KEYS)
    expected = {
        "on": ["failure", "recovery"],
        "after_failures": 3,
        "command": "true",
        "webhook": "https://hooks.example.org/x",
        "format": "slack",
        "webhook_secret_env": "HOOK_SECRET",
        "healthchecks": "https://hc-ping.com/u",
        "email": ["ops@example.org"],
        "timeout": 30,
    }
    assert json.loads(added.stdout)["notify"] == expected
    assert json.loads(run("show", "backup", "--json").stdout)["notify"] == expected
    assert json.loads(run("list", "--json").stdout)[0]["notify"] == expected
    shown = run("show", "backup").stdout
    for line in (
        "notify.on                  failure, recovery",
        "notify.after_failures      3 in a row",
        "notify.format              slack",
        "notify.webhook_secret_env  $HOOK_SECRET",
        "notify.timeout             30s",
    ):
        assert line in shown, shown
    run("add", "quiet", "@daily", "true")
    assert json.loads(run("show", "quiet", "--json").stdout)["notify"] is None
    assert "notify" not in run("show", "quiet").stdout


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("Europe/Paris", None),
        ("Europe/Paris", None),  # the second time from the names found valid
        ("Europe/Pariss", "unknown time zone 'Europe/Pariss'"),
        ("", "must not be empty"),
        ("Europe/Paris\x00", "must not contain a NUL character"),
        ("../etc/passwd", "unknown time zone"),
        (3, "must be a string, not int"),
    ],
)
def test_zone_names_are_checked_once_and_refused_every_time(value, error):
    """A zone found valid is remembered (model.checks.zone); nothing else is."""
    if error is None:
        assert model.checks.zone("t", "timezone", value) == value
        return
    for _ in range(2):
        with pytest.raises(TaskFileError, match=error):
            model.checks.zone("t", "timezone", value)


# ---------------------------------------------------------------------------------------------
# A task made from checked values (model.make_task) is the dataclass's task


def dataclass_task(task: Task) -> Task:
    """The same task made by the dataclass's own __init__."""
    return Task(**{f.name: getattr(task, f.name) for f in dataclasses.fields(Task)})


DEFAULTS = model.parse_defaults({"retries": 3, "notify": {"command": "true"}})


@pytest.mark.parametrize(
    ("table", "defaults"),
    [
        (EVERY_KEY, model.Defaults()),
        ({"schedule": "@daily", "command": "true"}, model.Defaults()),
        ({"schedule": "H * * * *", "command": "x", "env": {}}, DEFAULTS),
    ],
    ids=["every key", "two keys", "defaults"],
)
def test_a_parsed_task_is_the_dataclass_task(table, defaults):
    task = model.parse_task("backup", table, defaults, "Europe/Paris")
    made = dataclass_task(task)
    assert task == made and repr(task) == repr(made)
    assert dataclasses.replace(task, retries=5) == dataclasses.replace(made, retries=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.retries = 1  # type: ignore[misc]
    other = model.parse_task("other", table, defaults, "Europe/Paris")
    assert other.env == task.env and (other.env is not task.env or not isinstance(task.env, dict))
    assert task.parsed_schedule() is task.parsed_schedule()


BAD_AFTER_GOOD = [
    # (a valid table, then one of the same keys in the same order, with the error it gives)
    ({"schedule": "@daily", "command": "x"}, {"schedule": 1, "command": "x"}, "must be a string"),
    (
        {"schedule": "@daily", "command": "x", "retries": 1},
        {"schedule": "@daily", "command": "x", "retries": "1"},
        "must be a whole number",
    ),
    (
        {"schedule": "@daily", "command": "x", "timeout": "5m"},
        {"schedule": "@daily", "command": "x", "timeout": [1]},
        "must be a duration",
    ),
    (
        {"schedule": "@daily", "command": "x", "env": {"A": "1"}},
        {"schedule": "@daily", "command": "x", "env": {"A": 1}},
        "must be a string, not an integer",
    ),
    ({"schedule": "@daily", "command": "x"}, {"schedule": "@daily", "command": ""}, "empty"),
]


@pytest.mark.parametrize(("good", "bad", "error"), BAD_AFTER_GOOD)
def test_a_known_key_set_still_has_each_value_checked(monkeypatch, good, bad, error):
    """Keys and shapes are checked once per key set (model.keys._KEY_SETS): a later table of
    the same keys gives the error it gives on its own."""
    monkeypatch.setattr(model.keys, "_KEY_SETS", {})
    with pytest.raises(TaskFileError) as alone:
        model.parse_task("t", bad, model.Defaults(), "UTC")
    model.parse_task("t", good, model.Defaults(), "UTC")
    assert tuple(good) in model.keys._KEY_SETS
    with pytest.raises(TaskFileError) as after:
        model.parse_task("t", bad, model.Defaults(), "UTC")
    assert error in str(after.value)
    assert (str(after.value), after.value.key) == (str(alone.value), alone.value.key)
