"""`cronctl import`: real crontabs (Debian's /etc/crontab, cron.d files of common packages,
a user crontab with assignments) into the task file."""

from __future__ import annotations

import json
import os
import tomllib

import pytest

from cronctl import crontab_import, model
from cronctl.crontab_import import derive_name, parse, unescape_command

from .conftest import DATA


def imported(cli, *args, input=None):
    result = cli("import", *args, "--json", input=input)
    return result, json.loads(result.stdout)


def tasks_in(path):
    return tomllib.loads(path.read_text())["tasks"]


def test_debian_etc_crontab(cli, tasks_path):
    result, data = imported(cli, str(DATA / "debian-crontab"))
    assert result.exit_code == 0, result.stderr
    assert data["system_format"] is True and data["skipped"] == []
    tasks = tasks_in(tasks_path)
    assert list(tasks) == ["cron.hourly", "cron.daily", "cron.weekly", "cron.monthly"]
    assert tasks["cron.hourly"]["schedule"] == "17 * * * *"
    assert tasks["cron.hourly"]["command"] == "cd / && run-parts --report /etc/cron.hourly"
    assert tasks["cron.weekly"]["schedule"] == "47 6 * * 7"
    assert tasks["cron.monthly"]["command"] == (
        "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }"
    )
    for table in tasks.values():
        assert table["env"] == {
            "PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
        }
        assert "shell" not in table  # SHELL=/bin/sh is the default
        assert "description" not in table  # the syntax diagram above is not a description
    assert any("user field" in note["message"] for note in data["notes"])


@pytest.mark.parametrize(
    ("file", "names"),
    [
        ("php", ["sessionclean"]),
        ("certbot", ["certbot"]),
        ("mdadm", ["checkarray"]),
        ("sysstat", ["debian-sa1", "debian-sa1-2"]),
        ("e2scrub_all", ["e2scrub_all_cron", "e2scrub_all"]),
    ],
)
def test_cron_d_files_of_common_packages(cli, tasks_path, file, names):
    result, data = imported(cli, str(DATA / "cron.d" / file))
    assert result.exit_code == 0, result.stderr
    assert data["system_format"] is True
    assert [t["name"] for t in data["imported"]] == names
    assert list(tasks_in(tasks_path)) == names


def test_cron_d_details(cli, tasks_path):
    cli("import", str(DATA / "cron.d" / "php"))
    cli("import", str(DATA / "cron.d" / "mdadm"))
    cli("import", str(DATA / "cron.d" / "sysstat"))
    cli("import", str(DATA / "cron.d" / "certbot"))
    tasks = tasks_in(tasks_path)
    php = tasks["sessionclean"]
    assert php["schedule"] == "09,39 * * * *"
    assert php["description"] == "Look for and purge old sessions every 30 minutes"
    # cron passes `\%` to the shell as `%`; other backslashes as they are.
    assert "[ $(date +%d) -le 7 ]" in tasks["checkarray"]["command"]
    assert "test -x /usr/bin/certbot -a \\! -d" in tasks["certbot"]["command"]
    assert tasks["debian-sa1"]["schedule"] == "5-55/10 * * * *"
    assert tasks["debian-sa1"]["description"] == "Activity reports every 10 minutes everyday"
    assert tasks["debian-sa1"]["env"]["PATH"].startswith("/usr/lib/sysstat:")
    assert (
        tasks["certbot"]["env"]["PATH"]
        == "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
    )
    # Everything imported is valid: the file loads.
    cli_check = cli("check")
    assert cli_check.exit_code == 0


def test_a_user_crontab_in_the_sysstat_example_format(cli, tasks_path):
    result, data = imported(cli, str(DATA / "sysstat-user-crontab"))
    assert result.exit_code == 0
    assert data["system_format"] is False
    tasks = tasks_in(tasks_path)
    assert tasks["sa1"] == {"schedule": "0 * * * *", "command": "/usr/lib/sysstat/sa1 600 6"}
    assert tasks["sa2"]["command"] == "/usr/lib/sysstat/sa2 -A"


