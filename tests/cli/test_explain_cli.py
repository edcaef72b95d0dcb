"""`cronctl explain`, and `list` showing the same words from the same schedule module."""

from __future__ import annotations

import json

import pytest

from cronctl.schedule import Schedule


def test_explain_text_shows_weekday_offset_and_dst_note(cli):
    result = cli(
        "explain",
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--from",
        "2026-03-06T12:00",
        "--count",
        "3",
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "At 02:30 every day."
    # Piped: ISO 8601 to the second first (the terminal form is in tests/cli/test_layout_pty.py).
    assert "  2026-03-07T02:30:00-05:00  Sat EST" in lines
    assert "  2026-03-08T03:00:00-04:00  Sun EDT" in lines
    assert any(
        line.startswith("note: 2026-03-08") and "fires at 03:00 EDT instead" in line
        for line in lines
    )


def test_explain_json(cli):
    result = cli(
        "explain",
        "0 0 1,15 * MON",
        "--tz",
        "UTC",
        "--from",
        "2026-03-06T00:00Z",
        "--count",
        "3",
        "--json",
    )
    data = json.loads(result.stdout)
    assert data["expression"] == "0 0 1,15 * MON" and data["timezone"] == "UTC"
    assert data["description"] == "At 00:00 on the 1st and 15th of the month, and on every Monday."
    assert data["next"] == [
        "2026-03-09T00:00:00+00:00",
        "2026-03-15T00:00:00+00:00",
        "2026-03-16T00:00:00+00:00",
    ]
    assert any("OR" in note for note in data["notes"])


def test_explain_uses_the_machine_zone_by_default(cli, monkeypatch):
    # Issue 14, item 1 changed this test: the machine's zone is /etc/localtime's, not TZ's.
    from cronctl.schedule.zones import machine_timezone

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    result = json.loads(cli("explain", "@daily", "--json").stdout)
    assert result["timezone"] == machine_timezone()


def test_explain_h_needs_and_uses_a_name(cli):
    assert cli("explain", "H * * * *").exit_code == 2
    first = json.loads(cli("explain", "H * * * *", "--name", "backup", "--json").stdout)
    again = json.loads(cli("explain", "H * * * *", "--name", "backup", "--json").stdout)
    assert first["next"] == again["next"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0 0 31 2 *"], "never fires"),
        (["* * * * * *"], "field"),
        (["61 * * * *"], "61"),
        (["@daily", "--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
        (["@daily", "--from", "yesterday"], "is not a date and time"),
        (["@daily", "--count", "0"], "--count"),
    ],
)
def test_explain_bad_input_is_one_line_exit_2(cli, args, message):
    result = cli("explain", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_list_and_explain_use_the_same_schedule_module(cli, monkeypatch):
    """Both views come from Schedule: break describe() and both must change."""
    cli("add", "a", "0 0 1,15 * MON", "true", "--tz", "UTC")
    calls = []
    original = Schedule.describe

    def spy(self, short=False):
        calls.append(short)
        return original(self, short) + " [spy]"

    monkeypatch.setattr(Schedule, "describe", spy)
    listing = json.loads(cli("list", "--json").stdout)
    explained = json.loads(cli("explain", "0 0 1,15 * MON", "--tz", "UTC", "--json").stdout)
    assert listing[0]["summary"].endswith("[spy]") and explained["description"].endswith("[spy]")
    assert calls == [True, False]
