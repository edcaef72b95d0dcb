"""explain(): description, fire times, notes on DST and cron's rules, and the JSON shape."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

from cronctl.errors import ScheduleError, UsageError
from cronctl.schedule import Schedule
from cronctl.schedule.explain import Explanation, explain

NY = "America/New_York"


def _notes(text: str, zone: str, start: str, count: int = 5, name: str | None = None) -> list[str]:
    return explain(text, zone, count, start=datetime.fromisoformat(start), name=name).notes


def test_fixed_time_run_in_a_spring_gap() -> None:
    assert _notes("30 2 * * *", NY, "2026-03-06T00:00-05:00") == [
        (
            "2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; "
            "the 02:30 run fires at 03:00 EDT instead"
        )
    ]


def test_several_fixed_time_runs_in_a_spring_gap_fire_once() -> None:
    (note,) = _notes("0,30 2 * * *", NY, "2026-03-07T12:00-05:00")
    assert note.endswith("its runs at 02:00 and 02:30 fire once, at 03:00 EDT instead")


def test_wildcard_runs_in_a_spring_gap_are_skipped() -> None:
    (note,) = _notes("*/30 * * * *", NY, "2026-03-08T01:00-05:00", count=4)
    assert note == (
        "2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; "
        "wall times 02:00-02:59 do not exist, so its runs at 02:00 and 02:30 are skipped"
    )


def test_wildcard_runs_in_a_repeated_hour_fire_twice() -> None:
    (note,) = _notes("*/15 1 * * *", NY, "2026-10-31T12:00-04:00", count=10)
    assert note == (
        "2026-11-01: clocks go back from 02:00 EDT to 01:00 EST; 01:00-01:59 happens twice; "
        "the task fires in both passes (01:00, 01:15, 01:30 and 01:45)"
    )


def test_fixed_time_run_in_a_repeated_hour_fires_once() -> None:
    (note,) = _notes("30 1 * * *", NY, "2026-10-31T12:00-04:00")
    assert note.endswith(
        "01:00-01:59 happens twice; the 01:30 run fires only in the first pass (EDT)"
    )


def test_a_transition_that_misses_the_task_is_mentioned_as_harmless() -> None:
    (note,) = _notes("0 12 * * *", NY, "2026-03-07T00:00-05:00")
    assert note == (
        "2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; "
        "this task has no run in 02:00-02:59, so it is unaffected"
    )


def test_only_transitions_inside_the_shown_range_get_a_note() -> None:
    assert _notes("0 12 * * *", NY, "2026-03-09T00:00-04:00") == []
    assert _notes("0 12 * * *", NY, "2026-03-01T00:00-05:00", count=3) == []


def test_half_hour_and_odd_hour_transitions() -> None:
    (howe,) = _notes("*/15 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00+11:00", count=9)
    assert howe.startswith("2026-04-05: clocks go back from 02:00 +11 to 01:30 +1030; ")
    assert "01:30-01:59 happens twice; the task fires in both passes (01:30 and 01:45)" in howe
    (chatham,) = _notes("0 3 * * *", "Pacific/Chatham", "2026-09-26T12:00+12:45", count=2)
    assert chatham == (
        "2026-09-27: clocks jump from 02:45 +1245 to 03:45 +1345; "
        "the 03:00 run fires at 03:45 +1345 instead"
    )


def test_day_combination_notes() -> None:
    (or_note,) = _notes("0 0 1,15 * MON", "UTC", "2026-03-01T00:00+00:00")
    assert or_note.startswith("days combine by OR")
    (and_note,) = _notes("0 0 */2 * MON", "UTC", "2026-03-01T00:00+00:00")
    assert and_note.startswith("days combine by AND: '*/2' starts with '*'")
    assert _notes("0 0 1,15 * *", "UTC", "2026-03-01T00:00+00:00") == []


def test_h_notes_name_the_resolved_values() -> None:
    schedule = Schedule.parse("H 2 * * *", name="backup")
    assert schedule.cron is not None
    (minute,) = schedule.cron.minute.values
    assert _notes("H 2 * * *", "UTC", "2026-03-01T00:00+00:00", name="backup") == [
        f"H resolved to minute {minute} from the task name 'backup'"
    ]
    with pytest.raises(ScheduleError, match="needs a task name"):
        explain("H 2 * * *", start=datetime(2026, 3, 1))


def test_every_and_reboot_notes() -> None:
    notes = _notes("@every 1h", NY, "2026-03-08T00:30-05:00", count=3)
    assert notes[0].startswith("slots are whole multiples of 1h since 1970-01-01 00:00 UTC")
    assert notes[1] == (
        "2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; "
        "@every slots are absolute instants, so only their wall-clock times shift"
    )
    reboot = explain("@reboot", NY, start=datetime(2026, 3, 1))
    assert reboot.next == [] and "once each time cronctl serve starts" in reboot.notes[0]


def test_to_json_shape() -> None:
    result = explain("30 2 * * *", NY, 3, start=datetime.fromisoformat("2026-03-07T12:00-05:00"))
    data = result.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "expression": "30 2 * * *",
        "timezone": NY,
        "description": "At 02:30 every day.",
        "next": [
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
            "2026-03-10T02:30:00-04:00",
        ],
        "notes": result.notes,
    }
    assert [datetime.fromisoformat(t) for t in result.to_json()["next"]] == result.next  # type: ignore[attr-defined]


def test_explanation_is_frozen_and_needs_a_start() -> None:
    result = explain("@daily", start=datetime(2026, 3, 1))
    assert isinstance(result, Explanation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.description = "x"  # type: ignore[misc]
    with pytest.raises(UsageError, match="start"):
        explain("@daily")
    assert explain("@daily", count=0, start=datetime(2026, 3, 1)).next == []
