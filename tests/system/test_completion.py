"""Shell completion: the committed scripts equal the generated ones, and real shells complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cronctl.cli.complete import (
    FILES,
    SHELLS,
    complete_task_names,
    complete_task_names_in,
    completion_script,
)

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_scripts_equal_the_generated_ones(shell):
    committed = (COMPLETIONS / FILES[shell]).read_text(encoding="utf-8")
    assert committed == completion_script(shell), "run: python completions/generate.py"


@pytest.mark.parametrize("shell", SHELLS)
def test_the_completion_command_prints_the_same_script(cli, shell):
    result = cli("completion", shell)
    assert result.exit_code == 0
    assert result.stdout == completion_script(shell)


def test_generator_check_mode():
    result = subprocess.run(
        [sys.executable, str(COMPLETIONS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_unknown_shell_is_a_usage_error(cli):
    result = cli("completion", "tcsh")
    assert result.exit_code == 2


@pytest.fixture
def shell_env(cronctl_exe, tmp_path, cronctl_home):
    """An environment whose PATH finds `cronctl`, with a task file of three tasks."""
    if len(cronctl_exe) != 1:
        pytest.skip("completion needs the installed cronctl console script")
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(
        '[tasks.backup]\nschedule = "0 2 * * *"\ncommand = "b"\n\n'
        '[tasks.boot]\nschedule = "@reboot"\ncommand = "c"\n\n'
        '[tasks.report]\nschedule = "@daily"\ncommand = "r"\n'
    )
    env = dict(os.environ)
    env["PATH"] = str(Path(cronctl_exe[0]).parent) + os.pathsep + env.get("PATH", "")
    env["HOME"] = str(tmp_path)
    return env


def protocol(env, **variables):
    return subprocess.run(
        ["cronctl"], capture_output=True, text=True, env={**env, **variables}, check=False
    )


def test_the_protocol_answers_through_the_console_script(shell_env):
    result = protocol(
        shell_env, _CRONCTL_COMPLETE="complete_bash", COMP_WORDS="cronctl sh", COMP_CWORD="1"
    )
    assert result.returncode == 0 and result.stdout.split() == ["show"]
    result = protocol(
        shell_env, _CRONCTL_COMPLETE="complete_bash", COMP_WORDS="cronctl ex", COMP_CWORD="1"
    )
    assert "export" in result.stdout.split()
    result = protocol(
        shell_env,
        _CRONCTL_COMPLETE="complete_bash",
        COMP_WORDS="cronctl export --format k8s b",
        COMP_CWORD="4",
    )
    assert result.stdout.split() == ["backup", "boot"]
    result = protocol(shell_env, _CRONCTL_COMPLETE="source_bash")
    assert result.stdout.strip() == completion_script("bash").strip()


def test_names_come_from_the_tasks_file_typed_on_the_command_line(shell_env, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text('[tasks.elsewhere]\nschedule = "@daily"\ncommand = "x"\n')
    result = protocol(
        shell_env,
        _CRONCTL_COMPLETE="complete_bash",
        COMP_WORDS=f"cronctl --tasks-file {other} export --format k8s ",
        COMP_CWORD="6",
    )
    assert result.stdout.split() == ["elsewhere"]


def test_bash_completes_commands_choices_and_task_names(shell_env):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = textwrap.dedent(
        f"""
        source {COMPLETIONS / FILES["bash"]}
        ask() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ));
                 _cronctl_completion cronctl;
                 echo "${{COMPREPLY[*]}}"; }}
        ask cronctl expo
        ask cronctl export --format ""
        ask cronctl export --format k8s re
        ask cronctl service ""
        ask cronctl completion ""
        complete -p cronctl
        """
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=shell_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "export",
        "crontab systemd k8s",
        "report",
        "install uninstall status",
        "bash zsh fish",
        "complete -o default -F _cronctl_completion cronctl",
    ]


def test_fish_completes_with_schedules_as_descriptions(shell_env):
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    script = (
        f"source {COMPLETIONS / FILES['fish']}; "
        'complete -C "cronctl expo"; complete -C "cronctl export --format k8s b"'
    )
    result = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True,
        text=True,
        env=shell_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("export\t")
    assert lines[1:] == ["backup\t0 2 * * *", "boot\t@reboot"]


ZPTY = r"""
# Drive an interactive zsh in a pseudo-terminal: type each argument (ending in a TAB), then
# wait until completion has changed the line; finally print the line.
zmodload zsh/zpty
zpty z "zsh -f -i"
zpty -w z 'PS1="> "; fpath=(FPATH $fpath); autoload -Uz compinit; compinit -u -D'
zpty -w z 'dumpbuf() { print -r -- "$BUFFER" > OUTFILE.tmp && mv OUTFILE.tmp OUTFILE }'
zpty -w z 'zle -N dumpbuf; bindkey "^X" dumpbuf; bindkey "^I" complete-word'
typed=""
for keys in "$@"; do
  typed+=${keys%$'\t'}
  zpty -w -n z "$keys"
  for i in {1..100}; do
    rm -f OUTFILE
    zpty -w -n z $'\x18'
    for j in {1..400}; do [[ -e OUTFILE ]] && break; sleep 0.05; done
    [[ -e OUTFILE ]] || continue
    line=$(<OUTFILE)
    [[ $line != "$typed" ]] && break
    sleep 0.1
  done
  typed=$line
