"""The task commands through the real Typer app, each test in its own CRONCTL_HOME."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC
from pathlib import Path

from cronctl import taskfile

USER_FILE = """\
# my tasks
[tasks.backup]
schedule = "0 2 * * *"   # nightly
command = "restic backup"

# weekly
[tasks.report]
schedule = "0 9 * * MON"
command = "make report"
"""


def test_add_prints_the_task_and_three_next_times(cli, tasks_path):
    result = cli(
        "add", "backup", "0 2 * * *", "restic backup", "--tz", "America/New_York", "--retries", "2"
    )
    assert result.exit_code == 0, result.stderr
    assert "Added task 'backup'" in result.stderr
    assert "America/New_York" in result.stdout
    # Piped: ISO 8601 to the second with the offset (EST here), no relative time (#14, item 4).
    assert result.stdout.count("T02:00:00-05:00\n") == 3
    loaded = taskfile.load(tasks_path)
    assert loaded.tasks["backup"].retries == 2
    assert stat.S_IMODE(tasks_path.stat().st_mode) == 0o600


def test_add_json(cli):
    result = cli(
        "add",
        "sync",
        "*/15 * * * *",
        "rsync a b",
        "--json",
        "--env",
        "A=1",
        "--after",
        "sync2",
        "--replace",
    )
    assert result.exit_code == 2  # sync2 does not exist
    assert "names an unknown task 'sync2'" in result.stderr
    result = cli(
        "add", "sync", "*/15 * * * *", "rsync a b", "--json", "--env", "A=1", "--timeout", "5m"
    )
    data = json.loads(result.stdout)
    assert data["name"] == "sync" and data["env"] == {"A": "1"} and data["timeout"] == 300
    assert len(data["next"]) == 3 and data["next_run"] == data["next"][0]


def test_add_every_option(cli, tasks_path):
    args = [
        "add",
        "full",
        "@daily",
        "echo hi",
        "--description",
        "everything",
        "--disabled",
        "--timezone",
        "Europe/Berlin",
        "--timeout",
        "1h",
        "--retries",
        "3",
        "--retry-delay",
        "2m",
        "--overlap",
        "queue",
        "--catch-up",
        "once",
        "--jitter",
        "5m",
        "--working-dir",
        "/tmp",
        "--shell",
        "/bin/bash",
        "--env",
        "X=y",
        "--when",
        "true",
        "--keep-runs",
        "10",
        "--notify-on",
        "failure",
        "--notify-on",
        "recovery",
        "--notify-command",
        "true",
        "--notify-webhook",
        "http://127.0.0.1:9/x",
        "--notify-healthchecks",
        "http://127.0.0.1:9/ping",
        "--notify-email",
        "me@example.org",
    ]
    assert cli(*args).exit_code == 0
    task = taskfile.load(tasks_path).tasks["full"]
    assert (task.enabled, task.timezone, task.timeout, task.retries, task.retry_delay) == (
        False,
        "Europe/Berlin",
        3600,
        3,
        120,
    )
    assert (task.overlap, task.catch_up, task.jitter, task.working_dir, task.shell) == (
        "queue",
        "once",
        300,
        "/tmp",
        "/bin/bash",
    )
    assert task.env == {"X": "y"} and task.when == "true" and task.keep_runs == 10
    assert task.notify.on == ("failure", "recovery") and task.notify.email == ("me@example.org",)


def test_duplicate_needs_replace(cli):
    cli("add", "a", "@daily", "true")
    result = cli("add", "a", "@hourly", "true")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: a task named 'a' already exists")
    assert "--replace" in result.stderr
    assert cli("add", "a", "@hourly", "true", "--replace").exit_code == 0


BAD_ADDS = [
    (["bad name", "@daily", "true"], "invalid task name 'bad name'"),
    (["a", "@daily", "true", "--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
    (["a", "@daily", "true", "--timeout", "soon"], "'soon' is not a duration"),
    (["a", "0 0 31 2 *", "true"], "key 'schedule'"),
    (["a", "61 * * * *", "true"], "key 'schedule'"),
    (["a", "@daily", "true", "--env", "NOEQUALS"], "is not KEY=VALUE"),
    (
        ["a", "@daily", "true", "--overlap", "sometimes"],
        "'sometimes' is not one of skip, queue, allow, replace",
    ),
]


def test_bad_adds_are_one_line_and_write_nothing(cli, tasks_path):
    for args, expected in BAD_ADDS:
        result = cli("add", *args)
        assert result.exit_code == 2, args
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert not tasks_path.exists()


def test_comments_survive_add_disable_remove(cli, tasks_path):
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(USER_FILE)
    assert cli("add", "sync", "@hourly", "rsync").exit_code == 0
    assert cli("disable", "report").exit_code == 0
    assert cli("remove", "sync").exit_code == 0
    assert tasks_path.read_text() == USER_FILE.replace(
        "[tasks.report]\n", "[tasks.report]\nenabled = false\n"
    )
    assert cli("enable", "report").exit_code == 0
    assert "enabled = true" in tasks_path.read_text()


def test_enable_disable_unknown_task(cli, tasks_path):
    cli("add", "backup", "@daily", "true")
    result = cli("disable", "backpu")
    assert result.exit_code == 2
    assert "no task named 'backpu'" in result.stderr and "did you mean 'backup'?" in result.stderr


def test_remove_purge_drops_history(cli):
    from datetime import datetime

    from cronctl.store import HistoryStore

    cli("add", "a", "@daily", "true")
    db = Path(os.environ["CRONCTL_HOME"]) / "history.db"
    with HistoryStore(db) as store:
        store.start_run("a", "manual", started_at=datetime.now(UTC))
    assert cli("remove", "a").exit_code == 0
    with HistoryStore(db) as store:
        assert len(store.runs("a")) == 1
    cli("add", "a", "@daily", "true")
    result = cli("remove", "a", "--purge")
    assert result.exit_code == 0 and "1 run of history" in result.stderr
    with HistoryStore(db) as store:
        assert store.runs("a") == []


def test_list_plain_when_piped_and_json(cli):
    assert cli("list").stdout.splitlines() == [
        "name\tschedule\tmeans\tzone\tnext_run\tlast_run\tsuccess\tenabled\tlast_status"
    ]
    cli("add", "backup", "0 2 * * *", "restic backup")
    cli("add", "off", "@hourly", "true", "--disabled")
    result = cli("list")
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == [
        "name",
        "schedule",
        "means",
        "zone",
        "next_run",
        "last_run",
        "success",
        "enabled",
        "last_status",
    ]
    # #14, item 4: piped times are ISO 8601 to the second; a disabled task has no next run.
    assert lines[1].split("\t")[0] == "backup" and lines[1].split("\t")[4].endswith(
        "T02:00:00+00:00"
    )
    assert lines[2].split("\t")[4] == "-" and lines[2].split("\t")[7] == "no"
    assert "\x1b" not in result.stdout
    data = json.loads(cli("list", "--json").stdout)
    assert [t["name"] for t in data] == ["backup", "off"]
    for key in (
        "name",
        "schedule",
        "command",
        "enabled",
        "timezone",
        "next_run",
        "last_run",
        "success_rate",
    ):
        assert key in data[0]
    assert data[1]["next_run"] is None


def test_show(cli):
    cli("add", "backup", "0 2 * * *", "restic backup", "--tz", "Europe/London")
    result = cli("show", "backup")
    assert result.exit_code == 0
    upcoming = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("  20") and line.endswith("T02:00:00+00:00")  # GMT, piped: ISO
    ]
    assert "restic backup" in result.stdout and len(upcoming) == 5
    data = json.loads(cli("show", "backup", "--json").stdout)
    assert len(data["next"]) == 5 and data["runs"] == [] and data["timezone"] == "Europe/London"
    assert cli("show", "nope").exit_code == 2


def test_check_valid_invalid_and_warnings(cli, tasks_path):
    result = cli("check")
    assert result.exit_code == 0
    for index in range(6):
        cli("add", f"t{index}", "0 3 * * *", "true")
    cli("add", "a", "@daily", "true")
    tasks_path.write_text(
        tasks_path.read_text() + '\n[tasks.b]\nschedule = "@daily"\ncommand = "x"\nafter = ["a"]\n'
    )
    text = tasks_path.read_text().replace("[tasks.a]\n", '[tasks.a]\nafter = ["b"]\n')
    tasks_path.write_text(text)
    result = cli("check")
    assert result.exit_code == 0
    assert "6 tasks fire at 03:00 UTC" in result.stderr and "H" in result.stderr
    assert "cycle" in result.stderr
    data = json.loads(cli("check", "--json").stdout)
    assert data["valid"] and len(data["warnings"]) == 2
    tasks_path.write_text('[tasks.x]\nschedule = 5\ncommand = "x"\n')
    result = cli("check")
    assert result.exit_code == 2
    assert (
        result.stderr.startswith("error: ")
        and "tasks.toml:2: task 'x', key 'schedule': must be a string" in result.stderr
    )
    assert json.loads(cli("check", "--json").stdout)["valid"] is False


def test_broken_task_file_is_one_line_everywhere(cli, tasks_path):
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_bytes(b"[tasks.a\n")
    for command in (["list"], ["show", "a"], ["add", "b", "@daily", "true"], ["check"]):
        result = cli(*command)
        assert result.exit_code == 2, command
        assert "invalid TOML" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert tasks_path.read_bytes() == b"[tasks.a\n"


def test_database_that_is_not_sqlite(cli, cronctl_home):
    cli("add", "a", "@daily", "true")
    (cronctl_home / "history.db").write_bytes(b"hello" * 1000)
    result = cli("list")
    assert result.exit_code == 2  # no SQLite header: refused as input, never "damaged" (h9)
    assert "is not a cronctl history database" in result.stderr


def test_global_options(cli, tmp_path):
    other = tmp_path / "elsewhere.toml"
    result = cli(
        "--tasks-file", str(other), "--db", str(tmp_path / "h.db"), "add", "x", "@daily", "true"
    )
    assert result.exit_code == 0 and other.exists()
    assert "cronctl 0.1.0" in cli("--version").stdout
    assert cli("--no-color", "list").exit_code == 0


def test_edit_saves_valid_changes(cli, tasks_path, tmp_path):
    cli("add", "a", "@daily", "true")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/@daily/@hourly/' \"$1\"\n")
    editor.chmod(0o755)
    result = cli("edit", env={"EDITOR": str(editor)})
    assert result.exit_code == 0, result.stderr
    assert taskfile.load(tasks_path).tasks["a"].schedule == "@hourly"


def test_edit_one_task(cli, tasks_path, tmp_path):
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(USER_FILE)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/restic backup/borg create/' \"$1\"\n")
    editor.chmod(0o755)
    assert cli("edit", "backup", env={"VISUAL": str(editor)}).exit_code == 0
    assert tasks_path.read_text() == USER_FILE.replace("restic backup", "borg create")


def test_edit_never_saves_an_invalid_file(cli, tasks_path, tmp_path):
    cli("add", "a", "@daily", "true")
    before = tasks_path.read_text()
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\necho 'retires = 3' >> \"$1\"\n")
    editor.chmod(0o755)
    result = cli("edit", env={"EDITOR": str(editor)})
    assert result.exit_code == 2
    assert "did you mean 'retries'?" in result.stderr and "not saved" in result.stderr
    assert tasks_path.read_text() == before
    kept = Path(result.stderr.split("your edit is kept in ", 1)[1].strip())
    assert kept.read_text() == before + "retires = 3\n"
    kept.unlink()


def test_fifty_concurrent_adds_leave_fifty_tasks(tasks_path, cronctl_exe):
    env = {**os.environ}
    procs = [
        subprocess.Popen(
            [*cronctl_exe, "add", f"task{i}", "@daily", f"echo {i}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(50)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 50, errors
    assert len(taskfile.load(tasks_path).tasks) == 50


def test_python_m_cronctl(cronctl_home):
    result = subprocess.run(
        [sys.executable, "-m", "cronctl", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("cronctl ")


def test_task_names_complete_for_every_name_argument(cli, cronctl_exe):
    cli("add", "backup", "@daily", "true")
    cli("add", "backlog", "@daily", "true")
    cli("add", "report", "@daily", "true")
    for words, cword in [
        ("cronctl run-now bac", 2),
        ("cronctl show bac", 2),
        ("cronctl disable report bac", 3),
        ("cronctl remove bac", 2),
        ("cronctl logs bac", 2),
        ("cronctl history bac", 2),
        ("cronctl edit bac", 2),
        ("cronctl notify-test bac", 2),
        ("cronctl enable bac", 2),
    ]:
        env = {
            **os.environ,
            "_CRONCTL_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
        result = subprocess.run(cronctl_exe, env=env, capture_output=True, text=True)
        assert result.stdout.split() == ["backlog", "backup"], words
