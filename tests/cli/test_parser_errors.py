"""The argument parser's errors are cronctl's (issue 14, item 5): one `error:` line, at most one
`hint:` line, exit status 2, through the real command line; global options after the command;
the hints for an unquoted schedule and for `add --after` naming no task."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def _run(exe: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


# The words after `cronctl` (split at " "; `_` is a space inside a word) | the error line | the
# hint line. The schedules below stand for what a shell passes when `*` is left unquoted: more
# words, or file names in their place.
PARSER_ERRORS = """
add                                  | error: missing argument 'NAME'                  | hint: see cronctl add --help
add x                                | error: missing argument 'schedule'              | hint: see cronctl add --help
list --bogus                         | error: no such option: --bogus                  | hint: see cronctl list --help
list --jsn                           | error: no such option: --jsn                    | hint: did you mean --json?
--bogus list                         | error: no such option: --bogus                  | hint: see cronctl --help
check extra                          | error: unexpected extra argument(s): extra      | hint: see cronctl check --help
lst                                  | error: no such command 'lst'                    | hint: did you mean 'list'?
service bogus                        | error: no such command 'bogus'                  | hint: see cronctl service --help
service install --bogus              | error: no such option: --bogus                  | hint: see cronctl service install --help
export                               | error: missing option '--format' (one of: crontab, systemd, k8s) | hint: see cronctl export --help
export --format xml                  | error: invalid value for '--format': 'xml' is not one of 'crontab', 'systemd', 'k8s' | hint: see cronctl export --help
explain --count 0 @daily             | error: invalid value for '--count': 0 is not in the range 1<=x<=1000 | hint: see cronctl explain --help
explain --count x @daily             | error: invalid value for '--count': 'x' is not a valid int range | hint: see cronctl explain --help
add x @daily true --description      | error: option '--description' requires an argument | hint: see cronctl add --help
list --db                            | error: option '--db' requires an argument       | hint: see cronctl list --help
add b * * * * * restic backup        | error: add takes NAME SCHEDULE COMMAND and got more words (* * * restic backup)   | hint: quote the schedule and a command with spaces, e.g. cronctl add backup '*/30 * * * *' 'restic backup'
add b notes.txt true                 | error: task 'b', key 'schedule': 'notes.txt' has 1 field; a cron schedule has 5: minute hour day-of-month month day-of-week | hint: quote the schedule so that it is one word: '*/30 * * * *'
explain notes.txt todo.txt           | error: explain takes one schedule and got more words (todo.txt) | hint: quote the schedule so that it is one word, e.g. cronctl explain '*/30 * * * *'
add z @daily true --after nosuchtask | error: task 'z', key 'after': names an unknown task 'nosuchtask'; nothing was written | hint: add 'nosuchtask' first; `cronctl list` shows the tasks
explain 0_0_*_*_FRI-MON              | error: day-of-week field: 'FRI-MON' is a reversed range (5 > 1); ranges do not wrap, so write FRI-SAT,SUN-MON | -
"""  # noqa: E501


def _cases() -> list[tuple[list[str], str, str]]:
    rows = []
    for line in PARSER_ERRORS.strip("\n").splitlines():
        words, error, hint = (part.strip() for part in line.split(" | "))
        rows.append(([w.replace("_", " ") for w in words.split()], error, hint))
    return rows


@pytest.mark.parametrize(("args", "error", "hint"), _cases())
def test_c5_usage_errors_are_one_error_line_and_one_hint(
    cronctl_exe: list[str], tmp_path: Path, args: list[str], error: str, hint: str
) -> None:
    result = _run(cronctl_exe, args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [error] + ([] if hint == "-" else [hint])
    assert "Error:" not in result.stderr and "Usage:" not in result.stderr
    assert not (tmp_path / "cronctl-home" / "tasks.toml").exists()  # nothing was written


def test_c5_no_arguments_still_prints_the_help(cronctl_exe: list[str], tmp_path: Path) -> None:
    result = _run(cronctl_exe, [], tmp_path)
    assert result.returncode == 2 and "Commands:" in result.stderr + result.stdout


# Global options after the command | what shows they took effect
GLOBAL_AFTER = [
    (["list", "--no-color", "--json"], "[]"),
    (["list", "--json", "--tasks-file", "{tmp}/other.toml"], "[]"),
    (["list", "--json", "--tasks-file={tmp}/other.toml"], "[]"),
    (["history", "--json", "--db", "{tmp}/x.db"], "[]"),
    (["check", "--debug", "--tasks-file", "{tmp}/other.toml"], "other.toml: 0 tasks, valid."),
]


@pytest.mark.parametrize(("args", "expected"), GLOBAL_AFTER)
def test_c5_global_options_work_after_the_command(
    cronctl_exe: list[str], tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "other.toml").write_text("")
    words = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = _run(cronctl_exe, words, tmp_path)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout + result.stderr


def test_c5_a_global_option_after_the_command_goes_where_it_says(
    cronctl_exe: list[str], tmp_path: Path
) -> None:
    other = tmp_path / "other.toml"
    result = _run(cronctl_exe, ["add", "x", "@daily", "true", "--tasks-file", str(other)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[tasks.x]" in other.read_text()
    # After `--` every word is the command's: nothing is taken as a global option.
    after = _run(
        cronctl_exe, ["--tasks-file", str(other), "add", "y", "@daily", "--", "--debug"], tmp_path
    )
    assert after.returncode == 0, after.stderr
    assert 'command = "--debug"' in other.read_text()


def test_c5_help_says_global_options_may_follow(cronctl_exe: list[str], tmp_path: Path) -> None:
    assert (
        "Global options may also follow the command"
        in _run(cronctl_exe, ["--help"], tmp_path).stdout
    )
