"""Zone names (cronctl.schedule.zones): which names are zones, the machine's zone, and the hint
for a name that is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronctl import model
from cronctl.schedule.zones import is_valid_zone, machine_timezone, zone_hint


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Europe/Berlin", True),
        ("UTC", True),
        ("Etc/GMT-2", True),
        ("localtime", False),
        ("posixrules", False),
        ("posix/Europe/Berlin", False),
        ("../etc/passwd", False),
        ("/etc/localtime", False),
        ("", False),
    ],
)
def test_only_iana_names_are_zones(name, valid):
    assert is_valid_zone(name) is valid


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Europe/Berln", "did you mean 'Europe/Berlin'?"),
        ("europe/berlin", "did you mean 'Europe/Berlin'?"),
        ("new york", "did you mean 'America/New_York'?"),
        ("Kolkata", "did you mean 'Asia/Kolkata'?"),
        ("UTC+2", "a fixed offset is the zone 'Etc/GMT-2' (POSIX inverts the sign)"),
        ("GMT-3", "a fixed offset is the zone 'Etc/GMT+3'"),
        ("-0530", "a zone is an IANA name such as Asia/Kolkata, not an offset"),
        ("Z", "did you mean 'UTC'?"),
        ("posix/Europe/Berlin", "did you mean 'Europe/Berlin'? (posix/ holds copies"),
        ("localtime", "name the zone itself"),
        ("Mars/Base", "use an IANA name such as Europe/Berlin or UTC"),
    ],
)
def test_a_refused_name_gets_the_nearest_zone_or_the_rule(name, hint):
    assert zone_hint(name).startswith(hint)


def test_the_machine_zone_comes_from_the_localtime_link_without_copy_folders(tmp_path, monkeypatch):
    # Issue 14, item 1 changed this test: the zone was TZ's; TZ is no longer read.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    folder = Path("/usr/share/zoneinfo")
    if not (folder / "posix" / "Europe" / "Berlin").exists():
        pytest.skip("no zoneinfo/posix folder")
    link = tmp_path / "localtime"
    link.symlink_to(folder / "posix" / "Europe" / "Berlin")
    assert machine_timezone(link) == "Europe/Berlin"
    assert is_valid_zone(machine_timezone())


def test_the_model_names_the_same_helpers():
    assert model.is_valid_zone is is_valid_zone
    assert model.machine_timezone is machine_timezone and model.zone_hint is zone_hint
