"""`export --format systemd`: units that systemd-analyze accepts, with the same fire times."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from cronctl.export import NotExportable
from cronctl.export import systemd as sd
from cronctl.schedule import Schedule

from .conftest import assert_systemd_accepts, make_task

_ELAPSE = re.compile(
    r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$", re.M
)


def systemd_times(analyze: str, specs: list[str], after: datetime, count: int) -> list[datetime]:
    """Return the first `count` elapses after `after` of any of `specs`, per systemd-analyze."""
    base = f"@{int(after.timestamp())}"
    result = subprocess.run(
        [analyze, "calendar", f"--iterations={count}", f"--base-time={base}", *specs],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    times = {
        datetime.strptime(m, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        for m in _ELAPSE.findall(result.stdout)
    }
    return sorted(times)[:count]


def cronctl_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    return [t.astimezone(UTC) for t in schedule.upcoming(after, count)]


# (schedule, zone, start of a window without daylight-saving changes in it, iterations)
EQUIVALENT = [
    ("0 2 * * *", "America/New_York", "2025-01-10 12:00:17", 10),
    ("*/15 * * * *", "Europe/Berlin", "2025-06-10 12:00:17", 12),
    ("30 4 1,15 * FRI", "Europe/Berlin", "2025-04-01 00:00:17", 12),
    ("0 0 */2 * MON", "UTC", "2025-01-01 00:00:17", 8),
    ("0 23 L * *", "Asia/Tokyo", "2025-01-01 00:00:17", 14),
    ("15 10 L,15 * *", "Asia/Tokyo", "2025-01-01 00:00:17", 14),
    ("0 9 * * FRI#1", "Europe/London", "2025-01-01 00:00:17", 10),
    ("0 9 1 * FRI#1", "Europe/London", "2025-04-01 00:00:17", 10),
    ("0 8 * * MON,FRI#2", "UTC", "2025-01-01 00:00:17", 12),
    ("0 8 1-7 * MON", "America/Chicago", "2025-04-01 00:00:17", 12),
    ("5-55/10 * * * *", "UTC", "2025-01-01 00:00:17", 15),
    ("0 6 * JAN,JUL MON-FRI", "Australia/Sydney", "2025-01-01 00:00:17", 12),
    ("0 12 * * 5-7", "Asia/Kolkata", "2025-01-01 00:00:17", 9),
    ("*/20 9-17 * * 1-5", "Asia/Kolkata", "2025-01-03 00:00:17", 30),
    ("0 0 29 2 *", "UTC", "2025-01-01 00:00:17", 3),
    ("0 0 1 */3 *", "Pacific/Chatham", "2025-05-01 00:00:17", 4),
    ("45 23 31 * *", "Australia/Lord_Howe", "2025-05-01 00:00:17", 5),
    ("0 22 * * SUN", "Europe/Berlin", "2025-04-01 00:00:17", 5),
    ("@daily", "America/Los_Angeles", "2025-06-01 00:00:17", 5),
    ("@hourly", "Europe/Paris", "2025-06-01 00:00:17", 5),
    ("@weekly", "UTC", "2025-06-01 00:00:17", 5),
    ("@monthly", "Asia/Tokyo", "2025-06-01 00:00:17", 5),
    ("@yearly", "UTC", "2025-06-01 00:00:17", 3),
    ("H H(0-5) * * MON-FRI", "UTC", "2025-06-01 00:00:17", 8),
    ("H/15 * * * *", "Europe/Berlin", "2025-06-01 00:00:17", 8),
    ("0 0 1,15 * MON", "UTC", "2025-06-01 00:00:17", 10),
    ("0 0 * * 0,7", "UTC", "2025-06-01 00:00:17", 4),
]


@pytest.mark.parametrize(("expression", "zone", "start", "count"), EQUIVALENT)
def test_oncalendar_fires_when_cronctl_does(systemd_analyze, expression, zone, start, count):
    schedule = Schedule.parse(expression, timezone=zone, name="backup")
    specs = sd.calendar_specs(schedule)
    after = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert systemd_times(systemd_analyze, specs, after, count) == cronctl_times(
        schedule, after, count
    )


@pytest.mark.parametrize(
    ("every", "count"),
    [("30s", 10), ("1s", 5), ("5m", 10), ("1m", 5), ("2h", 6), ("20m", 6), ("1d", 3)],
)
def test_every_as_oncalendar_has_the_same_slots(systemd_analyze, every, count):
    schedule = Schedule.parse(f"@every {every}", timezone="Asia/Kolkata")
    spec = sd.every_calendar(schedule.interval_seconds)
    assert spec is not None
    after = datetime(2025, 3, 30, 0, 7, 13, tzinfo=UTC)
    assert systemd_times(systemd_analyze, [spec], after, count) == cronctl_times(
        schedule, after, count
    )


def test_every_that_no_calendar_expresses():
    for seconds in (7, 45, 7 * 60, 90 * 60, 5 * 3600, 2 * 86400):
        assert sd.every_calendar(seconds) is None


def test_dom_dow_or_needs_one_line_per_alternative():
    specs = sd.calendar_specs(Schedule.parse("30 4 1,15 * FRI", timezone="Europe/Berlin"))
    assert specs == ["*-*-01,15 04:30:00 Europe/Berlin", "Fri *-*-* 04:30:00 Europe/Berlin"]
    assert sd.calendar_specs(Schedule.parse("0 23 L * *")) == ["*-*~01 23:00:00 UTC"]
    assert sd.calendar_specs(Schedule.parse("0 9 * * FRI#1")) == ["Fri *-*-01..07 09:00:00 UTC"]
    assert sd.calendar_specs(Schedule.parse("0 3 * * 1-5")) == ["Mon..Fri *-*-* 03:00:00 UTC"]
    assert sd.calendar_specs(Schedule.parse("*/15 * * * *")) == ["*-*-* *:00/15:00 UTC"]


def test_l_and_nth_weekday_that_must_both_match_are_refused():
    with pytest.raises(NotExportable):
        sd.calendar_specs(Schedule.parse("0 0 L * *,FRI#5"))


# ---------------------------------------------------------------------------------------------
# Daylight saving: where systemd and cronctl differ (documented in the units and cronctl(1))


def test_dst_gap_systemd_skips_a_fixed_time_cronctl_runs_it_after_the_gap(systemd_analyze):
    schedule = Schedule.parse("30 2 * * *", timezone="America/New_York")
    after = datetime(2025, 3, 8, 12, 0, 17, tzinfo=UTC)
    ours = cronctl_times(schedule, after, 3)
    theirs = systemd_times(systemd_analyze, sd.calendar_specs(schedule), after, 3)
    # 2025-03-09: 02:30 EST does not exist. cronctl: 03:00 EDT (07:00Z); systemd: nothing that day.
    assert ours[0] == datetime(2025, 3, 9, 7, 0, tzinfo=UTC)
    assert theirs[0] == datetime(2025, 3, 10, 6, 30, tzinfo=UTC)
    assert ours[1:] == theirs[:2]


def test_dst_gap_wildcard_both_lose_the_missing_times(systemd_analyze):
    schedule = Schedule.parse("*/15 2 * * *", timezone="America/New_York")
    after = datetime(2025, 3, 8, 12, 0, 17, tzinfo=UTC)
    assert systemd_times(systemd_analyze, sd.calendar_specs(schedule), after, 8) == cronctl_times(
        schedule, after, 8
    )


def test_dst_fall_back_fixed_time_both_run_the_first_pass_once(systemd_analyze):
    schedule = Schedule.parse("30 1 * * *", timezone="America/New_York")
    after = datetime(2025, 11, 1, 12, 0, 17, tzinfo=UTC)
    assert systemd_times(systemd_analyze, sd.calendar_specs(schedule), after, 4) == cronctl_times(
        schedule, after, 4
    )


def test_dst_fall_back_wildcard_systemd_runs_only_the_first_pass(systemd_analyze):
    schedule = Schedule.parse("*/15 1 * * *", timezone="America/New_York")
    after = datetime(2025, 11, 2, 4, 0, 17, tzinfo=UTC)
    day_end = datetime(2025, 11, 2, 12, 0, tzinfo=UTC)
    ours = [t for t in cronctl_times(schedule, after, 12) if t < day_end]
    theirs = [
        t
        for t in systemd_times(systemd_analyze, sd.calendar_specs(schedule), after, 12)
        if t < day_end
    ]
    first_pass = [datetime(2025, 11, 2, 5, m, tzinfo=UTC) for m in (0, 15, 30, 45)]
    assert theirs == first_pass
    assert ours == first_pass + [t + timedelta(hours=1) for t in first_pass]


# ---------------------------------------------------------------------------------------------
# The units


TASKS = [
    make_task(
        "backup",
        "0 2 * * *",
        'restic backup ~/docs && echo "100% done" $HOME',
        description="Nightly backup: 100%",
        timezone="America/New_York",
        timeout="30m",
        retries=2,
        jitter="5m",
        catch_up="once",
        working_dir="~/backups",
        env={"RESTIC_REPOSITORY": "/srv/restic", "ODD": " 'quoted' \"twice\" $X %h\\n"},
    ),
    make_task("report", "30 4 1,15 * FRI", 'make-report --since "$(date +%F)"', overlap="queue"),
    make_task("month-end", "0 23 L * *", "close-books", enabled=False),
    make_task("standup", "0 9 * * FRI#1", "standup"),
    make_task("tick", "@every 5m", "tick"),
    make_task("odd", "@every 7m", "odd"),
    make_task("boot", "@reboot", "echo booted"),
    make_task(
        "hashed",
        "H H(0-5) * * MON-FRI",
        "hashed 'job'",
        shell="/bin/bash",
        when="test -f /tmp/flag",
    ),
    make_task("extract", "0 1 * * *", "extract", catch_up="all"),
    make_task("load", "0 3 * * *", "load", after=["extract"], working_dir="/srv/data"),
]


def test_every_task_gets_a_timer_and_a_service():
    result = sd.export(TASKS)
    assert result.skipped == []
    names = [f.name for f in result.files]
    assert names == [
        n for t in TASKS for n in (f"cronctl-{t.name}.timer", f"cronctl-{t.name}.service")
    ]


def test_systemd_analyze_verify_accepts_the_units(tmp_path, systemd_analyze):
    assert_systemd_accepts(systemd_analyze, tmp_path, sd.export(TASKS).files)


def units(name: str) -> tuple[str, str]:
    files = {f.name: f.text for f in sd.export(TASKS).files}
    return files[f"cronctl-{name}.timer"], files[f"cronctl-{name}.service"]


def test_settings_map_to_systemd():
    timer, service_text = units("backup")
    assert "OnCalendar=*-*-* 02:00:00 America/New_York" in timer.splitlines()
    assert "RandomizedDelaySec=300" in timer and "Persistent=true" in timer
    assert "TimeoutStartSec=1800" in service_text and "Type=oneshot" in service_text
    assert "WorkingDirectory=%h/backups" in service_text
    assert 'Environment="RESTIC_REPOSITORY=/srv/restic"' in service_text
    assert "retries 2" in service_text  # a comment saying retries are not exported
    assert "Description=cronctl task backup: Nightly backup: 100%%" in timer
    timer, _ = units("report")
    assert (
        "OnCalendar=*-*-01,15 04:30:00 UTC" in timer
        and "OnCalendar=Fri *-*-* 04:30:00 UTC" in timer
    )
    timer, _ = units("tick")
    assert "OnCalendar=*-*-* *:00/5:00 UTC" in timer
    timer, _ = units("odd")
    assert "OnUnitActiveSec=420" in timer and "not aligned" in timer
    timer, _ = units("boot")
    assert "OnStartupSec=0" in timer and "OnCalendar" not in timer
    _, service_text = units("hashed")
    assert 'ExecCondition=/bin/bash -c "test -f /tmp/flag"' in service_text
    assert "ExecStart=/bin/bash -c \"hashed 'job'\"" in service_text
    _, service_text = units("extract")
    assert "OnSuccess=cronctl-load.service" in service_text
    timer, _ = units("month-end")
    assert "disabled in cronctl" in timer
    timer, _ = units("extract")
    assert "catch_up all" in timer


def test_no_comment_shares_a_line_with_a_setting():
    for item in sd.export(TASKS).files:
        for line in item.text.splitlines():
            assert line.startswith("#") or "#" not in line.split("=", 1)[0]


def test_cli_prints_or_writes_the_units(cli, tasks_path, tmp_path):
    cli("add", "backup", "0 2 * * *", "restic backup", "--timezone", "Europe/Berlin")
    cli("add", "boot", "@reboot", "echo hi")
    printed = cli("export", "--format", "systemd")
    assert printed.exit_code == 0
    assert (
        "# ==> cronctl-backup.timer <==" in printed.stdout
        and "# ==> cronctl-boot.service <==" in printed.stdout
    )
    folder = tmp_path / "units"
    written = cli("export", "--format", "systemd", "--output", str(folder), "backup")
    assert written.exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "cronctl-backup.service",
        "cronctl-backup.timer",
    ]
    assert "systemctl --user enable --now cronctl-backup.timer" in written.stderr
