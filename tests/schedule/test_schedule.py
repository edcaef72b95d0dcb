"""schedule/schedule.py: parsed schedules shared by the tasks that have the same one."""

from __future__ import annotations

from cronctl.schedule import Schedule, SharedAnswers


def test_tasks_share_a_parsed_schedule_unless_it_hashes_their_name():
    """Schedule.parse of one text and zone for many tasks shares the parsed cron fields (one
    parse for 100,000 tasks); each keeps its own name; `H` gives each task its own fields."""
    first = Schedule.parse("*/5 * * * *", timezone="Europe/Berlin", name="a")
    second = Schedule.parse("*/5 * * * *", timezone="Europe/Berlin", name="b")
    assert first.cron is second.cron and (first.name, second.name) == ("a", "b")
    assert Schedule.parse("*/5 * * * *", timezone="UTC", name="a").zone.key == "UTC"
    hashed = [Schedule.parse("H H * * *", name=name) for name in ("a", "b", "c", "d")]
    assert len({id(s.cron) for s in hashed}) == 4
    assert len({(tuple(s.cron.minutes), tuple(s.cron.hours)) for s in hashed}) > 1
    answers = SharedAnswers(lambda schedule: object())
    assert answers(first) is answers(second)
    assert answers(hashed[0]) is not answers(hashed[1])
