"""#16 item 5: the day forms in exports. systemd's OnCalendar expresses `L-n` (up to `~28`),
`LW`, `nW` up to the 27th and `DOWL` exactly: each mapping is checked with the real
`systemd-analyze calendar --iterations=N` against cronctl's own next times. crontab (Vixie
cron) and Kubernetes CronJobs (robfig/cron) have none of them: such a task is left out, with
one line saying which form and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from cronctl.export import NotExportable, k8s, vixie_fields
from cronctl.export import systemd as sd
from cronctl.schedule import Schedule

from .conftest import make_task
from .test_export_crontab import exported
from .test_export_systemd import cronctl_times, systemd_times

# (schedule, zone, start, iterations): 24 months or more of each form, across clock changes
# where the time of day is outside the changes' hours (then the two agree; the hours inside
# them are test_export_systemd's DST cases).
EQUIVALENT = [
    ("0 9 LW * *", "Europe/Berlin", "2025-01-01 00:00:17", 24),
    ("30 17 LW 2,5 *", "America/New_York", "2025-01-01 00:00:17", 12),
    ("0 9 * * 5L", "Europe/Berlin", "2025-01-01 00:00:17", 24),
    ("0 9 * * SUNL,1L", "UTC", "2025-01-01 00:00:17", 24),
    ("0 9 1W * *", "UTC", "2025-01-01 00:00:17", 36),
    ("0 9 15W * *", "Asia/Tokyo", "2025-01-01 00:00:17", 36),
    ("0 9 27W * *", "UTC", "2025-01-01 00:00:17", 36),
    ("0 23 L-3 * *", "Australia/Sydney", "2025-01-01 00:00:17", 24),
    ("0 6 L-27 * *", "UTC", "2025-01-01 00:00:17", 40),
    ("0 6 1,L-1 * *", "UTC", "2025-01-01 00:00:17", 24),
    ("0 0 25-L * *", "UTC", "2025-01-01 00:00:17", 30),
    ("0 0 2-L/10 * *", "UTC", "2025-01-01 00:00:17", 30),
    # OR of two restricted day fields; AND when one starts with '*'.
    ("0 9 15W * 5L", "UTC", "2025-01-01 00:00:17", 36),
    ("0 9 LW * MON", "UTC", "2025-01-01 00:00:17", 30),
    ("0 9 LW * */2", "UTC", "2025-01-01 00:00:17", 12),
    ("0 9 1W * */2", "UTC", "2025-01-01 00:00:17", 12),
    ("0 9 * * 5L", "UTC", "2028-01-01 00:00:17", 14),
]


@pytest.mark.parametrize(("expression", "zone", "start", "count"), EQUIVALENT)
def test_j5_oncalendar_fires_when_cronctl_does(systemd_analyze, expression, zone, start, count):
    schedule = Schedule.parse(expression, timezone=zone)
    specs = sd.calendar_specs(schedule)
    after = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert systemd_times(systemd_analyze, specs, after, count) == cronctl_times(
        schedule, after, count
    )


def test_j5_the_oncalendar_lines_of_each_form():
    def specs(expression: str) -> list[str]:
        return [s.removesuffix(" UTC") for s in sd.calendar_specs(Schedule.parse(expression))]

    assert specs("0 9 L-3 * *") == ["*-*~04 09:00:00"]
    assert specs("0 9 * * 5L") == ["Fri *-*~07/1 09:00:00"]
    assert specs("0 9 LW * *") == ["Mon..Fri *-*~01 09:00:00", "Fri *-*~02,03 09:00:00"]
    assert specs("0 9 15W 6 *") == [
        "Mon..Fri *-06-15 09:00:00",
        "Fri *-06-14 09:00:00",
        "Mon *-06-16 09:00:00",
    ]
    assert specs("0 9 1W * *") == ["Mon..Fri *-*-01 09:00:00", "Mon *-*-02,03 09:00:00"]
    assert specs("0 0 25-L * *") == ["*-*-25..31 00:00:00"]


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("0 9 L-28 * *", "'~' counts at most 28 days from the end"),
        ("0 9 28W * *", "depends on the month's length"),
        ("0 9 31W * *", "depends on the month's length"),
        ("0 9 L-2W * *", "'L-2W'"),
        ("0 9 */2 * 5L", "day-of-month '*/2' together with day-of-week '5L'"),
    ],
)
def test_j5_forms_oncalendar_cannot_express_are_refused_with_the_reason(expression, why):
    with pytest.raises(NotExportable, match=re.escape(why)):
        sd.calendar_specs(Schedule.parse(expression))


FORMS = [
    ("0 9 L-3 * *", "'L-n' (n days before the last day of the month)"),
    ("0 9 LW * *", "'LW' (last weekday of the month)"),
    ("0 9 L-2W * *", "'L-nW' (weekday nearest n days before the last day of the month)"),
    ("0 9 15W * *", "'nW' (weekday nearest day n of the month)"),
    ("0 9 * * 5L", "'DOWL' (last given weekday of the month)"),
]


@pytest.mark.parametrize(("expression", "form"), FORMS)
def test_j5_crontab_and_cronjob_leave_the_task_out_with_the_form(expression, form):
    task = make_task("monthend", expression, "x")
    result, text = exported([task])
    assert [(s.task, s.reason) for s in result.skipped] == [
        ("monthend", f"{form} is not crontab syntax")
    ]
    assert f"# not exported: task monthend: {form} is not crontab syntax" in text
    documents, skipped = k8s.cronjobs([task], image="i")
    assert documents == []
    assert [s.reason for s in skipped] == [f"{form} is not supported by CronJob schedules"]


def test_j5_a_range_to_the_last_day_is_exported_as_31():
    assert vixie_fields(Schedule.parse("0 0 25-L * *")) == ("0", "0", "25-31", "*", "*")
    assert vixie_fields(Schedule.parse("0 0 1-l/8 * *")) == ("0", "0", "1-31/8", "*", "*")
    documents, _ = k8s.cronjobs([make_task("t", "0 0 25-L * *", "x")], image="i")
    assert documents[0]["spec"]["schedule"] == "0 0 25-31 * *"


def test_j5_export_cli_says_which_task_is_left_out_and_why(cli):
    cli("add", "payroll", "0 9 LW * *", "run-payroll", "--timezone", "UTC")
    cli("add", "nightly", "0 2 * * *", "backup", "--timezone", "UTC")
    crontab = cli("export", "--format", "crontab")
    assert crontab.exit_code == 1
    assert "0 2 * * * backup" in crontab.stdout and "run-payroll" not in crontab.stdout
    assert "payroll" in crontab.stderr and "'LW' (last weekday of the month)" in crontab.stderr
    units = cli("export", "--format", "systemd")
    assert units.exit_code == 0, units.stderr
    assert "OnCalendar=Mon..Fri *-*~01 09:00:00 UTC" in units.stdout
    assert "OnCalendar=Fri *-*~02,03 09:00:00 UTC" in units.stdout