done
print -r -- "$typed"
zpty -d z
"""


def test_zsh_completes_from_fpath_on_the_first_tab(shell_env, tmp_path):
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed")
    fpath = tmp_path / "site-functions"
    fpath.mkdir()
    shutil.copy(COMPLETIONS / FILES["zsh"], fpath / "_cronctl")
    probe = tmp_path / "probe.zsh"
    probe.write_text(ZPTY.replace("FPATH", str(fpath)).replace("OUTFILE", str(tmp_path / "buffer")))
    # The first TAB autoloads _cronctl and must already complete (Typer's own script does not).
    result = subprocess.run(
        ["zsh", "-f", str(probe), "cronctl expo\t", "--format k8s re\t"],
        capture_output=True,
        text=True,
        env=shell_env,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "cronctl export --format k8s report", result.stderr


def test_zsh_script_sourced_registers_itself(shell_env):
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed")
    script = (
        "autoload -Uz compinit; compinit -u -D; "
        f"source {COMPLETIONS / FILES['zsh']}; print -r -- $_comps[cronctl]"
    )
    result = subprocess.run(
        ["zsh", "-f", "-c", script], capture_output=True, text=True, env=shell_env, check=False
    )
    assert result.stdout.strip() == "_cronctl_completion", result.stderr


# ---------------------------------------------------------------------------------------------
# Task names, read fast and quietly


def test_task_names_from_the_task_file(cronctl_home, monkeypatch, tmp_path):
    assert complete_task_names("") == []  # no file: nothing, no error
    cronctl_home.mkdir(parents=True)
    (cronctl_home / "tasks.toml").write_text(
        '[defaults]\ntimezone = "UTC"\n[tasks.backup]\nschedule = "x"\n'
        '[tasks.beta]\n[tasks.alpha]\ncommand = "y"\n'
    )
    assert complete_task_names("") == ["alpha", "backup", "beta"]  # no validation: names only
    assert complete_task_names("b") == ["backup", "beta"]
    other = tmp_path / "other.toml"
    other.write_text('[tasks.only]\nschedule = "@daily"\n')
    monkeypatch.setenv("CRONCTL_TASKS", str(other))
    assert complete_task_names("") == ["only"]
    other.write_text("not toml [")
    assert complete_task_names("") == []
    other.write_bytes(b"\xff\xfe")
    assert complete_task_names("") == []
    other.write_text("tasks = 5\n")
    assert complete_task_names("") == []


def test_task_names_with_schedules_honour_a_typed_tasks_file(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[tasks.x]\nschedule = "@daily"\n[tasks.y]\nschedule = 5\n')

    class Root:
        params = {"tasks_file": path}

        def find_root(self):
            return self

    assert complete_task_names_in(Root(), "") == [("x", "@daily"), ("y", "")]
    assert complete_task_names_in(None, "zzz") == []


def test_reading_names_imports_no_schedule_engine_and_no_database(shell_env):
    code = (
        "import sys; from cronctl.cli.complete import complete_task_names;"
        "before = set(sys.modules); complete_task_names('');"
        "print(sorted(m for m in set(sys.modules) - before"
        " if m.startswith(('croniter', 'cronctl.schedule', 'sqlite3', 'cronctl.store'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=shell_env, check=False
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_h19_completion_offers_only_names_check_accepts(shell_env, tmp_path, cronctl_exe):
    """Also seen in #13: names `check` refuses (a `;`, a newline, a leading dot) were offered,
    and a TAB completed to a name no command takes. Only valid task names are offered now."""
    other = tmp_path / "odd.toml"
    other.write_text(
        '[tasks."bad;name"]\nschedule = "@daily"\ncommand = "x"\n'
        '[tasks."bad\\nline"]\nschedule = "@daily"\ncommand = "x"\n'
        '[tasks.".hidden"]\nschedule = "@daily"\ncommand = "x"\n'
        '[tasks.bare]\nschedule = "@daily"\ncommand = "x"\n'
    )
    check = subprocess.run(
        [*cronctl_exe, "--tasks-file", str(other), "check"],
        capture_output=True,
        text=True,
        env=shell_env,
        check=False,
    )
    assert check.returncode == 2 and "invalid task name" in check.stderr
    result = protocol(
        shell_env,
        _CRONCTL_COMPLETE="complete_bash",
        COMP_WORDS=f"cronctl --tasks-file {other} show ",
        COMP_CWORD="4",
    )
    assert result.returncode == 0 and result.stdout.split() == ["bare"]
    result = protocol(
        shell_env,
        _CRONCTL_COMPLETE="complete_bash",
        COMP_WORDS=f"cronctl --tasks-file {other} show b",
        COMP_CWORD="4",
    )
    assert result.stdout.split() == ["bare"]
