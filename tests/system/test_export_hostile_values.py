"""Exported files say only what the task file says (issue 13, h6).

Every value that reaches a line-based format is read back with the format's own rules and
must come back exactly, or the task is not exported with a one-line reason. The readers here
follow the documented rules: a strict unit-file reader (systemd.syntax(7): line continuation,
comments, sections, `key=value`; systemd.service(5) "Command lines"), a crontab splitter
(cron(5): one entry or assignment per line, `%` in the command is a newline unless written
`\\%`), and PyYAML; `systemd-analyze verify` checks the units too, and a real shell runs the
crontab's `cd`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from typing import Any

import pytest

from cronctl import service_unit as service
from cronctl.export import crontab as ct
from cronctl.export import k8s
from cronctl.export import systemd as sd
from cronctl.locations import Locations
from cronctl.model import Task

from .conftest import make_task
from .test_service_unit import systemd_words

HOSTILE = {
    "newline": "a\nExecStartPre=/nonexistent/evil\n* * * * * touch /tmp/pwned",
    "carriage return": "a\rExecStartPre=/nonexistent/evil",
    "percent": "100% %h %n %%",
    "backslash": "a\\b\\",  # ends in a backslash: a unit file's line continuation
    "quotes": 'it\'s "quoted"',
    "dollar": "$HOME ${HOME} $$",
    "prefix -": "-x",
    "prefix @": "@x",
    "prefix :": ":x",
    "prefix +": "+x",
    "prefix !": "!x",
    "semicolon": ";",
    "tab": "a\tb",
}
FIELDS = ["command", "when", "description", "env", "working_dir", "shell"]

# (field, value name) a format cannot carry exactly: the task is left out, with a reason.
SYSTEMD_REFUSES = {
    ("working_dir", "newline"),
    ("working_dir", "carriage return"),
    ("working_dir", "backslash"),
    ("description", "backslash"),
}
CRONTAB_REFUSES = {
    (field, value)
    for field in ("command", "env", "working_dir", "shell")
    for value in ("newline", "carriage return")
} | {("command", "prefix -")}  # cron reads a command's leading '-' as its option (-q)


def hostile_task(field: str, value_name: str) -> Task:
    value = HOSTILE[value_name]
    name = re.sub(r"[^a-z0-9]+", "-", f"{field}-{value_name}")
    keys: dict[str, Any] = {}
    command = "true"
    if field == "command":
        command = value
    elif field == "env":
        keys["env"] = {"V": value}
    elif field == "working_dir":
        keys["working_dir"] = "/srv/" + value
    else:
        keys[field] = value
    return make_task(name, "0 2 * * *", command, **keys)


CASES = [(field, value) for field in FIELDS for value in HOSTILE]
IDS = [f"{field}={value}" for field, value in CASES]


def assert_one_line_reason(skipped, task: Task, field: str) -> None:
    assert [item.task for item in skipped] == [task.name]
    reason = skipped[0].reason
    assert "\n" not in reason and "\r" not in reason
    assert field in reason, reason


# ---------------------------------------------------------------------------------------------
# systemd


def read_unit(text: str) -> list[tuple[str, str, str]]:
    """Return the (section, key, value) settings of a unit file as systemd reads them.

    Lines end at \\n, \\r or NUL; a line ending in an odd number of backslashes continues
    on the next (the backslash becomes a space; comment lines in between are skipped);
    lines starting with `#` or `;` are comments; blanks around keys and values are dropped.
    """
    settings: list[tuple[str, str, str]] = []
    section = None
    pending: str | None = None
    for raw in re.split(r"\r\n|\r|\n|\0", text):
        line = raw
        if pending is not None:
            if line.lstrip()[:1] in ("#", ";"):
                continue
            line, pending = pending + line, None
        if (len(line) - len(line.rstrip("\\"))) % 2:
            pending = line[:-1] + " "
            continue
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            assert stripped.endswith("]"), line
            section = stripped[1:-1]
            continue
        key, equals, value = stripped.partition("=")
        assert equals, f"not a setting: {line!r}"
        settings.append((section, key.strip(), value.strip()))
    assert pending is None, "the file ends in a line continuation"
    return settings


ALLOWED = {
    "Unit": {"Description", "OnSuccess"},
    "Timer": {
        "OnCalendar",
        "OnStartupSec",
        "OnUnitActiveSec",
        "AccuracySec",
        "RandomizedDelaySec",
        "Persistent",
    },
    "Service": {
        "Type",
        "WorkingDirectory",
        "Environment",
        "ExecCondition",
        "ExecStart",
        "TimeoutStartSec",
    },
    "Install": {"WantedBy"},
}
WRAPPER = ["/bin/sh", "-c", 'exec "$0" "$@"']


def plain_value(value: str) -> str:
    """A setting without escapes (Description=, WorkingDirectory=): only `%%` is `%`."""
    assert not re.search(r"%[^%]", value.replace("%%", "")), f"a specifier in {value!r}"
    return value.replace("%%", "%")


def command_of(value: str) -> list[str]:
    words = systemd_words(value, expand_dollar=True)
    assert words[0].startswith("/"), f"the program is not an absolute path: {words[0]!r}"
    return words[3:] if words[:3] == WRAPPER else words


def check_units(task: Task, files: dict[str, str]) -> None:
    timer = read_unit(files[f"cronctl-{task.name}.timer"])
    unit = read_unit(files[f"cronctl-{task.name}.service"])
    for section, key, _ in timer + unit:
        assert key in ALLOWED.get(section or "", set()), (section, key)
    settings: dict[str, list[str]] = {}
    for _, key, value in unit:
        settings.setdefault(key, []).append(value)
    label = " ".join(f"cronctl task {task.name}: {task.description}".split())
    assert [plain_value(v) for v in settings["Description"]] == [
        label if task.description else f"cronctl task {task.name}"
    ]
    assert [command_of(v) for v in settings["ExecStart"]] == [[task.shell, "-c", task.command]]
    conditions = [command_of(v) for v in settings.get("ExecCondition", [])]
    assert conditions == ([[task.shell, "-c", task.when]] if task.when else [])
    environment = [systemd_words(v, expand_dollar=False) for v in settings["Environment"]]
    assert environment == [
        *([f"{k}={v}"] for k, v in task.env.items()),
        [f"CRONCTL_TASK={task.name}"],
    ]
    [folder] = settings["WorkingDirectory"]
    if task.runs_in_home:
        assert folder == "~"
    else:
        assert plain_value(folder) == task.working_dir


def test_h6_systemd_units_read_back_exactly_or_the_task_is_left_out(tmp_path, systemd_analyze):
    """Decided: Exec lines, Environment=, WorkingDirectory= and Description= read back (by
    systemd's rules) as exactly what the task says; no line adds a setting; a program that
    is not a plain absolute path (a `-`, `@`, `:`, `+`, `!` prefix, a bare name, quotes) is
    started through `/bin/sh -c 'exec "$0" "$@"'`. A working_dir with a line break or a
    trailing backslash, and a description ending in a backslash, cannot be written: the task
    is not exported, with a one-line reason. `systemd-analyze verify` accepts every unit.
    Before: working_dir "\\nExecStartPre=..." added a setting, a trailing backslash joined
    the next line, a quoted "-/bin/sh" program was read as the `-` prefix."""
    written = []
    for field, value_name in CASES:
        task = hostile_task(field, value_name)
        result = sd.export([task])
        if (field, value_name) in SYSTEMD_REFUSES:
            assert_one_line_reason(result.skipped, task, field)
            assert result.files == []
            continue
        assert result.skipped == [], (field, value_name, result.skipped)
        files = {item.name: item.text for item in result.files}
        check_units(task, files)
        for name, text in files.items():
            (tmp_path / name).write_text(text)
            written.append(str(tmp_path / name))
    checked = subprocess.run(
        [systemd_analyze, "verify", "--man=no", *written],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""


@pytest.mark.parametrize("prefix", list("-@:+!"))
def test_h6_a_program_with_a_prefix_character_is_what_systemd_runs(
    prefix, tmp_path, systemd_analyze
):
    # The oracle: for a program that does not exist, verify names the path it parsed. A
    # prefix read as a prefix would be dropped from it (or, for `-`, silence the error).
    program = f"{prefix}/nonexistent/shell"
    line = sd.exec_line([program, "-c", "true"])
    unit = tmp_path / "x.service"
    unit.write_text(f"[Service]\nType=oneshot\nExecStart={line}\n")
    assert command_of(line) == [program, "-c", "true"]
    checked = subprocess.run(
        [systemd_analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        check=False,
    )
    assert checked.returncode == 0, checked.stderr  # /bin/sh runs it, as is


@pytest.mark.parametrize("value_name", list(HOSTILE))
def test_h6_the_service_unit_carries_its_paths_exactly(value_name, tmp_path, systemd_analyze):
    """Decided: `cronctl service`'s unit holds the task file's and the database's paths, and
    cronctl's own, exactly whatever characters they have (newlines included: C escapes in
    Environment=, the shell wrapper for the program)."""
    odd = tmp_path / HOSTILE[value_name].replace("/", "_")
    odd.mkdir()
    program = odd / "cronctl"
    program.symlink_to(service.executable()[0])
    files = Locations(odd / "tasks.toml", str(odd / "history.db"))
    text = service.unit_text([str(program)], files)
    settings = read_unit(text)
    [exec_start] = [value for _, key, value in settings if key == "ExecStart"]
    assert command_of(exec_start) == [str(program), "serve"]
    environment = [
        systemd_words(v, expand_dollar=False) for _, k, v in settings if k == "Environment"
    ]
    assert [f"CRONCTL_TASKS={odd}/tasks.toml"] in environment
    assert [f"CRONCTL_DB={odd}/history.db"] in environment
    path = tmp_path / "cronctl.service"
    path.write_text(text)
    checked = subprocess.run(
        [systemd_analyze, "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


# ---------------------------------------------------------------------------------------------
# crontab


def split_crontab(text: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str | None]]]:
    """Return (assignments, entries) of a crontab as cron(5) reads it.

    One line each; blank lines and lines whose first non-blank is `#` are ignored. `NAME =
    value` is an assignment (blanks around both dropped, one pair of matching quotes around
    the value removed). Anything else is an entry: five fields or an `@` macro, then the
    command (which must not start with `-`: cronie and Vixie cron read that as their option
    `-q`) up to the first `%` that is not written `\\%`; the rest, with each further `%` a
    newline, is the job's input. Entries are (schedule, command, input or None).
    """
    assignments, entries = [], []
    for line in text.split("\n"):
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)", stripped)
        if assignment:
            value = assignment.group(2).rstrip(" \t")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            assignments.append((assignment.group(1), value))
            continue
        parts = stripped.split(None, 1 if stripped.startswith("@") else 5)
        schedule, field = " ".join(parts[:-1]), parts[-1]
        assert not field.startswith("-"), f"cron reads {field!r} as its options"
        command, stdin, current, i = [], None, [], 0
        current = command
        while i < len(field):
            if field.startswith("\\%", i):
                current.append("%")
                i += 2
                continue
            if field[i] == "%":
                if stdin is None:
                    stdin, current = [], []
                    stdin = current
                else:
                    current.append("\n")
            else:
                current.append(field[i])
            i += 1
        entries.append((schedule, "".join(command), None if stdin is None else "".join(stdin)))
    return assignments, entries


def test_h6_crontab_reads_back_exactly_or_the_task_is_left_out():
    """Decided: the crontab entry of a task is one line whose command, after cron's `%`
    rule, is exactly `cd DIR && COMMAND` (DIR's `%` escaped too); its SHELL= and env lines
    read back exactly; comments are one line each (descriptions, `when`, the task file's
    path); the only entry is the task's. A command, env value, shell or working_dir with a
    line break is not exported, with a one-line reason. Before: a working_dir "\\n* * * * *
    touch ..." added an entry, its `%` started the job's input, a shell with a newline
    crashed the export with a traceback."""
    for field, value_name in CASES:
        task = hostile_task(field, value_name)
        source = f"/home/ana/{HOSTILE[value_name]}/tasks.toml"
        result = ct.export([task], source=source)
        text = result.files[0].text
        assignments, entries = split_crontab(text)
        if (field, value_name) in CRONTAB_REFUSES:
            assert_one_line_reason(result.skipped, task, field)
            assert entries == [] and assignments == []
            continue
        assert result.skipped == [], (field, value_name, result.skipped)
        assert entries == [("0 2 * * *", expected_command(task), None)], (field, value_name)
        expected = [("CRON_TZ", "UTC")]
        if task.shell != "/bin/sh":
            expected.append(("SHELL", task.shell))
        expected.extend(task.env.items())
        assert assignments == expected, (field, value_name)


def expected_command(task: Task) -> str:
    if task.runs_in_home:
        return task.command
    return f"cd {shlex.quote(task.working_dir)} && {task.command}"


@pytest.mark.parametrize("value_name", [n for n in HOSTILE if "\n" not in HOSTILE[n]])
def test_h6_the_crontab_cd_lands_in_the_folder(value_name, tmp_path):
    """The command field, as cron hands it to the shell, enters exactly the task's folder."""
    folder = tmp_path / HOSTILE[value_name].replace("/", "_").replace("\r", "_")
    folder.mkdir()
    task = make_task("here", "0 2 * * *", "pwd", working_dir=str(folder))
    result = ct.export([task])
    [(_, command, stdin)] = split_crontab(result.files[0].text)[1]
    assert stdin is None
    ran = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, check=True, cwd="/"
    )
    assert ran.stdout == f"{folder}\n"


