"""The task file: every key, precise errors, and CLI writes that keep the user's text."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cronctl import model, taskfile
from cronctl.errors import DuplicateTaskError, TaskFileError, UnknownTaskError

from .conftest import DATA

FILES = DATA / "taskfiles"


def parse(text: str) -> taskfile.TaskFile:
    return taskfile.parse_text(textwrap.dedent(text), Path("/tmp/tasks.toml"), default_zone="UTC")


def test_every_key_parses():
    loaded = taskfile.load(FILES / "full.toml")
    backup = loaded.tasks["backup"]
    assert backup.timezone == "America/New_York"
    assert backup.timeout == 1800
    assert backup.retries == 2 and backup.retry_delay == 60
    assert backup.jitter == 300 and backup.keep_runs == 1000
    assert backup.env == {"RESTIC_REPOSITORY": "/srv/restic"}
    assert backup.after == ("extract",)
    assert backup.shell == "/bin/bash"
    assert backup.notify.on == ("failure", "recovery")
    assert backup.notify.format == "slack" and backup.notify.after_failures == 2
    assert backup.notify.timeout == 15
    assert backup.notify.email == ("me@example.org",)
    assert (
        loaded.defaults.smtp.port == 2525 and loaded.defaults.smtp.sender == "cronctl@example.org"
    )
    extract = loaded.tasks["extract"]
    assert extract.timezone == "Europe/Berlin"  # from [defaults]
    assert extract.timeout == 3600
    assert extract.notify.command == "true"  # [defaults.notify]


def test_missing_file_is_an_empty_task_list(tmp_path):
    assert taskfile.load(tmp_path / "none.toml").tasks == {}


def test_machine_zone_is_the_default(monkeypatch):
    # Issue 14, item 1 changed this test: the default was TZ's zone; it is /etc/localtime's.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    loaded = taskfile.parse_text(
        '[tasks.a]\nschedule = "@daily"\ncommand = "true"\n', Path("x.toml")
    )
    assert loaded.tasks["a"].timezone == model.machine_timezone()


def test_retry_delay_doubles_and_is_capped():
    task = parse('[tasks.a]\nschedule = "@daily"\ncommand = "true"\nretry_delay = "20m"\n').tasks[
        "a"
    ]
    assert [task.retry_delay_for(n) for n in (2, 3, 4, 5)] == [1200, 2400, 3600, 3600]


# One line per case: file text, and what the one-line error must say.
BAD = [
    ('[tasks.a]\ncommand = "x"\n', "tasks.toml:1: task 'a', key 'schedule': is required"),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nretires = 2\n',
        "tasks.toml:4: task 'a', key 'retires': unknown key",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\ntimeout = "5 minutes"\n',
        "tasks.toml:4: task 'a', key 'timeout': '5 minutes' is not a duration",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\ntimezone = "Mars/Base"\n',
        "key 'timezone': unknown time zone 'Mars/Base'",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\noverlap = "never"\n',
        "'never' is not one of skip, queue, allow, replace",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\ncatch_up = "most"\n',
        "'most' is not one of skip, once, all",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nretries = -1\n',
        "key 'retries': must be between 0 and 100",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nretries = "2"\n',
        "key 'retries': must be a whole number",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nenabled = "yes"\n',
        "key 'enabled': must be true or false",
    ),
    (  # the key is the variable's, so the line is its own (was key 'env', "A must be ...")
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nenv = { A = 1 }\n',
        "key 'env.A': must be a string, not an integer",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nenv = { "1A" = "x" }\n',
        "not a valid environment variable name",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nafter = ["b"]\n',
        "task 'a', key 'after': names an unknown task 'b'",
    ),
    ('[tasks.a]\nschedule = "@daily"\ncommand = "x"\nafter = ["a"]\n', "cannot run after itself"),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nkeep_runs = 0\n',
        "key 'keep_runs': must be at least 1",
    ),
    ('[tasks.a]\nschedule = "@daily"\ncommand = ""\n', "key 'command': must not be empty"),
    (
        '[tasks."bad name"]\nschedule = "@daily"\ncommand = "x"\n',
        "task 'bad name': invalid task name",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\n[tasks.a.notify]\non = ["boom"]\n',
        "key 'notify.on': 'boom' is not one of failure",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\n[tasks.a.notify]\nwebhook = "ftp://x"\n',
        "is not an http(s) URL",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\n[tasks.a.notify]\nchanels = 1\n',
        "tasks.toml:5: task 'a', key 'notify.chanels': unknown key in notify",
    ),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\n[tasks.a.notify]\nwebhok = "http://x"\n',
        "did you mean 'webhook'?",
    ),
    (  # a notify that is not a table: was a TypeError traceback (exit 1)
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\nnotify = "failure"\n',
        "tasks.toml:4: task 'a', key 'notify': must be a table ([tasks.NAME.notify])",
    ),
    ('[defaults]\nschedule = "@daily"\n', "key 'schedule': unknown key in [defaults]"),
    ('[defaults.smtp]\npassword = "hunter2"\n', "passwords are never stored in the task file"),
    (  # the database's password: libpq's sources only (README.md#more-than-one-machine)
        '[defaults]\ndb = "postgresql://cron:hunter2@db/h"\n',
        "tasks.toml:2: key 'db': passwords are never stored in the task file",
    ),
    ('[defaults]\ndb = "postgresql://db/h?password=x"\n', "passwords are never stored"),
    ('[defaults]\ndb = "mysql://db/h"\n', "key 'db': mysql:// is not supported"),
    ('[defaults]\ndb = ""\n', "key 'db': must not be empty"),
    ("[defaults]\ndb = 3\n", "key 'db': must be a string, not an integer"),
    ('[task.a]\nschedule = "@daily"\n', "did you mean [tasks]?"),
    (
        '[tasks.a]\nschedule = "@daily"\ncommand = "x"\n[tasks.a]\ncommand = "y"\n',
        "tasks.toml:4: invalid TOML",
    ),
    (
        '[tasks.a]\nschedule = "0 0 31 2 *"\ncommand = "x"\n',
        "tasks.toml:2: task 'a', key 'schedule': '0 0 31 2 *'",
    ),
    ('[tasks.a]\nschedule = "@daily"\ncommand = "x\n', "invalid TOML"),
    ("tasks = 3\n", "must be a table of tasks"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_files_get_one_clear_line(text, expected):
    with pytest.raises(TaskFileError) as caught:
        taskfile.parse_text(text, Path("/tmp/tasks.toml"), default_zone="UTC")
    message = str(caught.value)
    assert expected in f"{message} {caught.value.hint}"
    assert "\n" not in message


def test_unknown_key_suggests_the_nearest():
    with pytest.raises(TaskFileError) as caught:
        parse('[tasks.a]\nschedule = "@daily"\ncommand = "x"\nretires = 2\n')
    assert caught.value.hint == "did you mean 'retries'?"


def test_byte_order_mark_is_reported():
    with pytest.raises(TaskFileError, match="byte-order mark"):
        taskfile.load(FILES / "bom.toml")


def test_invalid_utf8_is_reported_with_its_line():
    with pytest.raises(TaskFileError, match=r"latin1.toml:3: is not valid UTF-8"):
        taskfile.load(FILES / "latin1.toml")


def test_a_folder_is_not_a_task_file(tmp_path):
    with pytest.raises(TaskFileError, match="is a folder"):
        taskfile.load(tmp_path)


def test_unknown_task_suggests_names():
    loaded = parse('[tasks.backup]\nschedule = "@daily"\ncommand = "x"\n')
    with pytest.raises(UnknownTaskError) as caught:
        loaded.get("backpu")
    assert caught.value.hint == "did you mean 'backup'?"


# ---------------------------------------------------------------------------------------------
# Writes

USER_FILE = """\
# My tasks. Keep this comment!
[defaults]
timezone = "UTC"   # servers run in UTC

