"""`export --format crontab`: crontab lines that say what they lose, that `import` reads back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronctl import crontab_import, taskfile
from cronctl.export import NotExportable, vixie_fields
from cronctl.export import crontab as ct
from cronctl.schedule import Schedule

from .conftest import make_task

TASKS = [
    make_task(
        "backup",
        "0 2 * * *",
        "restic backup ~/docs && echo 100% done",
        description="Nightly backup",
        timezone="America/New_York",
        timeout="30m",
        retries=2,
        jitter="5m",
        catch_up="once",
        env={"RESTIC_REPOSITORY": "/srv/restic", "PADDED": " spaced "},
    ),
    make_task(
        "report",
        "30 4 1,15 * FRI",
        'make-report --since "$(date -d yesterday +%F)"',
        overlap="queue",
        timezone="Europe/Berlin",
    ),
    make_task("weekend", "0 12 * JAN-MAR SAT,SUN", "weekend", timezone="Europe/Berlin"),
    make_task("odd-days", "0 0 */2 * MON", "odd", timezone="Europe/Berlin"),
    make_task("boot", "@reboot", "echo booted", timezone="Europe/Berlin"),
    make_task("tick", "@every 10m", "tick"),
    make_task(
        "hashed",
        "H H(0-5) * * MON-FRI",
        "hashed 'job'",
        shell="/bin/bash",
        when="test -f /x",
        timezone="Europe/Berlin",
    ),
    make_task(
        "in-dir", "15 3 * * *", "./run.sh", working_dir="~/proj dir", timezone="Europe/Berlin"
    ),
    make_task("paused", "0 5 * * *", "paused", enabled=False, timezone="Europe/Berlin"),
]


def exported(tasks=TASKS):
    result = ct.export(tasks, source="/home/ana/.config/cronctl/tasks.toml")
    return result, result.files[0].text


def test_lines_zones_and_comments():
    result, text = exported()
    assert result.skipped == []
    lines = text.splitlines()
    assert (
        "CRON_TZ=America/New_York" in lines
        and "CRON_TZ=Europe/Berlin" in lines
        and "CRON_TZ=UTC" in lines
    )
    assert "0 2 * * * restic backup ~/docs && echo 100\\% done" in lines
    assert '30 4 1,15 * 5 make-report --since "$(date -d yesterday +\\%F)"' in lines
    assert "0 12 * 1-3 6,0 weekend" in lines
    assert "0 0 */2 * 1 odd" in lines  # still starts with '*': cron combines the days by AND too
    assert "@reboot echo booted" in lines
    assert "*/10 * * * * tick" in lines
    assert "RESTIC_REPOSITORY=/srv/restic" in lines and 'PADDED=" spaced "' in lines
    assert "SHELL=/bin/bash" in lines
    assert "# cronctl: backup - Nightly backup" in lines
    for lost in ("retries 2", "timeout 30m", "catch_up once", "jitter 5m"):
        assert any(line.startswith("# lost: " + lost) for line in lines)
    assert any(line.startswith("# lost: overlap queue") for line in lines)
    assert any(line.startswith("# lost: when ") for line in lines)
    assert "# 0 5 * * * paused" in lines  # disabled: commented out
    assert "15 3 * * * cd \"$HOME\"/'proj dir' && ./run.sh" in lines


def test_every_entry_line_is_five_fields_or_a_macro_and_parses_in_its_zone():
    _, text = exported()
    zone = None
    for line in text.splitlines():
        if line.startswith("CRON_TZ="):
            zone = line.split("=", 1)[1]
        if not line or line.startswith("#") or "=" in line.split(" ", 1)[0]:
            continue
        if line.startswith("@"):
            assert line.split()[0] in crontab_import.CRON_MACROS
            continue
        Schedule.parse(" ".join(line.split()[:5]), timezone=zone)


def test_round_trip_through_import(cli, tasks_path, tmp_path):
    _, text = exported()
    path = tmp_path / "exported.crontab"
    path.write_text(text)
    result = cli("import", str(path))
    assert result.exit_code == 0, result.stderr
    back = taskfile.load(tasks_path).tasks  # read back through the real loader
    enabled = [t for t in TASKS if t.enabled]
    assert set(back) == {t.name for t in enabled}  # names come back from the `# cronctl:` comments
    after = datetime(2025, 1, 1, tzinfo=UTC)
    for task in enabled:
        again = back[task.name]
        assert again.description == task.description
        assert again.shell == task.shell
        same_env = {
            k: v for k, v in again.env.items() if v != ""
        }  # cron cannot unset, only set empty
        assert same_env == dict(task.env)
        ours, theirs = task.parsed_schedule(), again.parsed_schedule()
        assert ours.is_reboot == theirs.is_reboot
        assert theirs.upcoming(after, 20) == [
            t.astimezone(theirs.zone) for t in ours.upcoming(after, 20)
        ]
        if task.working_dir in ("~", ""):
            assert again.command == task.command
        else:
            assert again.command.endswith(" && " + task.command)
        if not task.schedule.startswith("@every"):
            assert again.timezone == task.timezone
    assert "paused" not in back


@pytest.mark.parametrize(
    ("task", "why"),
    [
        (make_task("last", "0 23 L * *", "x"), "'L'"),
        (make_task("nth", "0 9 * * FRI#1", "x"), "DOW#N"),
        (make_task("seven", "@every 7m", "x"), "no cron line"),
        (make_task("seconds", "@every 30s", "x"), "no cron line"),
        (make_task("lines", "@daily", "echo a\necho b"), "several lines"),
        (make_task("esc", "@daily", "printf '\\%'"), "'\\%'"),
        (make_task("envnl", "@daily", "x", env={"A": "1\n2"}), "env A"),
    ],
)
def test_what_crontab_cannot_express_is_left_out(task, why):
    result, text = exported([task])
    assert [s.task for s in result.skipped] == [task.name]
    assert why in result.skipped[0].reason
    assert f"# not exported: task {task.name}: " in text


def test_every_intervals_that_cron_can_express():
    from cronctl.export import every_as_cron

    assert every_as_cron(60) == "* * * * *"
    assert every_as_cron(15 * 60) == "*/15 * * * *"
    assert every_as_cron(3600) == "0 * * * *"
    assert every_as_cron(6 * 3600) == "0 */6 * * *"
    assert every_as_cron(86400) == "0 0 * * *"
    for seconds in (30, 7 * 60, 90 * 60, 5 * 3600, 2 * 86400):
        assert every_as_cron(seconds) is None


def test_vixie_fields_keep_star_and_resolve_names_and_h():
    assert vixie_fields(Schedule.parse("0 0 */2 * MON")) == ("0", "0", "*/2", "*", "1")
    assert vixie_fields(Schedule.parse("0 12 * jan-mar sat,SUN")) == ("0", "12", "*", "1-3", "6,0")
    hashed = vixie_fields(Schedule.parse("H H * * *", name="backup"))
    assert all(part.isdigit() for part in hashed[:2])
    with pytest.raises(NotExportable):
        vixie_fields(Schedule.parse("0 0 L * *"))


def test_env_lines_as_cron_reads_them():
    assert ct.env_line("A", "plain") == "A=plain"
    assert ct.env_line("A", " x ") == 'A=" x "'
    assert ct.env_line("A", '"q"') == "A='\"q\"'"
    assert ct.env_line("A", "") == "A="
    # import reads each back to the same value
    for value in ("plain", " x ", '"q"', "'s'", "a b"):
        parsed = crontab_import.parse(ct.env_line("A", value) + "\n0 1 * * * x\n", system=False)
        assert parsed.candidates[0].table["env"] == {"A": value}


def test_cli(cli, tmp_path):
    cli("add", "backup", "0 2 * * *", "restic backup", "--timezone", "Europe/Berlin")
    cli("add", "last", "0 23 L * *", "month-end")
    result = cli("export", "--format", "crontab")
    assert result.exit_code == 1 and "task last not exported" in result.stderr
    assert "0 2 * * * restic backup" in result.stdout
    folder = tmp_path / "out"
    written = cli("export", "--format", "crontab", "--output", str(folder), "backup")
    assert written.exit_code == 0 and (folder / "crontab").read_text().count("restic backup") == 1
    warned = cli("export", "--format", "crontab", "--image", "x", "backup")
    assert "apply to --format k8s only" in warned.stderr
