"""The zone a task runs in is the zone `add` confirmed (issue 14, item 1): a task's `timezone`,
else the [defaults] timezone, else the system zone (/etc/localtime), else UTC. $TZ of the calling
shell is not read; when it differs, add, list and explain say so in one note line. The CLI and a
real serve, each with its own TZ, agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronctl.schedule.zones import (
    DefaultZone,
    default_zone,
    ignored_tz_note,
    machine_timezone,
)
from tests import support

ZONEINFO = Path("/usr/share/zoneinfo")
SYSTEM = machine_timezone()  # this machine's /etc/localtime, whatever it is
# Two zones other than the system zone, and of other UTC offsets than it and each other.
OTHERS = [
    z
    for z in ("Asia/Tokyo", "America/Los_Angeles", "Europe/Paris")
    if datetime.now(ZoneInfo(z)).utcoffset() != datetime.now(ZoneInfo(SYSTEM)).utcoffset()
][:2]
SOURCE = "the system zone (/etc/localtime)"
wait_for = partial(support.wait_for, timeout=30.0)

needs_zoneinfo = pytest.mark.skipif(not ZONEINFO.is_dir(), reason="no /usr/share/zoneinfo")


# Where the test's localtime links to | the system zone read from it
LINKS = """
Europe/Paris          | Europe/Paris
Asia/Tokyo            | Asia/Tokyo
posix/Europe/Berlin   | Europe/Berlin
Etc/UTC               | Etc/UTC
"""


@needs_zoneinfo
@pytest.mark.parametrize(
    ("target", "zone"),
    [tuple(p.strip() for p in line.split("|")) for line in LINKS.strip().splitlines()],
)
def test_c1_the_system_zone_is_the_localtime_link_not_tz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, zone: str
) -> None:
    if not (ZONEINFO / target).exists():
        pytest.skip(f"no {ZONEINFO / target}")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    link = tmp_path / "localtime"
    link.symlink_to(ZONEINFO / target)
    assert machine_timezone(link) == zone
    assert default_zone(None, link) == DefaultZone(zone, f"the system zone ({link})")


def test_c1_no_link_is_utc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert machine_timezone(tmp_path / "missing") == "UTC"
    plain = tmp_path / "localtime"
    plain.write_bytes(b"TZif")  # a copy, not a link: its name is unknown
    assert machine_timezone(plain) == "UTC"


def test_c1_defaults_timezone_comes_before_the_system_zone(tmp_path: Path) -> None:
    assert default_zone("Asia/Tokyo", tmp_path / "missing") == DefaultZone(
        "Asia/Tokyo", "the [defaults] timezone of the task file"
    )


# TZ | the zone used | the note (- for none)
NOTES = """
-                      | Europe/Paris | -
Europe/Paris           | Europe/Paris | -
:Europe/Paris          | Europe/Paris | -
UTC                    | Etc/UTC      | -
Asia/Tokyo             | Europe/Paris | note: TZ=Asia/Tokyo is ignored; tasks run in Europe/Paris, the system zone (/etc/localtime)
"""  # noqa: E501


@pytest.mark.parametrize(
    ("tz", "zone", "note"),
    [tuple(p.strip() for p in line.split("|")) for line in NOTES.strip().splitlines()],
)
def test_c1_the_note_when_tz_differs(tz: str, zone: str, note: str) -> None:
    environ = {} if tz == "-" else {"TZ": tz}
    expected = None if note == "-" else note
    assert ignored_tz_note(DefaultZone(zone, SOURCE), environ) == expected


def _cli(
    exe: list[str], home: Path, tz: str | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRONCTL_HOME": str(home), "NO_COLOR": "1"}
    env.pop("TZ", None)
    if tz is not None:
        env["TZ"] = tz
    return subprocess.run([*exe, *args], capture_output=True, text=True, env=env, timeout=60)


def _note(tz: str) -> str:
    return f"note: TZ={tz} is ignored; tasks run in {SYSTEM}, {SOURCE}"


def test_c1_add_list_and_explain_use_the_system_zone_whatever_tz(
    cronctl_exe: list[str], tmp_path: Path
) -> None:
    paris, tokyo = OTHERS
    added = _cli(cronctl_exe, tmp_path, paris, "add", "nine", "0 9 * * *", "true", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["timezone"] == SYSTEM  # what add confirmed
    assert _note(paris) in added.stderr.splitlines()
    for tz in (None, paris, tokyo):
        listed = _cli(cronctl_exe, tmp_path, tz, "list", "--json")
        assert [t["timezone"] for t in json.loads(listed.stdout)] == [SYSTEM], tz
        notes = [line for line in listed.stderr.splitlines() if line.startswith("note: TZ=")]
        assert notes == ([] if tz is None else [_note(tz)])
        explained = _cli(cronctl_exe, tmp_path, tz, "explain", "0 9 * * *", "--json")
        assert json.loads(explained.stdout)["timezone"] == SYSTEM
        assert (_note(tz) in explained.stderr) is (tz is not None)
    # A zone of the task's own: no note, whatever TZ says.
    own = _cli(cronctl_exe, tmp_path, tokyo, "add", "own", "@daily", "true", "--tz", paris)
    assert own.returncode == 0 and "note: TZ=" not in own.stderr


def test_c1_defaults_timezone_is_the_zone_of_add_list_and_explain(
    cronctl_exe: list[str], tmp_path: Path
) -> None:
    paris, tokyo = OTHERS
    (tmp_path / "tasks.toml").write_text(f'[defaults]\ntimezone = "{paris}"\n')
    added = _cli(cronctl_exe, tmp_path, tokyo, "add", "nine", "0 9 * * *", "true", "--json")
    assert json.loads(added.stdout)["timezone"] == paris
    note = f"note: TZ={tokyo} is ignored; tasks run in {paris}, the [defaults] timezone of the"
    assert f"{note} task file" in added.stderr.splitlines()
    listed = _cli(cronctl_exe, tmp_path, tokyo, "list")
    assert f"{note} task file" in listed.stderr.splitlines()
    explained = _cli(cronctl_exe, tmp_path, tokyo, "explain", "@daily", "--json")
    assert json.loads(explained.stdout)["timezone"] == paris


def test_c1_serve_and_the_cli_agree_whatever_their_tz(
    cronctl_exe: list[str], tmp_path: Path
) -> None:
    """serve under systemd has no TZ or another one than the user's shell: it plans the task in
    the zone `add` confirmed and `list` shows."""
    paris, tokyo = OTHERS
    added = _cli(cronctl_exe, tmp_path, paris, "add", "nine", "0 9 * * *", "true", "--json")
    confirmed = datetime.fromisoformat(json.loads(added.stdout)["next"][0])
    env = {**os.environ, "CRONCTL_HOME": str(tmp_path), "TZ": tokyo}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen([*cronctl_exe, "serve"], stderr=log, env=env)
        try:
            wait_for(lambda: "serve" in log_path.read_text() or serve.poll() is not None)
            time.sleep(0.5)
            serve.send_signal(signal.SIGUSR1)
            line = wait_for(
                lambda: next(
                    (x for x in log_path.read_text().splitlines() if "state: task nine:" in x),
                    None,
                ),
                what="serve's state line for the task",
            )
        finally:
            serve.terminate()
            serve.wait(30)
    planned = datetime.fromisoformat(line.split(" next ", 1)[1].split(" ", 1)[0])
    assert planned == confirmed, (line, confirmed)
    assert planned.astimezone(ZoneInfo(SYSTEM)).hour == 9
    listed = _cli(cronctl_exe, tmp_path, tokyo, "list", "--json")
    assert datetime.fromisoformat(json.loads(listed.stdout)[0]["next_run"]) == planned
