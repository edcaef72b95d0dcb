"""The man page (and the README) document every command and every long option of the app."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from cronctl.cli import app

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man" / "cronctl.1"
README = ROOT / "README.md"
HELP_OPTIONS = {"--help"}


def command_tree() -> dict[str, list[str]]:
    """Return {command path: its long options}; '' is the program's own (global) options."""
    found: dict[str, list[str]] = {}

    def walk(command, path: str) -> None:
        options = []
        for param in command.params:
            if getattr(param, "param_type_name", "") != "option":
                continue
            for name in [*param.opts, *getattr(param, "secondary_opts", [])]:
                if name.startswith("--") and name not in HELP_OPTIONS:
                    options.append(name)
        subcommands = getattr(command, "commands", {})
        if path and not (subcommands and not options):
            found[path] = options
        elif not path:
            found[""] = options
        for name, sub in subcommands.items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def test_the_tree_is_what_we_think():
    tree = command_tree()
    for path in (
        "add",
        "list",
        "import",
        "export",
        "completion",
        "service install",
        "service status",
    ):
        assert path in tree
    assert (
        "--format" in tree["export"]
        and "--tasks-file" in tree[""]
        and "--no-system" in tree["import"]
    )


# ---------------------------------------------------------------------------------------------
# man(7) source to plain text


_ALTERNATING = {".BI", ".BR", ".IB", ".IR", ".RB", ".RI"}
_ESCAPES = [
    (r"\(aq", "'"),
    (r"\(dq", '"'),
    (r"\(bu", "*"),
    (r"\-", "-"),
    (r"\e", "\\"),
    (r"\&", ""),
    (r"\c", ""),
    (r"\fB", ""),
    (r"\fI", ""),
    (r"\fR", ""),
    (r"\fP", ""),
]


def _macro_args(text: str) -> list[str]:
    return [a if not a.startswith('"') else a[1:-1] for a in re.findall(r'"[^"]*"|\S+', text)]


def roff_line(line: str) -> str:
    if line.startswith('.\\"'):
        return ""
    if line.startswith("."):
        macro, _, rest = line.partition(" ")
        args = _macro_args(rest)
        text = "".join(args) if macro in _ALTERNATING else " ".join(args)
    else:
        text = line
    for escape, plain in _ESCAPES:
        text = text.replace(escape, plain)
    return text


def man_sections() -> dict[str, list[str]]:
    """Return {section name: its roff lines}."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in MAN.read_text(encoding="utf-8").splitlines():
        if line.startswith(".SH "):
            current = roff_line(line)
            sections[current] = []
        else:
            sections.setdefault(current, []).append(line)
    return sections


def command_entries(tree: dict[str, list[str]]) -> dict[str, str]:
    """Return the plain text of each command's entry in COMMANDS (its .TP header to the next)."""
    lines = man_sections()["COMMANDS"]
    paths = sorted((p for p in tree if p), key=len, reverse=True)
    entries: dict[str, list[str]] = {}
    owners: list[str] = []
    for index, line in enumerate(lines):
        if line == ".TP" and index + 1 < len(lines):
            header = roff_line(lines[index + 1]).strip()
            named = []
            for part in re.split(r",\s*", header):
                for path in paths:
                    if part == path or part.startswith(path + " "):
                        named.append(path)
                        break
            if named:
                owners = named
                for path in named:
                    entries.setdefault(path, [])
        if line.startswith(".SS"):
            owners = []
        for owner in owners:
            entries[owner].append(roff_line(line))
    return {path: " ".join(text) for path, text in entries.items()}


def mentions_option(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_man_page_documents_every_command_and_its_options():
    tree = command_tree()
    entries = command_entries(tree)
    missing_commands = [path for path in tree if path and path not in entries]
    assert missing_commands == [], f"commands without an entry in COMMANDS: {missing_commands}"
    missing = [
        f"{path} {option}"
        for path, options in tree.items()
        if path
        for option in options
        if not mentions_option(entries[path], option)
    ]
    assert missing == [], f"options not documented in their command's entry: {missing}"
    global_text = " ".join(roff_line(line) for line in man_sections()["GLOBAL OPTIONS"])
    missing_global = [o for o in tree[""] if not mentions_option(global_text, o)]
    assert missing_global == [], f"global options not documented: {missing_global}"


def test_man_page_has_the_sections_users_read():
    sections = set(man_sections())
    for name in (
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "TASK FILE",
        "SCHEDULES",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ):
        assert name in sections
    see_also = " ".join(roff_line(line) for line in man_sections()["SEE ALSO"])
    assert "crontab(5)" in see_also and "systemd.timer(5)" in see_also


def test_man_page_documents_every_task_key():
    from cronctl.model import NOTIFY_KEYS, SMTP_KEYS, TASK_KEYS

    text = " ".join(roff_line(line) for line in man_sections()["TASK FILE"])
    for key in (*TASK_KEYS, *NOTIFY_KEYS, *SMTP_KEYS):
        assert re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text), key


def test_groff_prints_no_warning():
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    result = subprocess.run(
        [groff, "-man", "-ww", "-z", str(MAN)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stderr == "" and result.stdout == ""


def test_man_page_renders_with_man():
    man = shutil.which("man")
    if man is None:
        pytest.skip("man is not installed")
    result = subprocess.run(
        [man, "-l", str(MAN)],
        capture_output=True,
        text=True,
        check=False,
        env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "MANPAGER": "cat"},
    )
    assert result.returncode == 0, result.stderr
    assert "cronctl export --format" in result.stdout


# ---------------------------------------------------------------------------------------------
# The README (the lead's file): the same promise for the commands and options it lists


def test_readme_documents_every_command_and_long_option():
    text = README.read_text(encoding="utf-8")
    tree = command_tree()
    missing = [path for path in tree if path and not mentions_option(text, path)]
    missing += sorted(
        {
            option
            for options in tree.values()
            for option in options
            if not mentions_option(text, option)
        }
    )
    assert missing == [], f"README.md does not mention: {missing}"


def readme_section(title: str) -> str:
    """Return the text of README's `## title` section, up to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"README.md has no section '## {title}'"
    return found.group(1)


def test_readme_task_file_section_documents_every_key():
    """Every key of the table of task keys (cronctl.model.keys), of a notify table and of
    [defaults.smtp] is in README's task-file section: a `key = ...` line of its example or
    `key` in its text."""
    from cronctl.model import NOTIFY_KEYS, SMTP_KEYS, TASK_KEYS

    section = readme_section("The task file")
    missing = [
        key
        for key in (*TASK_KEYS, *NOTIFY_KEYS, *SMTP_KEYS)
        if not re.search(rf"^\s*{re.escape(key)}\s*=", section, re.M)
        and f"`{key}`" not in section
        and not re.search(rf"^\[tasks\.\w+\.{re.escape(key)}\]", section, re.M)
    ]
    assert missing == [], f"README.md's task-file section does not mention: {missing}"
