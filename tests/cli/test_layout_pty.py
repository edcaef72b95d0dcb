"""Issue 14, items 2, 3, 4 and 7 through the real `cronctl` script: tables on a real
pseudo-terminal of 60 to 200 columns (its size set with TIOCSWINSZ, no COLUMNS), plain text when
piped, seconds for schedules off the minute, and `status` one row a task."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from cronctl.records import Output
from cronctl.store import HistoryStore
from tests.support import read_pty

LIMIT = 60
WIDTHS = (60, 80, 120, 200)
LONG_NAME = "backup-photos-to-the-offsite-server"
TASKS = f"""\
[tasks.{LONG_NAME}]
schedule = "0 2 * * *"
command = "restic backup ~/photos --repo sftp:backup@example.org:/srv/restic/photos --verbose"
description = "the nightly backup of every photo to the server in the other building"
timezone = "Europe/Berlin"

[tasks.tick]
schedule = "@every 2s"
command = "true"

[tasks.sync]
schedule = "@every 90s"
command = "rsync -a ~/notes server:notes"

[tasks.flaky]
schedule = "*/5 * * * *"
command = "exit 3"

[tasks.old]
schedule = "0 0 1 1 *"
command = "true"
enabled = false
"""
TASK_NAMES = [LONG_NAME, "tick", "sync", "flaky", "old"]
ISO_SECOND = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def _run(store: HistoryStore, task: str, status: str, at: datetime, code: int | None) -> None:
    stderr = b"connection refused by server.example.org port 443\n" if status == "failed" else b""
    run_id = store.start_run(task, "schedule", started_at=at, scheduled_at=at)
    store.finish_run(
        run_id,
        status=status,
        finished_at=at + timedelta(seconds=3),
        duration_ms=3120,
        exit_code=code,
        stderr=Output(stderr, len(stderr)),
    )


@pytest.fixture(scope="module")
def layout_home(tmp_path_factory) -> tuple[Path, datetime]:
    """48 failures of `flaky` (one each 5 minutes), a disabled task and a removed one that
    failed, runs of today, of earlier this year and of last year."""
    home = tmp_path_factory.mktemp("layout")
    (home / "tasks.toml").write_text(TASKS)
    now = datetime.now(UTC)
    with HistoryStore(str(home / "history.db")) as store:
        store.serve_started(pid=4242, hostname="box", version="0.1.0", now=now - timedelta(hours=3))
        store.heartbeat(now)
        _run(store, LONG_NAME, "succeeded", now - timedelta(days=400), 0)
        _run(store, LONG_NAME, "succeeded", now - timedelta(days=40), 0)
        _run(store, "sync", "succeeded", now - timedelta(days=40, seconds=30), 0)
        for i in range(48):
            _run(store, "flaky", "failed", now - timedelta(minutes=5 * i + 1), 3)
        for i in range(5):
            _run(store, "tick", "succeeded", now - timedelta(seconds=2 * i + 1), 0)
        _run(store, "old", "failed", now - timedelta(minutes=20), 1)
        _run(store, "gone", "failed", now - timedelta(minutes=30), 2)
    return home, now


def pty_run(exe: list[str], args: list[str], home: Path, columns: int) -> str:
    """Run on a pseudo-terminal of `columns` x 50 (what a person sees); return its text."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TTY_COMPATIBLE")}
    env.update({"CRONCTL_HOME": str(home), "NO_COLOR": "1", "TERM": "xterm-256color"})
    env.pop("FORCE_COLOR", None)
    proc = subprocess.Popen(
        [*exe, *args], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    return read_pty(leader, proc, LIMIT).decode().replace("\r\n", "\n")


def piped(exe: list[str], args: list[str], home: Path) -> str:
    done = subprocess.run(
        [*exe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CRONCTL_HOME": str(home)},
        timeout=LIMIT,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each table of a terminal screen: (headers, rows of cells); a row is one line."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if set(line.strip()) <= {"━", "╇"} and "━" in line:
            headers = [h.strip() for h in lines[index - 1].split("┃")]
            rows = []
            for row in lines[index + 1 :]:
                if "│" not in row:
                    break
                rows.append([cell.strip() for cell in row.split("│")])
            found.append((headers, rows))
    return found


# (command, the first column's full values, the number of rows of the first table)
SCREENS = [
    (["list"], TASK_NAMES, 5),
    (["history", "--limit", "12"], None, 12),
    (["status"], ["flaky"], 1),
    (["show", "flaky"], None, 10),
]


@pytest.mark.parametrize("columns", WIDTHS)
def test_c2_every_table_fits_the_terminal_one_line_a_row(layout_home, cronctl_exe, columns):
    """Decided: at any width from 60, no line is longer than the terminal, every data row is one
    line (a cell never wraps, so no word is split across lines: it is shortened with `…` or its
    column dropped), and `show NAME`'s runs have no Task column. Before: 80 columns wrapped
    `succeed|ed` and five history rows took 25 lines."""
    home, _ = layout_home
    for args, first_column, count in SCREENS:
        text = pty_run(cronctl_exe, args, home, columns)
        for line in text.splitlines():
            assert cell_len(line) <= columns, (args, columns, line)
        found = tables(text)
        assert found, (args, columns, text)
        headers, rows = found[0]
        assert len(rows) == count, (args, columns, text)
        for row in rows:
            assert len(row) == len(headers), (args, columns, row)
            if first_column is not None:
                cell = row[0]
                assert cell in first_column or (
                    cell.endswith("…") and any(v.startswith(cell[:-1]) for v in first_column)
                ), (args, columns, cell)
        if args[0] == "show":
            assert "Task" not in headers and "Status" in headers, (columns, headers)
        if args[0] == "history":
            assert headers[:2] == ["ID", "Task"] and "Status" in headers and "Started" in headers


def test_c2_terminal_times_are_short_by_distance(layout_home, cronctl_exe):
    """Decided: a table's time is `14:08:05` on today's date, `Oct 26 14:08` earlier this year,
    `2025-10-31` before (in the task's zone); the plain form stays ISO 8601."""
    home, now = layout_home
    text = pty_run(cronctl_exe, ["history", "--limit", "100"], home, 200)
    headers, rows = tables(text)[0]
    started = headers.index("Started")
    by_task: dict[str, list[str]] = {}
    for row in rows:
        by_task.setdefault(row[1], []).append(row[started])
    berlin = [_berlin(now - timedelta(days=40)), _berlin(now - timedelta(days=400))]
    this_year = f"{berlin[0]:%b} {berlin[0].day} {berlin[0]:%H:%M}"
    assert by_task[LONG_NAME] == [this_year, f"{berlin[1]:%Y-%m-%d}"]
    # flaky failed every 5 minutes: today's runs show the time only, yesterday's (just after
    # midnight) the date too. The task runs in the machine's zone.
    local = [_machine(now - timedelta(minutes=5 * i + 1)) for i in range(48)]
    today = _machine(now).date()
    expected = [
        f"{t:%H:%M:%S}" if t.date() == today else f"{t:%b} {t.day} {t:%H:%M}" for t in local
    ]
    assert by_task["flaky"] == expected, by_task["flaky"]
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in by_task["flaky"])


def _machine(moment: datetime) -> datetime:
    from zoneinfo import ZoneInfo

    from cronctl.schedule.zones import machine_timezone

    return moment.astimezone(ZoneInfo(machine_timezone()))


def _berlin(moment: datetime) -> datetime:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Europe/Berlin"))


def test_c3_schedules_off_the_minute_show_seconds(layout_home, cronctl_exe):
    """Decided: `@every 2s` and `@every 90s` show seconds in `show`, `explain`, `list` and
    `history`, on a terminal and piped. Before: `show tick` listed five identical `14:18`."""
    home, now = layout_home
    for text in (
        pty_run(cronctl_exe, ["show", "tick"], home, 80),
        piped(cronctl_exe, ["show", "tick"], home),
    ):
        nexts = text.split("next runs:\n")[1].split("last runs:")[0].splitlines()
        assert len(nexts) == 5 and len(set(nexts)) == 5, text
        assert all(re.search(r"\d\d:\d\d:\d\d", line) for line in nexts), nexts
    # explain on a terminal: seconds only off the minute; piped, ISO 8601 to the second.
    explained = pty_run(cronctl_exe, ["explain", "@every 90s", "--count", "4"], home, 80)
    seconds = re.findall(r"\d\d:\d\d:(\d\d) UTC", explained)
    assert len(seconds) == 4 and set(seconds) == {"00", "30"}, explained
    hourly = pty_run(cronctl_exe, ["explain", "@hourly"], home, 80)
    assert re.findall(r" \d\d:\d\d UTC", hourly) and not re.findall(r":\d\d:\d\d UTC", hourly)
    explained = piped(cronctl_exe, ["explain", "@every 90s", "--count", "4"], home)
    times = re.findall(r"^  (\S+)  [A-Z][a-z]{2} UTC$", explained, re.MULTILINE)
    assert len(times) == 4 and all(re.fullmatch(ISO_SECOND, t) for t in times), explained
    # Earlier this year: `Oct 26 14:08:30` for @every 90s, `Oct 26 14:08` for a cron task.
    text = pty_run(cronctl_exe, ["history", "--limit", "100"], home, 200)
    headers, rows = tables(text)[0]
    sync = next(row for row in rows if row[1] == "sync")[headers.index("Started")]
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2} \d\d:\d\d:\d\d", sync), sync
    listed = piped(cronctl_exe, ["list"], home)
    tick = next(line.split("\t") for line in listed.splitlines() if line.startswith("tick\t"))
    assert re.fullmatch(ISO_SECOND, tick[4]) and re.fullmatch(ISO_SECOND, tick[5]), tick


def test_c4_piped_timestamps_are_iso_8601_to_the_second(layout_home, cronctl_exe):
    """Decided: piped, every timestamp is ISO 8601 with the UTC offset, to the second, and no
    relative time appears (`ago`, `in 5m`). Before: history's `scheduled` read `2026-12-05
    14:08 UTC` and `started` had microseconds."""
    home, _ = layout_home
    history = piped(cronctl_exe, ["history", "--limit", "100"], home).splitlines()
    header = history[0].split("\t")
    for line in history[1:]:
        cells = dict(zip(header, line.split("\t"), strict=True))
        assert re.fullmatch(ISO_SECOND, cells["scheduled"]), line
        assert re.fullmatch(ISO_SECOND, cells["started"]), line
    berlin = [line for line in history if LONG_NAME in line]
    assert all(re.search(r"T\d\d:\d\d:\d\d\+0[12]:00", line) for line in berlin), berlin
    listed = piped(cronctl_exe, ["list"], home).splitlines()
    header = listed[0].split("\t")
    for line in listed[1:]:
        cells = dict(zip(header, line.split("\t"), strict=True))
        assert re.fullmatch(ISO_SECOND, cells["last_run"]), line
        assert cells["next_run"] == "-" or re.fullmatch(ISO_SECOND, cells["next_run"]), line
    for args in (["list"], ["history"], ["status"], ["show", "flaky"], ["show", "old"]):
        text = piped(cronctl_exe, args, home)
        assert not re.search(r" ago\b|\bin \d+[smhdy]\b", text), (args, text)
        assert not re.search(r"\d\d:\d\d UTC|\.\d{6}", text), (args, text)


def test_c7_status_is_one_row_a_task_and_ignores_disabled_and_removed(
    layout_home, cronctl_exe, tmp_path
):
    """Decided: status groups failures by task (last hour, last day, last failure's time,
    status, exit, error); a disabled task and a task no longer in the file are listed apart,
    `not counted`, and make nothing unhealthy. Before: 48 rows for `flaky`, and a disabled
    task's failure kept status unhealthy."""
    home, _ = layout_home
    text = piped(cronctl_exe, ["status"], home)
    rows = [line.split("\t") for line in text.splitlines() if "\t" in line]
    flaky = [row for row in rows if row[0] == "flaky" and len(row) == 7]
    assert len(flaky) == 1 and flaky[0][1:3] == ["12", "48"] and flaky[0][4:6] == ["failed", "3"]
    assert "connection refused" in flaky[0][6]
    ignored = {row[0]: row[1] for row in rows if row[0] in ("old", "gone")}
    assert ignored == {"old": "disabled", "gone": "not in the task file"}

    # Without flaky, the same history is healthy: the rest failed only in ignored tasks.
    calm = tmp_path / "calm"
    calm.mkdir()
    (calm / "tasks.toml").write_text(
        TASKS.replace('command = "exit 3"', 'command = "exit 3"\nenabled = false')
    )
    (calm / "history.db").write_bytes((home / "history.db").read_bytes())
    with HistoryStore(str(calm / "history.db")) as store:
        store.heartbeat(datetime.now(UTC))
    done = subprocess.run(
        [*cronctl_exe, "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "CRONCTL_HOME": str(calm)},
        timeout=LIMIT,
    )
    data = json.loads(done.stdout)
    assert done.returncode == 0 and data["healthy"] is True, data["problems"]
    groups = {g["task"]: g for g in data["failures_by_task"]}
    assert groups["flaky"]["counted"] is False and groups["flaky"]["last_day"] == 48
    assert groups["flaky"]["ignored_because"] == "disabled"
    assert groups["gone"]["ignored_because"] == "not in the task file"
    assert groups["flaky"]["last_failure"]["exit_code"] == 3
    assert len(data["failures_last_hour"]) == 14  # the runs, as before (backward compatible)
