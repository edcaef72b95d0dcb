"""Starts on its own: the overlap policy applied, the parallel limit, waiting starts, the batch
handed to the launcher at the end of a step, shutdown."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

import pytest

from cronctl.records import Trigger
from cronctl.serve.starts import CAP_WARNING_INTERVAL, Starts, run_request
from cronctl.serve.taskstate import TaskState
from cronctl.serve.workers import REPLACED_REASON, SHUTDOWN_REASON, Completion, Handle
from tests.serve.fakes import FakeClock, task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


class BatchLauncher:
    def __init__(self) -> None:
        self.batches: list[list[Handle]] = []

    def launch(self, handles, done) -> None:
        self.batches.append(list(handles))


class Writes:
    def __init__(self) -> None:
        self.skipped: list[tuple[str, str, object]] = []

    def record_skipped(self, request, reason, now) -> None:
        self.skipped.append((request.task.name, reason, now))


class Rig:
    def __init__(self, max_parallel: int = 100) -> None:
        self.clock = FakeClock(T0)
        self.launcher = BatchLauncher()
        self.writes = Writes()
        self.done: list[Completion] = []
        self.starts = Starts(
            self.launcher,
            self.done.append,
            clock=self.clock,
            recorder=self.writes,
            max_parallel=max_parallel,
        )

    def state(self, name: str = "t", **values) -> TaskState:
        t = task(name, **values)
        return TaskState(t, t.parsed_schedule(), 1)

    def launched(self) -> list[str]:
        return [h.task_name for batch in self.launcher.batches for h in batch]

    def end(self, handle: Handle) -> None:
        self.starts.completed(handle)


@pytest.fixture
def rig():
    return Rig()


def test_run_request_carries_its_slot_in_utc_and_a_stop_signal():
    t = task("t")
    slot = T0.astimezone(ZoneInfo("Europe/Berlin"))
    request = run_request(t, Trigger.SCHEDULE, scheduled_at=slot)
    assert request.scheduled_at == T0 and request.scheduled_at.tzinfo is not None
    assert request.scheduled_at.utcoffset().total_seconds() == 0
    assert request.stop is not None and not request.stop.is_set()
    assert request.stop.reason == SHUTDOWN_REASON
    assert run_request(t, Trigger.AFTER).scheduled_at is None


def test_starts_go_to_the_launcher_in_one_batch_at_flush(rig):
    a, b = rig.state("a"), rig.state("b")
    rig.starts.start(a, run_request(a.task, Trigger.SCHEDULE))
    rig.starts.start(b, run_request(b.task, Trigger.SCHEDULE))
    assert rig.launcher.batches == []  # nothing before the end of the step
    rig.starts.flush()
    assert rig.launched() == ["a", "b"] and len(rig.launcher.batches) == 1
    rig.starts.flush()
    assert len(rig.launcher.batches) == 1  # an empty step hands nothing over
    assert rig.starts.active == 2 and rig.starts.started == 2
    assert [h.task_name for h in rig.starts.of("a")] == ["a"]


def test_skip_records_a_skipped_row_with_the_running_id(rig):
    state = rig.state("s", overlap="skip")
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    rig.starts.of("s")[0].run_id = 41
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    assert rig.writes.skipped == [("s", "previous run 41 still running", T0)]
    assert len(rig.starts.of("s")) == 1


def test_queue_keeps_one_waiting_and_skips_more(rig):
    state = rig.state("q", overlap="queue")
    for _ in range(3):
        rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    assert state.queued is not None and len(rig.starts.of("q")) == 1
    assert [reason for _, reason, _ in rig.writes.skipped] == [
        "previous run still running and another run is already waiting"
    ]
    rig.starts.flush()
    rig.end(rig.starts.of("q")[0])
    assert rig.starts.of("q") == []
    rig.starts.next_waiting(state)  # the loop calls this when the task has nothing running
    assert state.queued is None and len(rig.starts.of("q")) == 1


def test_replace_stops_the_running_run_and_queues_the_new_one(rig):
    state = rig.state("r", overlap="replace")
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    first = rig.starts.of("r")[0]
    older = run_request(state.task, Trigger.SCHEDULE)
    rig.starts.start(state, older)
    assert first.request.stop.is_set() and first.request.stop.reason == REPLACED_REASON
    assert state.queued == (older, frozenset())
    newer = run_request(state.task, Trigger.SCHEDULE)
    rig.starts.start(state, newer)  # the one waiting is dropped, recorded skipped
    assert state.queued == (newer, frozenset())
    assert [reason for _, reason, _ in rig.writes.skipped] == [
        "replaced by a newer run before it started"
    ]


def test_a_retry_under_replace_waits_instead_of_stopping(rig):
    state = rig.state("r", overlap="replace")
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    rig.starts.start(state, run_request(state.task, Trigger.RETRY))
    assert not rig.starts.of("r")[0].request.stop.is_set()
    assert state.queued is not None


def test_next_waiting_runs_the_backlog_before_the_queued_run(rig):
    state = rig.state("c")
    backlog = [run_request(state.task, Trigger.CATCH_UP, scheduled_at=T0) for _ in range(2)]
    state.backlog.extend(backlog)
    queued = run_request(state.task, Trigger.SCHEDULE)
    state.queued = (queued, frozenset({"up"}))
    started = []
    for _ in range(3):
        rig.starts.next_waiting(state)
        [handle] = rig.starts.of("c")
        started.append(handle)
        rig.end(handle)
    assert [h.request for h in started[:2]] == backlog
    assert started[2].request.trigger == Trigger.SCHEDULE and started[2].chain == {"up"}
    assert not state.backlog and state.queued is None


def test_over_the_limit_runs_wait_in_order_and_one_warning_says_so(caplog):
    caplog.set_level(logging.WARNING, logger="cronctl.serve")
    rig = Rig(max_parallel=2)
    states = [rig.state(f"t{i}") for i in range(5)]
    for state in states:
        rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    rig.starts.flush()
    assert rig.launched() == ["t0", "t1"]
    assert [h.task_name for h in rig.starts.waiting] == ["t2", "t3", "t4"]
    assert sum(len(h) for h in rig.starts.running.values()) == 5  # waiting ones count as running
    warnings = [r for r in caplog.records if "open-file limit" in r.getMessage()]
    assert len(warnings) == 1 and "2 jobs run at once" in warnings[0].getMessage()
    rig.end(rig.starts.of("t0")[0])
    rig.starts.flush()
    assert rig.launched() == ["t0", "t1", "t2"] and rig.starts.active == 2
    rig.clock.advance(CAP_WARNING_INTERVAL)
    extra = rig.state("t5")
    rig.starts.start(extra, run_request(extra.task, Trigger.SCHEDULE))
    assert len([r for r in caplog.records if "open-file limit" in r.getMessage()]) == 2


def test_max_parallel_is_at_least_one():
    assert Rig(max_parallel=0).starts.max_parallel == 1


def test_close_drops_waiting_starts_and_stops_unclaimed_runs():
    rig = Rig(max_parallel=2)
    states = [rig.state(f"t{i}") for i in range(3)]
    for state in states:
        rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE))
    rig.starts.flush()
    claimed, unclaimed = rig.starts.of("t0")[0], rig.starts.of("t1")[0]
    claimed.run_id = 7
    rig.starts.close(SHUTDOWN_REASON)
    assert rig.starts.closed and not rig.starts.waiting and rig.starts.of("t2") == []
    assert unclaimed.request.stop.is_set() and not claimed.request.stop.is_set()
    rig.starts.start(states[2], run_request(states[2].task, Trigger.SCHEDULE))
    rig.starts.next_waiting(states[2])
    assert rig.starts.of("t2") == []  # nothing new starts
    rig.starts.stop_all(SHUTDOWN_REASON)
    assert claimed.request.stop.is_set()


# ---------------------------------------------------------------------------------------------
# Shared locks (issue 16, item 3)


def locked_rig(tmp_path) -> Rig:
    from cronctl.runner.locks import LockFolder

    rig = Rig()
    rig.starts.locks = LockFolder(tmp_path)
    return rig


def test_j3_runs_waiting_for_a_lock_start_in_slot_order(tmp_path):
    from cronctl.runner.locks import HeldLocks, LockFolder

    rig = locked_rig(tmp_path)
    outside = LockFolder(tmp_path).try_acquire(["db"], "task 'x' (run-now, pid 1)")
    assert isinstance(outside, HeldLocks)
    late, early, other = (
        rig.state(name, lock=["db"], overlap="queue") for name in ("late", "early", "other")
    )
    rig.starts.start(
        late, run_request(late.task, Trigger.SCHEDULE, scheduled_at=T0.replace(minute=2))
    )
    rig.starts.start(
        early, run_request(early.task, Trigger.SCHEDULE, scheduled_at=T0.replace(minute=1))
    )
    rig.starts.flush()
    assert rig.launched() == [] and len(rig.starts.lock_waiting) == 2
    assert rig.writes.skipped == []
    outside.release()
    rig.starts.flush()
    assert rig.launched() == ["early"]  # the earlier slot; the later finds the lock taken again
    [handle] = rig.launcher.batches[-1]
    assert handle.request.inherit_fds == handle.locks.fds and handle.locks.fds
    rig.starts.start(other, run_request(other.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.flush()
    assert rig.launched() == ["early"]  # other waits too, though its slot is the earliest now
    rig.end(handle)
    rig.starts.flush()
    assert rig.launched() == ["early", "other"]


def test_j3_skip_records_the_holder_and_shutdown_says_what_waited(tmp_path):
    from cronctl.runner.locks import HeldLocks, LockFolder

    rig = locked_rig(tmp_path)
    outside = LockFolder(tmp_path).try_acquire(["db"], "task 'x' (run-now, pid 1)")
    assert isinstance(outside, HeldLocks)
    skipper, waiter = (
        rig.state("skipper", lock=["db"]),
        rig.state("waiter", lock=["db"], overlap="allow"),
    )
    rig.starts.start(skipper, run_request(skipper.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.start(waiter, run_request(waiter.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.flush()
    assert rig.writes.skipped == [("skipper", "lock 'db' is held by task 'x' (run-now, pid 1)", T0)]
    assert rig.starts.of("skipper") == [] and len(rig.starts.of("waiter")) == 1
    rig.starts.close(SHUTDOWN_REASON)
    assert rig.writes.skipped[-1][:2] == (
        "waiter",
        f"{SHUTDOWN_REASON} while it waited for its lock",
    )
    assert rig.starts.of("waiter") == [] and rig.launched() == []


def test_j3_a_lock_just_freed_goes_to_the_run_that_waited_not_a_newcomer(tmp_path):
    from cronctl.runner.locks import HeldLocks, LockFolder

    rig = locked_rig(tmp_path)
    outside = LockFolder(tmp_path).try_acquire(["db"], "task 'x' (run-now, pid 1)")
    assert isinstance(outside, HeldLocks)
    waited, newcomer = (rig.state(n, lock=["db"], overlap="queue") for n in ("waited", "newcomer"))
    rig.starts.start(waited, run_request(waited.task, Trigger.SCHEDULE, scheduled_at=T0))
    outside.release()  # freed within the step, before the waiting run was tried again
    later = T0.replace(minute=1)
    rig.starts.start(newcomer, run_request(newcomer.task, Trigger.SCHEDULE, scheduled_at=later))
    rig.starts.flush()
    assert rig.launched() == ["waited"]
    assert [entry[2].task_name for entry in rig.starts.lock_waiting] == ["newcomer"]


def test_j3_a_removed_or_disabled_task_stops_waiting_for_its_lock(tmp_path):
    from cronctl.runner.locks import HeldLocks, LockFolder

    rig = locked_rig(tmp_path)
    outside = LockFolder(tmp_path).try_acquire(["db"], "task 'x' (run-now, pid 1)")
    assert isinstance(outside, HeldLocks)
    gone = rig.state("gone", lock=["db"], overlap="queue")
    rig.starts.start(gone, run_request(gone.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.drop_lock_waiters("gone", "removed from the task file")
    assert rig.writes.skipped == [
        ("gone", "removed from the task file while it waited for its lock", T0)
    ]
    outside.release()
    rig.starts.flush()
    assert rig.launched() == [] and rig.starts.of("gone") == []


# ---------------------------------------------------------------- a run on another host


def _left_elsewhere(rig: Rig, handle: Handle, host: str = "host-b") -> None:
    """What the claimer does with a claim the store left to another host."""
    handle.elsewhere = host
    rig.end(handle)


def test_a_claim_left_to_another_host_waits_and_is_claimed_again_each_poll(rig, caplog):
    from cronctl.serve.starts import CLAIM_POLL

    state = rig.state("q", overlap="queue")
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.flush()
    [handle] = rig.launcher.batches[-1]
    with caplog.at_level(logging.INFO, logger="cronctl.serve"):
        _left_elsewhere(rig, handle)
        assert rig.starts.of("q") == [handle] and rig.starts.polling  # still the task's run
        assert rig.starts.active == 0
        rig.starts.flush()
        assert len(rig.launcher.batches) == 1  # not before CLAIM_POLL
        rig.clock.advance(CLAIM_POLL)
        rig.starts.flush()
        assert rig.launcher.batches[-1] == [handle] and not rig.starts.polling
        _left_elsewhere(rig, handle)  # still going there
        rig.clock.advance(CLAIM_POLL)
        rig.starts.flush()
    assert rig.launcher.batches[-1] == [handle] and len(rig.launcher.batches) == 3
    said = [r.getMessage() for r in caplog.records if "goes on host" in r.getMessage()]
    assert said == ["task q: schedule run waits: a run of it goes on host host-b"]  # once
    # Meanwhile, the task's next slot: queued behind it, as behind a run of this host.
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE, scheduled_at=T0))
    assert state.queued is not None
    rig.end(handle)  # claimed (or its slot taken): it ends as any run
    assert rig.starts.of("q") == [] and not rig.starts.polling


def test_a_waiting_claim_replaced_by_a_newer_slot_ends_at_its_claim(rig):
    from cronctl.serve.starts import CLAIM_POLL

    state = rig.state("r", overlap="replace")
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.flush()
    [handle] = rig.launcher.batches[-1]
    _left_elsewhere(rig, handle)
    rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE, scheduled_at=T0))
    assert handle.request.stop.is_set() and state.queued is not None  # replaced
    rig.clock.advance(CLAIM_POLL)
    rig.starts.flush()  # handed over stopped: the claimer ends it unclaimed
    assert rig.launcher.batches[-1] == [handle]
    _left_elsewhere(rig, handle)  # even if the store said so again, a stopped run is done
    assert rig.starts.of("r") == [] and not rig.starts.polling


def test_close_and_a_removed_task_drop_the_claims_waiting_for_another_host(rig):
    one, two = rig.state("one", overlap="queue"), rig.state("two", overlap="queue")
    for state in (one, two):
        rig.starts.start(state, run_request(state.task, Trigger.SCHEDULE, scheduled_at=T0))
    rig.starts.flush()
    for handle in rig.launcher.batches[-1]:
        _left_elsewhere(rig, handle)
    rig.starts.drop_lock_waiters("one", "removed from the task file")
    assert rig.starts.of("one") == [] and rig.starts.of("two")
    assert rig.writes.skipped == []  # the host running it records its slots
    rig.starts.close(SHUTDOWN_REASON)
    assert rig.starts.of("two") == [] and not rig.starts.polling