# The nightly backup
[tasks.backup]
schedule = "0 2 * * *"  # 2am
command = "restic backup"

[tasks.backup.notify]
on = ["failure"]
command = "true"

# Reports go out on Mondays
[tasks.report]
schedule = "0 9 * * MON"
command = "make report"
# trailing remark
"""


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "tasks.toml"
    path.write_text(USER_FILE)
    return path


def test_add_appends_and_keeps_every_byte(user_file):
    task, replaced = taskfile.add_task(
        user_file, "sync", {"schedule": "*/5 * * * *", "command": "rsync a b"}
    )
    assert not replaced and task.command == "rsync a b"
    text = user_file.read_text()
    assert text.startswith(USER_FILE)
    assert '[tasks.sync]\nschedule = "*/5 * * * *"\ncommand = "rsync a b"\n' in text


def test_disable_then_enable_edits_one_line(user_file):
    assert taskfile.set_enabled(user_file, ["backup"], False) == ["backup"]
    text = user_file.read_text()
    assert text == USER_FILE.replace("[tasks.backup]\n", "[tasks.backup]\nenabled = false\n")
    assert taskfile.set_enabled(user_file, ["backup"], False) == []
    taskfile.set_enabled(user_file, ["backup"], True)
    assert user_file.read_text() == USER_FILE.replace(
        "[tasks.backup]\n", "[tasks.backup]\nenabled = true\n"
    )


def test_remove_takes_the_task_its_subtables_and_its_comment(user_file):
    taskfile.remove_tasks(user_file, ["backup"])
    text = user_file.read_text()
    assert "backup" not in text and "nightly" not in text
    assert "# My tasks. Keep this comment!" in text
    assert 'timezone = "UTC"   # servers run in UTC' in text
    assert "# Reports go out on Mondays\n[tasks.report]" in text
    assert "# trailing remark" in text
    assert list(taskfile.load(user_file).tasks) == ["report"]


def test_remove_last_task_keeps_other_text(user_file):
    taskfile.remove_tasks(user_file, ["report"])
    loaded = taskfile.load(user_file)
    assert list(loaded.tasks) == ["backup"]
    assert loaded.text.startswith(USER_FILE.split("# Reports")[0].rstrip("\n"))


def test_replace_swaps_only_that_task(user_file):
    with pytest.raises(DuplicateTaskError):
        taskfile.add_task(user_file, "backup", {"schedule": "@daily", "command": "x"})
    taskfile.add_task(
        user_file, "backup", {"schedule": "@daily", "command": "borg create"}, replace=True
    )
    loaded = taskfile.load(user_file)
    assert loaded.tasks["backup"].command == "borg create"
    assert loaded.tasks["backup"].notify is None
    assert "# The nightly backup" in loaded.text and "# Reports go out on Mondays" in loaded.text
    assert list(loaded.tasks) == ["backup", "report"]


def test_invalid_additions_are_never_written(user_file):
    with pytest.raises(TaskFileError, match="unknown time zone"):
        taskfile.add_task(
            user_file, "x", {"schedule": "@daily", "command": "x", "timezone": "Nowhere/Land"}
        )
    with pytest.raises(TaskFileError):
        taskfile.add_task(user_file, "x", {"schedule": "61 * * * *", "command": "x"})
    assert user_file.read_text() == USER_FILE


def test_an_invalid_file_is_never_overwritten(user_file):
    broken = USER_FILE + "[tasks.x\n"
    user_file.write_text(broken)
    with pytest.raises(TaskFileError, match="invalid TOML"):
        taskfile.add_task(user_file, "y", {"schedule": "@daily", "command": "y"})
    assert user_file.read_text() == broken


def test_inline_tasks_are_refused_not_rewritten(tmp_path):
    path = tmp_path / "tasks.toml"
    text = '[tasks]\na = { schedule = "@daily", command = "x" }  # inline\n'
    path.write_text(text)
    with pytest.raises(TaskFileError, match="is not written as a") as caught:
        taskfile.remove_tasks(path, ["a"])
    assert "cronctl edit" in caught.value.hint
    assert path.read_text() == text


def test_names_with_dots_are_quoted(tmp_path):
    path = tmp_path / "tasks.toml"
    taskfile.add_task(path, "db.backup", {"schedule": "@daily", "command": "x"})
    taskfile.add_task(path, "db", {"schedule": "@daily", "command": "y"})
    taskfile.set_enabled(path, ["db.backup"], False)
    loaded = taskfile.load(path)
    assert not loaded.tasks["db.backup"].enabled and loaded.tasks["db"].enabled
    taskfile.remove_tasks(path, ["db.backup"])
    assert list(taskfile.load(path).tasks) == ["db"]


def test_writes_are_private_and_keep_a_symlink(tmp_path):
    real = tmp_path / "dotfiles" / "tasks.toml"
    real.parent.mkdir()
    real.write_text("")
    real.chmod(0o600)
    link = tmp_path / "tasks.toml"
    link.symlink_to(real)
    taskfile.add_task(link, "a", {"schedule": "@daily", "command": "x"})
    assert link.is_symlink()
    assert "[tasks.a]" in real.read_text()
    assert real.stat().st_mode & 0o777 == 0o600


def test_new_file_is_0600_in_0700_folder(tmp_path):
    path = tmp_path / "new" / "tasks.toml"
    taskfile.add_task(path, "a", {"schedule": "@daily", "command": "x"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_remove_refuses_when_another_task_runs_after_it(user_file):
    taskfile.add_task(
        user_file, "after-report", {"schedule": "@daily", "command": "x", "after": ["report"]}
    )
    with pytest.raises(TaskFileError, match="runs after 'report'"):
        taskfile.remove_tasks(user_file, ["report"])
    taskfile.remove_tasks(user_file, ["report", "after-report"])
    assert list(taskfile.load(user_file).tasks) == ["backup"]


def test_a_reread_after_a_write_reuses_only_the_tasks_whose_tables_are_unchanged(tmp_path):
    """`update` reads its own write back with the file as read before (`known`): a task whose
    table and defaults are unchanged is taken as it was (`add` on 10,000 tasks stays under a
    second), and any change is validated again."""
    path = tmp_path / "tasks.toml"
    first = '[tasks.a]\nschedule = "@daily"\ncommand = "true"\n'
    second = '[tasks.b]\nschedule = "@hourly"\ncommand = "true"\n'
    known = taskfile.parse_text(first + second, path, default_zone="UTC")
    again = taskfile.parse_text(first + second, path, default_zone="UTC", known=known)
    assert again.tasks["a"] is known.tasks["a"] and again.tasks["b"] is known.tasks["b"]
    changed = second.replace("@hourly", "61 * * * *")
    with pytest.raises(TaskFileError, match="61 is not in 0-59"):
        taskfile.parse_text(first + changed, path, default_zone="UTC", known=known)
    zoned = '[defaults]\ntimezone = "Asia/Tokyo"\n' + first + second
    moved = taskfile.parse_text(zoned, path, default_zone="UTC", known=known)
    assert moved.tasks["a"] is not known.tasks["a"] and moved.tasks["a"].timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    "setting", ["postgresql://cron@db.example:5432/h", "postgres://db/h?sslmode=require", "h.db"]
)
def test_defaults_may_name_the_database(setting):
    # Read by cronctl.locations before the file loads; the loader only checks it.
    parse(f'[defaults]\ndb = "{setting}"\n[tasks.a]\nschedule = "@daily"\ncommand = "x"\n')
