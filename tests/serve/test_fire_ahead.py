"""The loop fires a slot up to FIRE_AHEAD before its instant, so that its run is claimed and
prepared by then and its job spawned at the instant (docs/architecture.md, "Firing ahead");
a task whose start could be decided differently by the instant is decided at it (fake clock,
fake launcher, a real in-memory history)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cronctl.records import Status, Trigger
from cronctl.serve import plan
from cronctl.serve.loop import FIRE_AHEAD
from tests.serve.fakes import task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


def handed_over(h):
    """Record, for each run the loop hands to the launcher, the fake clock's time then."""
    handed = []
    launch = h.launcher.launch

    def recording(handles, done):
        handed.extend((handle.request.scheduled_at, h.clock.now()) for handle in handles)
        launch(handles, done)

    h.launcher.launch = recording
    return handed


@pytest.mark.parametrize(
    ("values", "options", "ahead"),
    [
        ({}, {}, FIRE_AHEAD),
        ({}, {"fire_ahead": 0.0}, 0.0),
        ({"lock": ["backup"]}, {}, 0.0),  # the lock is taken at the instant
        ({}, {"fire_ahead": 0.2}, 0.2),
    ],
    ids=["plain", "not-ahead", "lock", "longer-lead"],
)
def test_a_slot_is_handed_over_ahead_of_its_instant_and_its_run_starts_at_it(
    harness, values, options, ahead
):
    h = harness([task("a", **values)], outcomes={"a": "succeeded"}, **options)
    handed = handed_over(h)
    h.run_for(3.5)
    assert [slot for slot, _ in handed] == [T0 + timedelta(seconds=s) for s in (1, 2, 3)]
    assert all(at == slot - timedelta(seconds=ahead) for slot, at in handed)
    runs = h.runs("a")
    assert [r.status for r in runs] == [Status.SUCCEEDED] * 3
    assert all(r.started_at == r.scheduled_at for r in runs)  # never before its instant


def test_a_jittered_start_counts_its_delay_from_the_instant(harness):
    h = harness(
        [task("a", "* * * * *", jitter=20)], outcomes={"a": "succeeded"}, rng=random.Random(7)
    )
    handed = handed_over(h)
    h.run_for(3 * 60 + 30)
    same = random.Random(7)
    delays = [plan.jitter_delay(20, same) for _ in range(3)]
    assert [slot for slot, _ in handed] == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]
    for (slot, at), delay in zip(handed, delays, strict=True):
        assert (at - slot).total_seconds() == pytest.approx(delay, abs=1e-3)


def test_a_task_with_a_run_still_going_is_decided_at_its_instant(harness):
    # A skip-on-overlap run ends 20 ms before the next slot: had that slot been decided ahead,
    # it would have been skipped as overlapping a run that was over by its instant.
    h = harness([task("a", overlap="skip")])
    handed = handed_over(h)
    h.run_until(T0 + timedelta(seconds=1.5))
    h.run_until(T0 + timedelta(seconds=2) - timedelta(seconds=0.02))
    assert len(handed) == 1  # slot 2 held back for its instant
    h.launcher.finish("a")
    h.run_until(T0 + timedelta(seconds=2.5))
    runs = h.runs("a")
    assert [(r.scheduled_at, r.status) for r in runs] == [
        (T0 + timedelta(seconds=1), Status.SUCCEEDED),
        (T0 + timedelta(seconds=2), Status.RUNNING),
    ]
    assert handed[1] == (T0 + timedelta(seconds=2), T0 + timedelta(seconds=2))
    assert {r.trigger for r in runs} == {Trigger.SCHEDULE}


def test_a_task_still_running_at_its_instant_is_skipped_as_before(harness):
    h = harness([task("a", overlap="skip")])
    h.run_until(T0 + timedelta(seconds=2.5))
    assert [r.status for r in h.runs("a")] == [Status.RUNNING, Status.SKIPPED]
