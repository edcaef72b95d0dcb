"""What a person sees of a fleet (README.md#several-serves-one-history): `status` lists every
serve with its host and heartbeat, `history` adds a Host column (at 80 columns on a terminal,
piped in full) and `--json` a `host` key; a serve declared dead is a problem of `status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.cli.test_layout_pty import pty_run, tables
from tests.fleet.harness import every_second, fleet
from tests.support import wait_for

pytest.importorskip("psycopg")

LIMIT = 60


def _cli(exe, args, home, url, host="host-a"):
    env = {**os.environ, "CRONCTL_HOME": str(home), "CRONCTL_DB": url, "CRONCTL_HOST": host}
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, env=env, timeout=LIMIT, check=False
    )


def test_status_and_history_show_every_host(tmp_path, cronctl_exe, pg_url, monkeypatch):
    with fleet(tmp_path, cronctl_exe, pg_url) as hosts:
        for name in ("host-a", "host-b"):
            hosts.start(name, every_second(2), "--lease", "3")
        for host in hosts.hosts.values():
            host.wait_started()
        wait_for(
            lambda: len(hosts.rows("SELECT DISTINCT host FROM runs")) == 2,
            timeout=LIMIT,
            what="runs on both hosts",
        )
        home = hosts.hosts["host-a"].home
        status = _cli(cronctl_exe, ["status"], home, pg_url)
        assert status.returncode == 0, status.stdout + status.stderr
        lines = status.stdout.splitlines()
        assert lines[1].startswith("serve") and " on host-a," in lines[1], lines
        assert lines[2].lstrip().startswith("host-b") and "running (pid" in lines[2], lines
        report = json.loads(_cli(cronctl_exe, ["status", "--json"], home, pg_url).stdout)
        assert report["serve"]["hostname"] == "host-a"  # the key it always had, unchanged
        assert [s["hostname"] for s in report["serves"]] == ["host-a", "host-b"]
        assert all(s["running"] and s["lease_seconds"] == 3.0 for s in report["serves"])
        assert all(0 <= s["heartbeat_age_seconds"] < 30 for s in report["serves"])

        history = _cli(cronctl_exe, ["history", "--limit", "20"], home, pg_url).stdout
        header, *rows = history.splitlines()
        assert header.split()[-1] == "HOST" or header.split()[-1].lower() == "host", header
        assert {row.split()[-1] for row in rows} == {"host-a", "host-b"}, history
        runs = json.loads(_cli(cronctl_exe, ["history", "--json"], home, pg_url).stdout)
        assert {run["host"] for run in runs} == {"host-a", "host-b"}

        monkeypatch.setenv("CRONCTL_DB", pg_url)
        monkeypatch.setenv("CRONCTL_HOST", "host-a")
        screen = pty_run(cronctl_exe, ["history", "--limit", "5"], home, 80)
        [(headers, cells)] = tables(screen)
        assert max(len(line) for line in screen.splitlines()) <= 80, screen
        print(f"\nhistory at 80 columns:\n{screen}")
        wide = pty_run(cronctl_exe, ["history", "--limit", "5"], home, 120)
        [(wide_headers, _)] = tables(wide)
        assert "Host" in wide_headers, wide

        hosts.hosts["host-b"].kill(signal.SIGKILL)
        wait_for(
            lambda: hosts.rows("SELECT 1 FROM serves WHERE declared_dead_at IS NOT NULL"),
            timeout=LIMIT,
            what="host-b declared dead",
        )
        status = _cli(cronctl_exe, ["status"], home, pg_url)
        assert status.returncode == 1, status.stdout
        assert "- serve on host-b was declared dead by host-a at " in status.stdout, status.stdout
        assert "not running: declared dead by host-a at " in status.stdout, status.stdout
        print(f"\nstatus after kill -9 of host-b:\n{status.stdout}")


@pytest.mark.parametrize("value", ["0.5", "-1", "nan", "inf", "86401"])
def test_serve_refuses_a_lease_out_of_range(tmp_path, cronctl_exe, value):
    env = {**os.environ, "CRONCTL_HOME": str(tmp_path)}
    done = subprocess.run(
        [*cronctl_exe, "serve", "--lease", value],
        capture_output=True,
        text=True,
        env=env,
        timeout=LIMIT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --lease must be from 1 to 86400 seconds"), done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "history.db").exists()


def test_status_names_a_host_whose_heartbeat_is_late_and_counts_it_a_problem(
    tmp_path, cronctl_exe, pg_url
):
    """A serve cut off from the database (here: stopped) shows on `status` of the other
    hosts once two of its heartbeats are missing (lease 12 s: one each 4 s, late after 8 s),
    before its lease runs out and a survivor declares it dead."""
    with fleet(tmp_path, cronctl_exe, pg_url) as hosts:
        for name in ("host-a", "host-b"):
            hosts.start(name, every_second(1), "--lease", "12")
        for host in hosts.hosts.values():
            host.wait_started()
        home = hosts.hosts["host-a"].home
        assert _cli(cronctl_exe, ["status"], home, pg_url).returncode == 0
        hosts.hosts["host-b"].kill(signal.SIGSTOP)

        def late():
            status = _cli(cronctl_exe, ["status"], home, pg_url)
            return status if "serve on host-b: its last heartbeat is" in status.stdout else None

        status = wait_for(late, timeout=LIMIT, interval=0.5, what="host-b late on status")
        hosts.hosts["host-b"].kill(signal.SIGCONT)
        assert status.returncode == 1, status.stdout
        [line] = [line for line in status.stdout.splitlines() if "host-b: its last" in line]
        assert line.endswith("old, late (lease 12 s)"), line
        seconds = int(line.split("is ")[1].split("s old")[0])
        assert 8 <= seconds <= 12, line
        [row] = [line for line in status.stdout.splitlines() if line.lstrip().startswith("host-b")]
        assert row.split(None, 1)[1].startswith("late: last heartbeat at "), row
        assert row.endswith(" on host-b)") and " (pid " in row, row
        print(f"\nstatus of host-a while host-b is late:\n{status.stdout}")
        wait_for(
            lambda: _cli(cronctl_exe, ["status"], home, pg_url).returncode == 0,
            timeout=LIMIT,
            interval=0.5,
            what="healthy again once host-b beats",
        )
