"""cli/system.py's choices: the shells and export formats as Typer shows and reads them."""

from __future__ import annotations

import pytest

from cronctl.cli.complete import SHELLS
from cronctl.cli.system import ExportFormat, Shell


def test_the_shell_choice_is_the_list_of_shells_completion_knows():
    assert [shell.value for shell in Shell] == list(SHELLS)


def test_help_lists_the_choices(cli):
    export_help = cli("export", "--help", env={"COLUMNS": "100"}).stdout
    assert "--format <crontab|systemd|k8s>  crontab, systemd or k8s.  [required]" in export_help
    assert "Usage: cronctl completion [OPTIONS] {SHELL}" in cli("completion", "--help").stdout


def test_format_is_required_and_checked(cli):
    missing = cli("export")
    assert missing.exit_code == 2
    # Issue 14, item 5: the parser's errors are one `error:` line and one `hint:` line.
    assert missing.stderr.splitlines() == [
        "error: missing option '--format' (one of: crontab, systemd, k8s)",
        "hint: see cronctl export --help",
    ]
    wrong = cli("export", "--format", "xml")
    assert wrong.exit_code == 2
    assert wrong.stderr.splitlines()[0] == (
        "error: invalid value for '--format': 'xml' is not one of 'crontab', 'systemd', 'k8s'"
    )


@pytest.mark.parametrize("typed", ["k8s", "K8S", "K8s"])
def test_format_is_read_in_any_case(cli, typed):
    result = cli("export", "--format", typed)
    assert result.exit_code == 2 and "--format k8s needs --image IMAGE" in result.stderr
    assert ExportFormat(typed.lower()) is ExportFormat.k8s


@pytest.mark.parametrize("typed", ["FISH", "Fish"])
def test_shell_is_read_in_any_case(cli, typed):
    assert cli("completion", typed).stdout == cli("completion", "fish").stdout
