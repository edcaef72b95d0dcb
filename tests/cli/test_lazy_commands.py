"""`main` imports only the module of the command it runs; the map it uses must be the truth."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cronctl.cli import COMMAND_MODULES, MODULES, app, command_name


def registered() -> dict[str, str]:
    found = {}
    for info in app.registered_commands:
        found[info.name or info.callback.__name__] = info.callback.__module__
    for group in app.registered_groups:
        found[group.name] = group.typer_instance.registered_commands[0].callback.__module__
    return found


def test_every_command_is_mapped_to_the_module_that_registers_it():
    actual = {name: module.rsplit(".", 1)[1] for name, module in registered().items()}
    assert actual == COMMAND_MODULES
    assert set(COMMAND_MODULES.values()) == set(MODULES)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["list"], "list"),
        (["--db", "x.db", "--tasks-file", "t.toml", "history", "--failed"], "history"),
        (["--no-color", "run-now", "job"], "run-now"),
        (["--version"], None),
        ([], None),
        (["--db", "list"], None),
    ],
)
def test_command_name(args, name):
    assert command_name(args) == name


def test_list_does_not_import_the_other_commands(cronctl_home):
    code = (
        "import sys; sys.argv = ['cronctl', 'list']\n"
        "from cronctl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('cronctl.cli.', 'cronctl.notify', 'cronctl.serve', 'cronctl.export'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    # cronctl.cli.usage is the parser's edge (global options, usage errors), not a command.
    assert result.stdout.strip().splitlines()[-1] == str(
        ["cronctl.cli.common", "cronctl.cli.complete", "cronctl.cli.tasks", "cronctl.cli.usage"]
    )


LEAN_CODE = (
    "import gc, sys; sys.argv = ['cronctl'] + sys.argv[1:]\n"
    "from cronctl.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print('gc enabled' if gc.isenabled() else 'gc disabled')\n"
    "unused = ('rich.console', 'rich.table', 'platformdirs', 'hashlib', 'json',"
    " 'cronctl.runner.process')\n"
    "print(' '.join(m for m in unused if m in sys.modules))"
)


@pytest.mark.parametrize("words", [["list"], ["status"], ["history", "--failed", "--since", "1h"]])
def test_piped_read_commands_load_only_what_they_use(cronctl_home, words):
    """Plain output needs no Rich console, CRONCTL_HOME no platformdirs, schedules without
    H no OpenSSL, and `status` no process machinery: each was milliseconds of start-up
    (docs/performance.md#targets). The collector, paused while importing, runs again for the
    command."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(
        '[tasks.a]\nschedule = "*/5 * * * *"\ncommand = "true"\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", LEAN_CODE, *words], capture_output=True, text=True, check=True
    )
    *_, gc_line, loaded = result.stdout.splitlines()
    assert gc_line == "gc enabled"
    assert loaded == "", f"{words} loaded {loaded}"