# ---------------------------------------------------------------------------------------------
# Kubernetes

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed"
)


def test_h6_cronjobs_read_back_exactly():
    """Decided: every value is a double-quoted YAML string with escapes, so PyYAML reads back
    exactly the command, shell, env values, workingDir and description; every document is
    valid against the Kubernetes schema; the comment header is comments only."""
    for field, value_name in CASES:
        task = hostile_task(field, value_name)
        result = k8s.export([task], image="jobs:1")
        assert result.skipped == [], (field, value_name)
        text = result.files[0].text
        header = text.split("---\n", 1)[0]
        assert all(line.startswith("#") for line in header.splitlines())
        [document] = [d for d in yaml.safe_load_all(text) if d is not None]
        kubernetes_validate.validate(document, "1.27.0", strict=True)
        template = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        [container] = template["containers"]
        assert container["command"] == [task.shell, "-c", task.command]
        assert container["env"][:-1] == [{"name": k, "value": v} for k, v in task.env.items()]
        assert container.get("workingDir") == (
            task.working_dir if task.working_dir.startswith("/") else None
        )
        annotations = document["metadata"]["annotations"]
        assert annotations.get("cronctl/description") == (task.description or None)


def test_h6_a_reason_written_into_the_header_stays_one_line():
    """A reason that quotes a value (a skipped task's) is one comment line in each format."""
    task = make_task("multi", "0 0 L * *", "true", description="x\ny")
    text = k8s.export([task], image="jobs:1").files[0].text
    assert [line for line in text.splitlines() if not line.startswith("#")] == []
    crontab = ct.export([task], source="/a\n* * * * * evil").files[0].text
    assert split_crontab(crontab) == ([], [])
