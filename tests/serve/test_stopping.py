"""Stopping the running jobs at shutdown: the grace, then the stop, then the wait for their
records; a second stop request skips the grace; the whole loop's shutdown (nothing new starts,
the heartbeat goes on through the grace)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cronctl.records import Status, Trigger
from cronctl.serve.inbox import Inbox
from cronctl.serve.starts import Starts, run_request
from cronctl.serve.stopping import STOP_WAIT_MARGIN, JobStopper
from cronctl.serve.taskstate import TaskState
from cronctl.serve.workers import SHUTDOWN_REASON
from tests.serve.fakes import FakeClock, task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


class Launcher:
    def launch(self, handles, done) -> None:
        pass


class Systemd:
    def __init__(self) -> None:
        self.stopping_status: list[str | None] = []

    def stopping(self, status=None) -> bool:
        self.stopping_status.append(status)
        return True


class Rig:
    def __init__(self, jobs: int, *, ends_on_stop: bool) -> None:
        self.clock = FakeClock(T0)
        self.inbox = Inbox()
        self.starts = Starts(
            Launcher(), self.inbox.done, clock=self.clock, recorder=None, max_parallel=10
        )
        self.systemd = Systemd()
        self.stopper = JobStopper(
            self.starts, self.inbox, self.clock, self.systemd, grace=5, kill_grace=2
        )
        for i in range(jobs):
            t = task(f"t{i}")
            state = TaskState(t, t.parsed_schedule(), 1)
            self.starts.start(state, run_request(t, Trigger.SCHEDULE))
        self.starts.flush()
        for i, handle in enumerate(self.starts.handles()):
            handle.run_id = i + 1
        self.ends_on_stop = ends_on_stop
        self.drains = 0

    def drain(self) -> None:
        """The loop's side: runs asked to stop end (when they do) and free their place."""
        self.drains += 1
        for handle in list(self.starts.handles()):
            stop = handle.request.stop
            if self.ends_on_stop and stop is not None and stop.is_set():
                self.starts.completed(handle)


def test_nothing_running_stops_at_once():
    rig = Rig(0, ends_on_stop=True)
    rig.stopper.stop_jobs(rig.drain)
    assert rig.systemd.stopping_status == ["stopping"] and rig.clock.sleeps == []


@pytest.mark.parametrize(("count", "jobs"), [(2, "2 running jobs"), (1, "1 running job")])
def test_jobs_get_the_grace_then_are_stopped(caplog, count, jobs):
    rig = Rig(count, ends_on_stop=True)
    rig.stopper.stop_jobs(rig.drain)
    assert rig.systemd.stopping_status == [f"stopping: waiting up to 5s for {jobs}"]
    assert sum(rig.clock.sleeps) == pytest.approx(5)
    assert rig.starts.active == 0
    assert all(h.request.stop.reason == SHUTDOWN_REASON for h in rig.starts.handles())
    assert f"stopping {jobs}\n" in caplog.text + "\n"


def test_jobs_that_do_not_end_are_left_for_abandon(caplog):
    rig = Rig(1, ends_on_stop=False)
    rig.stopper.stop_jobs(rig.drain)
    assert sum(rig.clock.sleeps) == pytest.approx(5 + 2 + STOP_WAIT_MARGIN)
    assert "1 jobs did not end; their runs will be marked abandoned" in caplog.text


def test_a_second_stop_request_skips_the_grace():
    rig = Rig(1, ends_on_stop=True)
    rig.inbox.request_stop()
    rig.inbox.request_stop()
    rig.stopper.stop_jobs(rig.drain)
    assert rig.clock.sleeps == [] and rig.starts.active == 0


# ------------------------------------------------------------------ the loop's shutdown


def test_shutdown_waits_for_the_grace_then_stops_jobs(harness):
    h = harness([task("long", "0 * * * *")], grace=5)
    h.run_until(T0 + timedelta(hours=1, seconds=1))
    assert len(h.launcher.running("long")) == 1
    # Stopping: the loop waits 5 s (fake), then sets the run's stop event.
    original_sleep = h.clock.sleep

    def sleep(seconds, wake=None):
        h.launcher.settle()
        return original_sleep(seconds, wake)

    h.clock.sleep = sleep
    before = h.clock.monotonic()
    h.scheduler.request_stop()
    h.scheduler.run()
    assert h.clock.monotonic() - before == pytest.approx(5, abs=1.1)
    run = h.runs("long")[0]
    assert (run.status, run.reason) == (Status.INTERRUPTED, SHUTDOWN_REASON)


def test_the_heartbeat_goes_on_while_jobs_get_their_grace(harness):
    # A job taking its whole grace to end must not make the other hosts declare this serve
    # dead (its run abandoned under it) for lack of heartbeats.
    h = harness([task("long", "0 * * * *")], grace=40)
    h.run_until(T0 + timedelta(hours=1, seconds=1))
    h.scheduler.upkeep.heartbeat_interval = 5.0
    original_sleep = h.clock.sleep

    def sleep(seconds, wake=None):
        h.launcher.settle()  # the job ends once it is asked to stop
        return original_sleep(seconds, wake)

    h.clock.sleep = sleep
    stop_began = h.clock.now()
    h.scheduler.request_stop()
    h.scheduler.run()
    beats = [now for (now,) in h.recorder.called("heartbeat") if now >= stop_began]
    assert len(beats) >= 6, beats  # 40 s of grace, a beat every 5 s
    assert h.runs("long")[0].status is Status.INTERRUPTED


def test_shutdown_starts_nothing_new(harness):
    h = harness([task("a", overlap="queue")])
    h.run_for(2.5)  # one running, one queued
    h.scheduler.request_stop()
    h.scheduler.request_stop()  # a second signal skips the grace
    h.launcher.finish("a")
    h.scheduler.run()
    assert len(h.launcher.launched) == 1