def test_user_crontab_with_assignments(cli, tasks_path):
    result, data = imported(cli, str(DATA / "user-crontab"))
    assert result.exit_code == 1  # some lines could not be imported; the others were
    tasks = tasks_in(tasks_path)
    assert list(tasks) == ["restic", "start-tunnel", "fetchmail", "report"]
    env = {"PATH": "/home/ana/bin:/usr/local/bin:/usr/bin:/bin", "RESTIC_REPOSITORY": "/srv/restic"}
    restic = tasks["restic"]
    assert restic["schedule"] == "30 2 * * *" and restic["timezone"] == "Europe/Berlin"
    assert restic["shell"] == "/bin/bash" and restic["env"] == env
    assert restic["description"] == "Nightly backup"
    assert restic["notify"] == {"on": ["output", "failure"], "email": ["ops@example.org"]}
    assert tasks["start-tunnel"]["schedule"] == "@reboot"
    assert tasks["fetchmail"]["schedule"] == "*/10 9-17 * * mon-fri"
    report = tasks["report"]
    assert report["timezone"] == "America/New_York" and report["jitter"] == "5m"
    assert report["command"] == "/usr/local/bin/report.py --since \"$(date -d '2 weeks ago' +%F)\""
    skipped = {item["line"]: item["reason"] for item in data["skipped"]}
    assert set(skipped) == {18, 19, 20}
    assert "unescaped '%'" in skipped[18]
    assert "never fires" in skipped[19]
    assert "reversed range" in skipped[20]
    assert any("MAILTO" in note["message"] for note in data["notes"])


def test_human_report_names_each_skipped_line(cli):
    result = cli("import", str(DATA / "user-crontab"))
    assert result.exit_code == 1
    assert "warning: line 18 not imported: the command has an unescaped '%'" in result.stderr
    assert "Imported 4 tasks" in result.stderr and "3 lines not imported" in result.stderr
    assert "restic" in result.stdout  # the table of imported tasks


def test_dry_run_writes_nothing(cli, tasks_path):
    result, data = imported(cli, str(DATA / "debian-crontab"), "--dry-run")
    assert result.exit_code == 0 and data["dry_run"] is True and len(data["imported"]) == 4
    assert not tasks_path.exists()
    human = cli("import", str(DATA / "debian-crontab"), "--dry-run")
    assert "Would import 4 tasks" in human.stderr and not tasks_path.exists()


def test_names_are_unique_against_existing_tasks_and_prefix(cli, tasks_path):
    cli("add", "sessionclean", "@daily", "true")
    tasks_path.write_text("# my tasks\n" + tasks_path.read_text())
    cli("import", str(DATA / "cron.d" / "php"))
    # Imported again, the line is found in the file and not added (issue 14, item 10).
    again = cli("import", str(DATA / "cron.d" / "php"))
    assert again.exit_code == 0 and "already imported as task 'sessionclean-2'" in again.stderr
    assert list(tasks_in(tasks_path)) == ["sessionclean", "sessionclean-2"]
    assert tasks_path.read_text().startswith("# my tasks\n")  # the user's text survives
    assert "# imported from " in tasks_path.read_text()
    cli("import", str(DATA / "debian-crontab"), "--prefix", "sys")
    assert [n for n in tasks_in(tasks_path) if n.startswith("sys-")] == [
        "sys-1",
        "sys-2",
        "sys-3",
        "sys-4",
    ]
    cli("import", str(DATA / "cron.d" / "e2scrub_all"), "--prefix", "sys")
    assert "sys-5" in tasks_in(tasks_path) and "sys-6" in tasks_in(tasks_path)
    bad = cli("import", str(DATA / "cron.d" / "php"), "--prefix", "-x")
    assert bad.exit_code == 2 and "--prefix" in bad.stderr


def test_standard_input(cli, tasks_path):
    result = cli("import", "-", input='MAILTO=""\n*/5 * * * * curl -fsS https://example.org/ping\n')
    assert result.exit_code == 0, result.stderr
    assert tasks_in(tasks_path)["curl"]["command"] == "curl -fsS https://example.org/ping"
    piped = cli("import", input="0 1 * * * backup.sh\n")
    assert piped.exit_code == 0 and "backup" in tasks_in(tasks_path)


def test_system_format_can_be_forced_either_way(cli, tasks_path):
    text = "0 2 * * * backup /srv\n"  # 'backup' is a Debian system account
    _, forced = imported(cli, "-", "--no-system", "--dry-run", input=text)
    assert forced["imported"][0]["command"] == "backup /srv"
    _, system = imported(cli, "-", "--system", "--dry-run", input="0 2 * * * ana /usr/bin/true\n")
    assert system["imported"][0]["command"] == "/usr/bin/true"


