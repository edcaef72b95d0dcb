"""Jittered starts that never happen (#13, h15): a start still waiting for its jitter when serve
stops, or when a reload removes or disables its task, is recorded `missed` with the reason."""

from __future__ import annotations

import random
import re
import time
from datetime import timedelta

import pytest

from cronctl.records import Status
from tests.serve.fakes import task, utc
from tests.serve.test_serve_process import serve_starter, task_text, wait_for

T0 = utc(2026, 1, 5, 12, 0, 0)


class LateRng(random.Random):
    """Every jitter is 90% of its span: the start waits well past the slot."""

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * 0.9


def test_h15_a_jittered_start_pending_at_shutdown_is_recorded_missed(harness):
    # Hourly, jitter 10m: the 13:00 slot's start waits until 13:09:00; serve stops at 13:01.
    h = harness([task("j", "0 * * * *", jitter=600)], rng=LateRng(), outcomes={"j": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, minutes=1))
    assert h.runs("j") == []  # still waiting for its jittered start
    h.scheduler.request_stop()
    h.scheduler.run()
    runs = h.runs("j")
    assert [(r.status, r.scheduled_at) for r in runs] == [(Status.MISSED, utc(2026, 1, 5, 13))]
    assert runs[0].reason == "serve stopped before its jittered start at 13:09:00 UTC"
    assert h.launcher.launched == []


def test_h15_the_time_of_the_start_is_shown_in_the_task_zone(harness):
    h = harness(
        [task("j", "0 * * * *", jitter=600, timezone="Europe/Berlin")],
        rng=LateRng(),
        outcomes={"j": "succeeded"},
    )
    h.run_until(T0 + timedelta(hours=1, minutes=1))
    h.scheduler.request_stop()
    h.scheduler.run()
    assert h.runs("j")[0].reason == "serve stopped before its jittered start at 14:09:00 CET"


def test_h15_a_retry_waiting_at_shutdown_adds_no_missed_row(harness):
    # A retry's run has its row already (the failed attempt): only starts of slots get one.
    h = harness([task("r", "0 * * * *", retries=1, retry_delay=600)], outcomes={"r": "failed"})
    h.run_until(T0 + timedelta(hours=1, seconds=5))
    h.scheduler.request_stop()
    h.scheduler.run()
    assert h.statuses("r") == [Status.FAILED]


@pytest.mark.parametrize(
    ("reloaded", "why"),
    [
        ([], "removed"),
        ([task("j", "0 * * * *", jitter=600, enabled=False)], "disabled"),
    ],
)
def test_h15_a_reload_that_drops_a_jittered_start_records_it_missed(harness, reloaded, why):
    h = harness([task("j", "0 * * * *", jitter=600)], rng=LateRng(), outcomes={"j": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, minutes=1))
    h.scheduler.apply({t.name: t for t in reloaded}, h.clock.now())
    h.run_for(15 * 60)
    runs = h.runs("j")
    assert [(r.status, r.scheduled_at) for r in runs] == [(Status.MISSED, utc(2026, 1, 5, 13))]
    assert runs[0].reason == f"the task was {why} before its jittered start at 13:09:00 UTC"


def test_h15_a_jittered_start_that_ran_adds_no_missed_row(harness):
    h = harness([task("j", "0 * * * *", jitter=600)], rng=LateRng(), outcomes={"j": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, minutes=10))
    h.scheduler.request_stop()
    h.scheduler.run()
    assert h.statuses("j") == [Status.SUCCEEDED]


@pytest.fixture
def serve(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def test_h15_a_real_serve_stopped_by_sigterm_records_its_pending_jittered_starts(serve, tasks_path):
    # Jitter 1 day on a 1 s schedule: each slot's start waits for a random delay of up to a
    # day, so the slots that pass before SIGTERM are still waiting when serve stops.
    tasks_path.write_text(task_text("late", "@every 1s", extra='jitter = "1d"'))
    process = serve()
    wait_for(lambda: "started (pid" in process.log or process.proc.poll() is not None)
    time.sleep(2.5)  # a few slots pass, each waiting for its jitter
    assert process.stop() == 0, process.log
    runs = process.runs("late")
    assert runs, process.log
    assert {r.status for r in runs} == {Status.MISSED}
    for run in runs:
        assert run.scheduled_at is not None
        assert re.fullmatch(
            r"serve stopped before its jittered start at \d\d:\d\d:\d\d UTC", run.reason or ""
        ), run.reason
