"""#16 item 5 through the real `cronctl`: the day forms in `explain`, `list` (on an 80-column
pseudo-terminal and piped) and `show`, and a mistyped form as one error line, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.cli.test_layout_pty import LIMIT, piped, pty_run

TASKS = """\
[tasks.payroll]
schedule = "0 18 LW * *"
command = "run-payroll"
timezone = "Europe/Berlin"

[tasks.review]
schedule = "30 16 * * FRIL"
command = "monthly-review"
timezone = "Europe/Berlin"

[tasks.invoices]
schedule = "0 9 15W * *"
command = "send-invoices"
timezone = "UTC"

[tasks.close-books]
schedule = "0 7 L-3 * *"
command = "close-books"
timezone = "America/New_York"
"""


@pytest.fixture
def day_forms_home(tmp_path: Path) -> Path:
    (tmp_path / "tasks.toml").write_text(TASKS)
    return tmp_path


def _run(exe: list[str], args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exe, *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CRONCTL_HOME": str(home), "HOME": str(home)},
        timeout=LIMIT,
        stdin=subprocess.DEVNULL,
    )


def test_j5_explain_says_the_form_in_words_with_its_times(cronctl_exe, tmp_path):
    args = [
        "explain",
        "0 18 LW * *",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-01-01",
        "--count",
        "3",
    ]
    out = piped(cronctl_exe, args, tmp_path)
    assert out.splitlines()[:5] == [
        "At 18:00 on the last weekday of the month.",
        "time zone: Europe/Berlin",
        "next:",
        "  2026-01-30T18:00:00+01:00  Fri CET",
        "  2026-02-27T18:00:00+01:00  Fri CET",
    ]


def test_j5_list_at_80_columns_and_piped(cronctl_exe, day_forms_home):
    screen = pty_run(cronctl_exe, ["list"], day_forms_home, 80)
    assert all(cell_len(line) <= 80 for line in screen.splitlines()), screen
    for schedule in ("0 18 LW * *", "30 16 * * FRIL", "0 9 15W * *", "0 7 L-3 * *"):
        assert schedule in screen, screen
    assert "last Fri 16:30" in screen
    rows = piped(cronctl_exe, ["list"], day_forms_home).splitlines()[1:]
    means = {row.split("\t")[0]: row.split("\t")[2] for row in rows}
    assert means == {
        "payroll": "last wkday 18:00",
        "review": "last Fri 16:30",
        "invoices": "wkday near 15th 09:00",
        "close-books": "last day-3 07:00",
    }


def test_j5_show_says_the_schedule_in_words(cronctl_exe, day_forms_home):
    out = piped(cronctl_exe, ["show", "close-books"], day_forms_home)
    assert "means        At 07:00 on the day 3 days before the last day of the month." in out


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            "0 9 * * L5",
            "error: day-of-week field: 'L5' is not valid; the last such weekday is written 5L",
        ),
        ("0 9 1,15W * *", "error: day-of-month field: '1,15W' lists a W item"),
        ("0 9 L-31 * *", "error: day-of-month field: 'L-31' counts 31 days back"),
        (
            "0 9 31W 2 *",
            "error: '0 9 31W 2 *' never fires: day-of-month '31W' selects no day in February",
        ),
        ("0 0 9 LW * ?", "error: '0 0 9 LW * ?' has 6 fields"),
    ],
)
def test_j5_a_mistyped_form_is_one_error_line_exit_2(cronctl_exe, tmp_path, schedule, message):
    done = _run(cronctl_exe, ["explain", schedule], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