def test_a_file_that_cannot_be_read(cli, tmp_path):
    result = cli("import", str(tmp_path / "missing"))
    assert result.exit_code == 2 and result.stderr.startswith("error: cannot read")


def test_an_invalid_task_file_is_left_alone(cli, tasks_path):
    tasks_path.parent.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text("[tasks.x]\nschedule = 5\n")
    result = cli("import", str(DATA / "cron.d" / "php"))
    assert result.exit_code == 2
    assert tasks_path.read_text() == "[tasks.x]\nschedule = 5\n"


# ---------------------------------------------------------------------------------------------
# The reader itself


def test_assignments_apply_to_the_entries_below():
    parsed = parse("A=1\n0 1 * * * one\nA=2\nB = ' spaced '\n0 2 * * * two\n", system=False)
    first, second = parsed.candidates
    assert first.table["env"] == {"A": "1"}
    assert second.table["env"] == {"A": "2", "B": " spaced "}


def test_tz_and_cron_tz():
    parsed = parse(
        "TZ=Asia/Tokyo\n0 1 * * * a\nCRON_TZ=Europe/Berlin\nTZ=UTC\n0 2 * * * b\n", system=False
    )
    a, b = parsed.candidates
    assert a.table["timezone"] == "Asia/Tokyo" and a.table["env"] == {"TZ": "Asia/Tokyo"}
    # Once CRON_TZ is given it decides the schedule's zone; TZ only reaches the job.
    assert b.table["timezone"] == "Europe/Berlin" and b.table["env"] == {"TZ": "UTC"}
    bad = parse("CRON_TZ=Mars/Olympus\n0 1 * * * a\n", system=False)
    assert bad.problems[0].line == 1 and "unknown time zone" in bad.problems[0].reason
    assert "timezone" not in bad.candidates[0].table


def test_home_is_the_working_folder_and_mailto_without_a_domain_is_reported():
    parsed = parse("HOME=/srv/app\nMAILTO=root\n0 1 * * * run\n", system=False)
    table = parsed.candidates[0].table
    assert table["working_dir"] == "/srv/app" and "notify" not in table
    assert any("MAILTO root not imported" in n.message for n in parsed.notes)


def test_invalid_utf8_and_bad_names():
    parsed = parse("0 1 * * * caf\ufffd\n1BAD=x\n", system=False)
    reasons = {p.line: p.reason for p in parsed.problems}
    assert "UTF-8" in reasons[1] and "environment variable name" in reasons[2]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("date +%s", None),
        ("date +\\%s", "date +%s"),
        ("echo a\\\\%b", None),  # an escaped backslash, then a bare %
        ("printf '\\n'", "printf '\\n'"),
        ("echo 100\\% done", "echo 100% done"),
    ],
)
def test_percent_as_vixie_cron_reads_it(command, expected):
    assert unescape_command(command) == expected


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("cd / && run-parts --report /etc/cron.hourly", "cron.hourly"),
        ("command -v debian-sa1 > /dev/null && debian-sa1 1 1", "debian-sa1"),
        ("timeout 3600 ~/bin/backup.sh", "backup"),
        ("nice -n 10 ionice -c3 /usr/local/bin/job.py --x", "job"),
        ("/usr/bin/flock -n /tmp/x.lock /usr/local/bin/job.sh", "job"),
        ("sh -c 'restic backup ~/docs'", "restic"),
        ("FOO=1 $HOME/bin/sync-mail", "sync-mail"),
        ("echo hi > /tmp/x", "echo"),
        ("python3 -m http.server", "http.server"),
        ("ÄÖ", "task"),
    ],
)
def test_names_come_from_the_program(command, name):
    assert derive_name(command) == name
    model.check_name(name)


def test_plan_checks_every_task_with_the_file_s_defaults():
    defaults = model.parse_defaults({"timezone": "Asia/Tokyo"})
    plan = crontab_import.plan("0 1 * * * a\n", {}, defaults, default_zone="UTC")
    assert plan.tasks[0].task.timezone == "Asia/Tokyo"
    assert os.path.basename(plan.source) == "-"
