"""Issue 17's scenario "two hosts with different definitions of one task, reported"
(README.md#task-files-that-differ, docs/reliability.md "Several serves, one history"): three
real serves on the session's PostgreSQL, host-a and host-c with one task file, host-b with its
own copy where one task's `command` and another's `timeout` differ and a task of the others is
missing. `cronctl status` and `cronctl check` (the real CLI, text, --json, a terminal of 80
columns) name the tasks, the hosts and the keys, never a value; a stopped host's definitions
count for nothing; once host-b's file is fixed, its serve reloads it and the report clears.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.cli.test_layout_pty import pty_run, tables
from tests.fleet.harness import Fleet, fleet
from tests.fleet.test_fleet_cli import _cli
from tests.support import wait_for

pytest.importorskip("psycopg")

LIMIT = 60.0  # a loaded machine; the measured figures are in the report
TASK = '[tasks.{name}]\nschedule = "0 3 1 1 *"\ncommand = "{command}"\n{extra}\n'
SECRET = "token=hunter2-on-a"
RIGHT = (
    TASK.format(name="backup", command=f"backup.sh --{SECRET}", extra="")
    + TASK.format(name="report", command="report.sh", extra='timeout = "1h"')
    + TASK.format(name="rotate", command="rotate.sh", extra="retries = 0")
    + TASK.format(name="only-a", command="only.sh", extra="")
)
DRIFTED = (
    TASK.format(name="backup", command="backup.sh --token=other-on-b", extra="")
    + TASK.format(name="report", command="report.sh", extra='timeout = "2h"')
    + TASK.format(name="rotate", command="rotate.sh", extra="")  # retries left at its default
)
# Values of the two files no output may hold. Words only: a timeout (3600) could be part of
# a pid or a time's fraction by chance; the JSON is searched for it as a number instead.
VALUES = ("hunter2", "other-on-b", "backup.sh", "report.sh", "only.sh")
TIMEOUTS = {3600, 7200}


def numbers(value: object) -> set[object]:
    """Every number of a JSON document, but pids."""
    if isinstance(value, dict):
        return {n for key, item in value.items() if key != "pid" for n in numbers(item)}
    if isinstance(value, list):
        return {n for item in value for n in numbers(item)}
    return {value} if isinstance(value, int | float) and not isinstance(value, bool) else set()


def definitions_written(hosts: Fleet, host: str, count: int) -> None:
    wait_for(
        lambda: (
            hosts.rows("SELECT count(*) FROM task_definitions WHERE host = %s", (host,))
            == [(count,)]
        ),
        timeout=LIMIT,
        what=f"{count} task definitions of {host}",
    )


def test_hosts_with_different_definitions_are_reported_by_status_and_check_then_clear(
    tmp_path, cronctl_exe, pg_url, monkeypatch
):
    started = time.monotonic()
    with fleet(tmp_path, cronctl_exe, pg_url) as hosts:
        for name, text in (("host-a", RIGHT), ("host-b", DRIFTED), ("host-c", RIGHT)):
            hosts.start(name, text)
        for host in hosts.hosts.values():
            host.wait_started()
        # A host whose serve stopped cleanly: its rows say what it last ran, and count for
        # nothing (not live).
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute(
                "INSERT INTO serves (host, pid, version, started_at, heartbeat_at, stopped_at)"
                " VALUES ('host-old', 1, '0.1', 0, 0, 0)"
            )
            db.execute(
                "INSERT INTO task_definitions VALUES"
                " ('host-old', 'gone', 'ffffffffffffffff', '{}', 0)"
            )
        for name, count in (("host-a", 4), ("host-b", 3), ("host-c", 4)):
            definitions_written(hosts, name, count)
        ready = time.monotonic() - started
        home_a, home_b = hosts.hosts["host-a"].home, hosts.hosts["host-b"].home

        status = _cli(cronctl_exe, ["status"], home_a, pg_url)
        assert status.returncode == 1, status.stdout + status.stderr
        text = status.stdout
        line = "  - 2 tasks defined differently on the hosts: backup (command), report (timeout)"
        assert line in text, text
        assert "  - 1 task not on every host: only-a (not on host-b)" in text, text
        table = text[text.index("task definitions that differ between hosts:") :].splitlines()
        assert table[1] == "task\tdiffers_in\tdefinitions\tmissing_on", table
        rows = {line.split("\t")[0]: line.split("\t") for line in table[2:] if "\t" in line}
        assert set(rows) == {"backup", "only-a", "report"}  # rotate: retries = 0 is the default
        assert rows["backup"][1] == "command" and rows["report"][1] == "timeout"
        assert (
            rows["backup"][2].startswith("host-a, host-c: ") and "; host-b: " in rows["backup"][2]
        )
        assert rows["only-a"][1:] == [rows["only-a"][1], rows["only-a"][2], "host-b"]
        problems = [line for line in text.splitlines() if line.startswith("  - ")]
        assert len(problems) == 2, text  # host-old stopped cleanly: no problem, not compared
        assert "gone" not in text and not any("host-old" in line for line in table), text
        report = json.loads(_cli(cronctl_exe, ["status", "--json"], home_a, pg_url).stdout)
        divergent = {d["task"]: d for d in report["divergent"]}
        assert set(divergent) == {"backup", "only-a", "report"}
        assert divergent["report"]["keys"] == ["timeout"]
        assert [v["hosts"] for v in divergent["backup"]["definitions"]] == [
            ["host-a", "host-c"],
            ["host-b"],
        ]
        assert divergent["only-a"] == {
            "task": "only-a",
            "keys": [],
            "definitions": [
                {
                    "digest": divergent["only-a"]["definitions"][0]["digest"],
                    "hosts": ["host-a", "host-c"],
                }
            ],
            "missing_on": ["host-b"],
        }

        checked = _cli(cronctl_exe, ["check"], home_b, pg_url, host="host-b")
        assert checked.returncode == 0, checked.stderr  # warnings: the file itself is valid
        assert checked.stderr.splitlines() == [
            "warning: task 'backup': defined differently by the serve of host-a, host-c"
            " (differs in: command)",
            "warning: task 'only-a': not in this task file, but the serve of host-a, host-c"
            " runs it",
            "warning: task 'report': defined differently by the serve of host-a, host-c"
            " (differs in: timeout)",
            "compared with the serves of host-a, host-c: 3 tasks differ.",
            f"{home_b / 'tasks.toml'}: 3 tasks, valid, 3 warnings.",
        ]
        shape = json.loads(_cli(cronctl_exe, ["check", "--json"], home_b, pg_url, "host-b").stdout)
        assert shape["compared_with"] == ["host-a", "host-c"]
        assert [(d["task"], d["keys"]) for d in shape["divergent"]] == [
            ("backup", ["command"]),
            ("only-a", []),
            ("report", ["timeout"]),
        ]
        monkeypatch.setenv("CRONCTL_DB", pg_url)
        monkeypatch.setenv("CRONCTL_HOST", "host-a")
        screen = pty_run(cronctl_exe, ["status"], home_a, 80)
        assert max(len(line) for line in screen.splitlines()) <= 80, screen
        [(headers, cells)] = tables(screen)
        assert headers == ["Task", "Differs in", "Definitions", "Missing on"], screen
        assert [row[0] for row in cells] == ["backup", "only-a", "report"], screen
        print(f"\nstatus at 80 columns:\n{screen}")
        for output in (text, json.dumps(report), checked.stderr, json.dumps(shape), screen):
            for value in VALUES:
                assert value not in output, (value, output)
        assert not (numbers(report) | numbers(shape)) & TIMEOUTS

        (home_b / "tasks.toml").write_text(RIGHT)  # fixed: serve reloads it within 2 s
        fixed_at = time.monotonic()
        definitions_written(hosts, "host-b", 4)
        wait_for(
            lambda: _cli(cronctl_exe, ["status"], home_a, pg_url).returncode == 0,
            timeout=LIMIT,
            what="status healthy again",
        )
        cleared = time.monotonic() - fixed_at
        clean = _cli(cronctl_exe, ["check"], home_b, pg_url, host="host-b")
        assert clean.stderr.splitlines() == [
            "compared with the serves of host-a, host-c: no task differs.",
            f"{home_b / 'tasks.toml'}: 4 tasks, valid.",
        ]
        assert (
            json.loads(_cli(cronctl_exe, ["status", "--json"], home_a, pg_url).stdout)["divergent"]
            == []
        )
        logs = hosts.stop_all()
    for name, log in logs.items():
        assert "Traceback" not in log, (name, log)
    print(
        f"\ndefinitions of 3 hosts written {ready:.1f} s after start; report cleared"
        f" {cleared:.1f} s after the fix; whole scenario {time.monotonic() - started:.1f} s"
    )
