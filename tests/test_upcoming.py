"""cronctl/upcoming.py: the next fire times of the tasks merged in time order (issue 15, item
3). Expected times are derived by hand from the README's rules (zones, daylight saving,
`@every` since the epoch, jitter after the slot)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.model import Task
from cronctl.records import Run, Status, Trigger
from cronctl.upcoming import MAX_ROWS, fire_json, merged_fires, upcoming


def task(name: str, schedule: str, zone: str = "UTC", **keys: object) -> Task:
    return Task(name=name, schedule=schedule, command="true", timezone=zone, **keys)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (case, tasks, now, count, expected: (task, ISO time in the task's zone, window end or None))
CASES = [
    (
        "fall back: a fixed-time task fires in the first pass only",
        [task("a", "30 1 * * *", "America/New_York")],
        "2026-11-01T04:00:00+00:00",
        2,
        [("a", "2026-11-01T01:30:00-04:00", None), ("a", "2026-11-02T01:30:00-05:00", None)],
    ),
    (
        "fall back: a wildcard task fires in both passes, in instant order",
        [task("a", "*/30 1 * * *", "America/New_York")],
        "2026-11-01T04:00:00+00:00",
        4,
        [
            ("a", "2026-11-01T01:00:00-04:00", None),
            ("a", "2026-11-01T01:30:00-04:00", None),
            ("a", "2026-11-01T01:00:00-05:00", None),
            ("a", "2026-11-01T01:30:00-05:00", None),
        ],
    ),
    (
        "spring forward: a fixed-time task in the gap fires at the first instant after it",
        [task("a", "30 2 * * *", "America/New_York")],
        "2026-03-08T05:00:00+00:00",
        2,
        [("a", "2026-03-08T03:00:00-04:00", None), ("a", "2026-03-09T02:30:00-04:00", None)],
    ),
    (
        "a task in another zone than the machine's, merged by instant with a UTC one",
        [task("tokyo", "0 9 * * *", "Asia/Tokyo"), task("utc", "30 23 * * *")],
        "2026-12-05T20:00:00+00:00",
        3,
        [
            ("utc", "2026-12-05T23:30:00+00:00", None),
            ("tokyo", "2026-12-06T09:00:00+09:00", None),  # 00:00 UTC
            ("utc", "2026-12-06T23:30:00+00:00", None),
        ],
    ),
    (
        "@every: slots at multiples of the interval since the epoch, in the task's zone",
        [task("e", "@every 7h", "Europe/Berlin")],
        "2026-12-05T00:00:00+00:00",
        2,
        [("e", "2026-12-05T02:00:00+01:00", None), ("e", "2026-12-05T09:00:00+01:00", None)],
    ),
    (
        "jitter: the window serve starts it in; ties by task name",
        [task("b", "0 * * * *"), task("a", "0 * * * *", jitter=300)],
        "2026-12-05T00:00:00+00:00",
        3,
        [
            ("a", "2026-12-05T01:00:00+00:00", "2026-12-05T01:05:00+00:00"),
            ("b", "2026-12-05T01:00:00+00:00", None),
            ("a", "2026-12-05T02:00:00+00:00", "2026-12-05T02:05:00+00:00"),
        ],
    ),
    (
        "disabled and @reboot tasks are left out",
        [
            task("off", "* * * * *", enabled=False),
            task("boot", "@reboot"),
            task("on", "@daily"),
        ],
        "2026-12-05T12:00:00+00:00",
        3,
        [
            ("on", "2026-12-06T00:00:00+00:00", None),
            ("on", "2026-12-07T00:00:00+00:00", None),
            ("on", "2026-12-08T00:00:00+00:00", None),
        ],
    ),
]


@pytest.mark.parametrize(
    ("tasks", "now", "count", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_fire_times_merged_in_time_order(tasks, now, count, expected):
    found = upcoming(tasks, at(now), count=count)
    shown = [
        (
            f.task.name,
            f.at.isoformat(),
            None if f.window_end is None else f.window_end.isoformat(),
        )
        for f in found.fires
    ]
    assert shown == expected
    assert not found.cut


# (count, within, how many rows of one `*/10` task from 00:00, cut)
BOUNDS = [
    (None, None, 10, False),  # the default count
    (3, None, 3, False),
    (None, timedelta(hours=1), 6, False),  # within alone: every fire time in it (:10 .. :60)
    (3, timedelta(hours=1), 3, False),  # both: the smaller
    (20, timedelta(minutes=25), 2, False),
    (None, timedelta(minutes=5), 0, False),
]


@pytest.mark.parametrize(("count", "within", "rows", "cut"), BOUNDS)
def test_count_and_within_bound_the_rows(count, within, rows, cut):
    found = upcoming(
        [task("t", "*/10 * * * *")], at("2026-12-05T00:00:00+00:00"), count=count, within=within
    )
    assert len(found.fires) == rows
    assert found.cut is cut
    if within is not None:
        assert all(f.at <= at("2026-12-05T00:00:00+00:00") + within for f in found.fires)


def test_within_alone_is_capped_and_says_so():
    found = upcoming([task("s", "@every 1s")], at("2026-12-05T00:00:00+00:00"), count=None,
                     within=timedelta(days=1))  # fmt: skip
    assert len(found.fires) == MAX_ROWS and found.cut


def test_last_run_is_asked_once_per_listed_task_only():
    asked: list[str] = []
    run = Run(
        id=7, task="a", trigger=Trigger.SCHEDULE, attempt=1, scheduled_at=None,
        started_at=at("2026-12-04T23:00:00+00:00"), finished_at=None, duration_ms=5,
        status=Status.FAILED, exit_code=1, signal=None, pid=None, reason=None,
    )  # fmt: skip

    def last_run(name: str) -> Run | None:
        asked.append(name)
        return run if name == "a" else None

    tasks = [task("a", "@hourly"), task("b", "@hourly"), task("late", "@yearly")]
    found = upcoming(tasks, at("2026-12-05T00:00:00+00:00"), count=4, last_run=last_run)
    assert sorted(asked) == ["a", "b"]  # `late` is not listed: never asked
    assert [f.last for f in found.fires] == [run, None, run, None]


def test_json_shape():
    fire = upcoming(
        [task("j", "0 9 * * *", "Europe/Berlin", jitter=600, after=("x",))],
        at("2026-12-05T00:00:00+00:00"),
        count=1,
    ).fires[0]
    assert fire_json(fire) == {
        "task": "j",
        "at": "2026-12-05T09:00:00+01:00",
        "timezone": "Europe/Berlin",
        "schedule": "0 9 * * *",
        "means": fire.summary,
        "jitter_seconds": 600,
        "jitter_window": {"start": "2026-12-05T09:00:00+01:00", "end": "2026-12-05T09:10:00+01:00"},
        "after": ["x"],
        "last_run": None,
    }


SCHEDULES = st.sampled_from(
    ["*/7 * * * *", "0 */3 * * *", "@every 90s", "@every 2h", "30 1 * * *", "0 0 * * MON",
     "15,45 * * * *", "@hourly"]
)  # fmt: skip
ZONES = st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(SCHEDULES, ZONES), min_size=1, max_size=6),
    st.integers(min_value=1_700_000_000, max_value=1_900_000_000),
    st.integers(min_value=1, max_value=40),
)
def test_the_merge_is_every_tasks_own_times_sorted(specs, stamp, count):
    """The heap merge lists what sorting each task's own first `count` fire times would:
    by instant, ties by name."""
    tasks = [task(f"t{i}", schedule, zone) for i, (schedule, zone) in enumerate(specs)]
    now = datetime.fromtimestamp(stamp, UTC)
    expected = sorted(
        (m.timestamp(), t.name) for t in tasks for m in t.parsed_schedule().upcoming(now, count)
    )[:count]
    found = [(f.at.timestamp(), f.task.name) for f in upcoming(tasks, now, count=count).fires]
    assert found == expected


def test_merged_fires_is_lazy():
    """A merge of 2,000 tasks asks each for its first time, then one more per row taken."""
    tasks = [task(f"t{i:04d}", "@every 1h") for i in range(2000)]
    stream = merged_fires(tasks, at("2026-12-05T00:30:00+00:00"))
    first = [next(stream) for _ in range(3)]
    assert [t.name for _, t in first] == ["t0000", "t0001", "t0002"]
