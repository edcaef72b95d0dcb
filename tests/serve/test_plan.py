"""The pure decisions of serve: slots between two instants, catch-up, overlap, jitter, jumps."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.model import Task
from cronctl.schedule import Schedule
from cronctl.serve import plan
from cronctl.serve.plan import Action

UTC = UTC
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def brute_force(schedule: Schedule, after: datetime, until: datetime) -> list[datetime]:
    found, slot = [], schedule.next_after(after)
    while slot is not None and slot <= until:
        found.append(slot)
        slot = schedule.next_after(slot)
    return found


CASES = [
    (text, hours)
    for text in [
        "* * * * *",
        "*/7 * * * *",
        "0 9 * * 1-5",
        "30 2 * * *",
        "@hourly",
        "@every 1s",
        "@every 7m",
        "0 0 1,15 * MON",
    ]
    for hours in [0.01, 1, 5, 30, 24 * 40]
    if not (text == "@every 1s" and hours > 1)  # the brute force would take seconds
]


@pytest.mark.parametrize(("text", "hours"), CASES)
def test_slots_between_matches_brute_force(text, hours):
    schedule = Schedule.parse(text, "America/New_York", "x")
    until = T0 + timedelta(hours=hours)
    expected = brute_force(schedule, T0, until)
    slots, total = plan.slots_between(schedule, T0, until, limit=100)
    assert slots == expected[-100:]
    if total is not None:
        assert total == len(expected)
    else:
        assert len(expected) >= 100


@settings(max_examples=60, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 10),
    limit=st.integers(min_value=1, max_value=150),
    text=st.sampled_from(["*/5 * * * *", "0 */3 * * *", "15 9 * * *", "@every 90s", "* 9 * * *"]),
)
def test_slots_between_property(minutes, limit, text):
    schedule = Schedule.parse(text, "Europe/Berlin", "p")
    until = T0 + timedelta(minutes=minutes)
    expected = brute_force(schedule, T0, until)
    slots, total = plan.slots_between(schedule, T0, until, limit=limit)
    assert slots == expected[-limit:]
    assert total is None or total == len(expected)
    assert all(a < b for a, b in itertools.pairwise(slots))


def test_slots_between_a_year_of_seconds_is_cheap():
    schedule = Schedule.parse("@every 1s")
    slots, total = plan.slots_between(schedule, T0, T0 + timedelta(days=365))
    assert total == 365 * 86400 and len(slots) == 100
    assert slots[-1] == T0 + timedelta(days=365)


def test_catch_up_policies():
    slots = [T0 + timedelta(minutes=i) for i in range(1, 151)]
    skip = plan.catch_up("skip", slots[-100:], 150)
    assert skip.missed == tuple(slots[-100:]) and skip.run == () and skip.dropped == 50
    once = plan.catch_up("once", slots[-100:], 150)
    assert once.run == (slots[-1],) and once.missed == ()
    everything = plan.catch_up("all", slots[-100:], 150)
    assert everything.run == tuple(slots[-100:]) and everything.dropped == 50
    assert plan.catch_up("all", [], 0) == plan.CatchUp()


@pytest.mark.parametrize(
    ("policy", "running", "queued", "retry", "action"),
    [
        ("skip", [], False, False, Action.START),
        ("skip", [7], False, False, Action.SKIP),
        ("allow", [7, 8], False, False, Action.START),
        ("queue", [7], False, False, Action.QUEUE),
        ("queue", [7], True, False, Action.SKIP),
        ("replace", [7], False, False, Action.REPLACE),
        ("replace", [7], True, False, Action.REPLACE),
        ("replace", [7], False, True, Action.QUEUE),
    ],
)
def test_overlap(policy, running, queued, retry, action):
    decision = plan.overlap(policy, running, queued, is_retry=retry)
    assert decision.action is action
    if action is Action.SKIP and not queued:
        assert decision.reason == "previous run 7 still running"


def test_jitter_delay_stays_in_range():
    rng = random.Random(1)
    delays = [plan.jitter_delay(300, rng) for _ in range(2000)]
    assert all(0 <= d < 300 for d in delays)
    assert max(delays) > 250 and min(delays) < 50
    assert plan.jitter_delay(0, rng) == 0


def test_detect_jump():
    assert plan.detect_jump(T0, 10.0, T0 + timedelta(seconds=2), 12.0) is None
    assert (
        plan.detect_jump(T0, 10.0, T0 + timedelta(seconds=2.5), 12.0) is None
    )  # under the threshold
    forward = plan.detect_jump(T0, 10.0, T0 + timedelta(hours=2, seconds=1), 11.0)
    assert forward is not None and forward.forward and forward.skew == pytest.approx(7200)
    assert forward.expected == T0 + timedelta(seconds=1)
    back = plan.detect_jump(T0, 10.0, T0 - timedelta(hours=1), 11.0)
    assert back is not None and not back.forward


def test_overdue_splits_newest_from_passed():
    schedule = Schedule.parse("* * * * *")
    slot = T0 + timedelta(minutes=1)
    now = T0 + timedelta(minutes=4, seconds=30)
    due, nxt = plan.overdue(schedule, slot, now, None)
    assert due.fire == T0 + timedelta(minutes=4)
    assert due.passed == [T0 + timedelta(minutes=m) for m in (1, 2, 3)] and due.passed_total == 3
    assert nxt == T0 + timedelta(minutes=5)
    on_time, nxt = plan.overdue(schedule, slot, slot + timedelta(milliseconds=3), None)
    assert on_time.fire == slot and on_time.passed == [] and nxt == slot + timedelta(minutes=1)


def test_overdue_after_a_forward_jump_fires_nothing_jumped_over():
    schedule = Schedule.parse("*/10 * * * *")
    slot = T0 + timedelta(minutes=10)
    due, nxt = plan.overdue(
        schedule, slot, T0 + timedelta(hours=2, minutes=5), jumped_after=T0 + timedelta(minutes=1)
    )
    assert due.fire is None
    assert (
        due.passed[0] == slot
        and due.passed[-1] == T0 + timedelta(hours=2)
        and due.passed_total == 12
    )
    assert nxt == T0 + timedelta(hours=2, minutes=10)


# ------------------------------------------------------------------------------ reload

Edit = plan.Edit


def tasks(*items: Task) -> dict[str, Task]:
    return {t.name: t for t in items}


def make(name: str, **values) -> Task:
    values.setdefault("schedule", "0 3 * * *")
    values.setdefault("command", "true")
    values.setdefault("timezone", "UTC")
    return Task(name=name, **values)


@pytest.mark.parametrize(
    ("old", "new", "removed", "edits"),
    [
        ([], [], (), ()),
        ([make("a")], [make("a")], (), ()),
        ([], [make("a"), make("b")], (), (("a", Edit.ADDED), ("b", Edit.ADDED))),
        ([make("a"), make("b")], [], ("a", "b"), ()),
        ([make("a")], [make("a", command="false")], (), (("a", Edit.CHANGED),)),
        ([make("a")], [make("a", retries=2, overlap="queue")], (), (("a", Edit.CHANGED),)),
        ([make("a")], [make("a", schedule="0 4 * * *")], (), (("a", Edit.RETIMED),)),
        ([make("a")], [make("a", timezone="Europe/Berlin")], (), (("a", Edit.RETIMED),)),
        ([make("a")], [make("a", enabled=False)], (), (("a", Edit.RETIMED),)),
        ([make("a", enabled=False)], [make("a")], (), (("a", Edit.RETIMED),)),
        (
            [make("a", command="x"), make("gone"), make("b")],
            [make("b"), make("new"), make("a", command="y")],
            ("gone",),
            (("new", Edit.ADDED), ("a", Edit.CHANGED)),
        ),
    ],
)
def test_task_changes(old, new, removed, edits):
    changes = plan.task_changes(tasks(*old), tasks(*new))
    assert changes.removed == removed
    assert changes.edits == edits


def test_task_changes_keep_the_new_file_order_and_summarise():
    old = tasks(make("a"), make("b"), make("c"), make("d"))
    new = tasks(make("e"), make("c", schedule="@hourly"), make("a", command="false"), make("f"))
    changes = plan.task_changes(old, new)
    assert changes.edits == (
        ("e", Edit.ADDED),
        ("c", Edit.RETIMED),
        ("a", Edit.CHANGED),
        ("f", Edit.ADDED),
    )
    assert changes.added == ("e", "f")
    assert changes.changed == ("c", "a")
    assert changes.summary() == "added e, f; removed b, d; changed c, a"
    assert plan.task_changes(old, old).summary() == ""
    assert plan.task_changes({}, tasks(make("x"))).summary() == "added x"


def test_dependents_of_enabled_tasks():
    found = plan.dependents(
        [
            make("load", after=("extract",)),
            make("report", after=("load", "extract")),
            make("off", after=("load",), enabled=False),
        ]
    )
    assert found == {"extract": ["load", "report"], "load": ["report"]}


SHARED_CASES = [
    ("*/5 * * * *", "UTC"),
    ("*/5 * * * *", "Asia/Kolkata"),
    ("0 3 * * *", "Europe/Berlin"),
    ("0 3 * * *", "America/New_York"),
    ("0 9 * * MON-FRI", "Asia/Tokyo"),
    ("@every 90s", "UTC"),
    ("@every 90s", "Europe/Berlin"),
    ("H * * * *", "UTC"),
    ("H H * * *", "Europe/Berlin"),
    ("@reboot", "UTC"),
]


@pytest.mark.parametrize("moment_offset", [0, 59, 3600 * 5 + 1])
def test_first_slots_shared_by_tasks_equal_each_tasks_own(moment_offset):
    """plan.FirstSlots answers once for the tasks of one parsed schedule, yet each task gets
    what first_slot_after gives it: `H` schedules (each task's own), zones, floors."""
    moment = T0 + timedelta(seconds=moment_offset)
    first = plan.FirstSlots()
    floors = [None, T0 - timedelta(days=1), T0 + timedelta(hours=7)]
    for number in range(60):
        text, zone = SHARED_CASES[number % len(SHARED_CASES)]
        schedule = Schedule.parse(text, timezone=zone, name=f"task-{number}")
        floor = floors[number % len(floors)]
        assert first(schedule, moment, floor) == plan.first_slot_after(schedule, moment, floor)
