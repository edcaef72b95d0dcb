"""Fields with `H` are each task's own, but tasks whose names hash alike share one field and
one CronSpec (cronctl/schedule/fields.py parse_field, spec.parse_cron): the same values and the
same slots as a parse of their own, made once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cronctl.schedule import Schedule
from cronctl.schedule.fields import KINDS, _read_field
from cronctl.schedule.spec import CronSpec

NAMES = [f"task-{n:05d}" for n in range(2000)]


def own_spec(text: str, name: str) -> CronSpec:
    """The CronSpec of `text` for `name`, every field read again, nothing shared."""
    return CronSpec(
        tuple(_read_field(part, kind, name) for part, kind in zip(text.split(), KINDS, strict=True))
    )


@pytest.mark.parametrize("text", ["H * * * *", "H H * * *", "H(0-29)/10 H(8-17) * * H"])
def test_tasks_that_hash_alike_share_their_fields_and_slots(text):
    schedules = [Schedule.parse(text, timezone="Europe/Paris", name=name) for name in NAMES]
    specs = {id(s.cron): s.cron for s in schedules}
    resolved = {tuple(tuple(sorted(f.values)) for f in own_spec(text, n).fields) for n in NAMES}
    assert len(specs) == len(resolved) < len(NAMES)
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Paris moves to summer time
    for schedule in schedules[:200]:
        assert schedule.cron is not None and schedule.name is not None
        own = own_spec(text, schedule.name)
        assert schedule.cron.fields == own.fields
        alone = Schedule(text, schedule.zone, schedule.name, cron=own)
        moment = start
        for _ in range(3):
            moment += timedelta(hours=7)
            assert schedule.next_after(moment) == alone.next_after(moment)


def test_a_hashed_field_that_never_fires_is_refused_each_time():
    for _ in range(2):
        with pytest.raises(ValueError, match="never fires"):
            Schedule.parse("0 0 H(30-31) 2 *", name="x")
