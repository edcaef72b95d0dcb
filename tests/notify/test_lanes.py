"""Lanes by themselves: jobs of one key in order, keys in turn, bounded workers, the queue and
lane limits, merging into a waiting job, and close (flush, deadline, refusal after)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from cronctl.notify.lanes import Lanes, Outcome, Submitted


@dataclass
class Job:
    key: str
    number: int
    count: int = 1


class Handler:
    """Records the jobs handled, in order; a job whose number is in `blocking` waits until
    `release` is set (and `started` says it is being handled)."""

    def __init__(self, blocking: tuple[int, ...] = ()) -> None:
        self.blocking = blocking
        self.started = threading.Event()
        self.release = threading.Event()
        self.handled: list[tuple[str, int]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> None:
        if job.number in self.blocking:
            self.started.set()
            assert self.release.wait(10)
        with self._lock:
            self.handled.append((job.key, job.number))
            self.threads.add(threading.current_thread().name)


def lanes(handler: Handler, *, workers: int = 1, queue_size: int = 100, lane_size: int = 100):
    return Lanes(
        handler,
        workers=workers,
        queue_size=queue_size,
        lane_size=lane_size,
        thread_name="test-lanes",
    )


def merge(waiting: Job, job: Job) -> None:
    waiting.count += job.count
    waiting.number = max(waiting.number, job.number)


def test_a_key_keeps_its_order_and_close_handles_everything():
    handler = Handler()
    pool = lanes(handler, workers=4)
    for number in range(50):
        assert pool.submit("a", Job("a", number)) == Submitted(Outcome.QUEUED)
    assert pool.close(timeout=10)
    assert handler.handled == [("a", number) for number in range(50)]
    assert pool.pending == 0 and pool.closed


def test_keys_take_turns_one_job_a_turn():
    handler = Handler(blocking=(1,))
    pool = lanes(handler, workers=1)
    pool.submit("a", Job("a", 1))
    assert handler.started.wait(5)
    pool.submit("a", Job("a", 2))
    pool.submit("a", Job("a", 3))
    pool.submit("b", Job("b", 1))
    pool.submit("b", Job("b", 2))
    handler.release.set()
    assert pool.close(timeout=10)
    assert handler.handled == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3)]


def test_a_slow_key_holds_one_worker_and_workers_are_bounded():
    handler = Handler(blocking=(0,))
    pool = lanes(handler, workers=2)
    pool.submit("slow", Job("slow", 0))
    assert handler.started.wait(5)
    for key in "abcdef":
        pool.submit(key, Job(key, 1))
    deadline = time.monotonic() + 5
    while len(handler.handled) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(handler.handled) == [(key, 1) for key in "abcdef"]
    assert pool.workers == 2 and pool.pending == 1
    handler.release.set()
    assert pool.close(timeout=10)
    assert handler.handled[-1] == ("slow", 0)
    assert handler.threads == {"test-lanes-1", "test-lanes-2"}


def test_a_full_queue_refuses_without_blocking():
    handler = Handler(blocking=(1,))
    pool = lanes(handler, queue_size=2)
    assert pool.submit("a", Job("a", 1)).outcome == Outcome.QUEUED
    assert handler.started.wait(5)
    assert pool.submit("b", Job("b", 2)).outcome == Outcome.QUEUED  # the one handled counts
    started = time.monotonic()
    assert pool.submit("c", Job("c", 3)) == Submitted(Outcome.QUEUE_FULL)
    assert time.monotonic() - started < 0.5
    handler.release.set()
    assert pool.close(timeout=10)
    assert handler.handled == [("a", 1), ("b", 2)]


def test_a_full_lane_refuses_its_own_jobs_only():
    handler = Handler(blocking=(1,))
    pool = lanes(handler, lane_size=2, queue_size=10)
    pool.submit("a", Job("a", 1))
    assert handler.started.wait(5)  # being handled: no longer in the lane
    assert pool.submit("a", Job("a", 2)).outcome == Outcome.QUEUED
    assert pool.submit("a", Job("a", 3)).outcome == Outcome.QUEUED
    assert pool.submit("a", Job("a", 4)) == Submitted(Outcome.LANE_FULL, waiting=2)
    assert pool.submit("b", Job("b", 1)).outcome == Outcome.QUEUED
    handler.release.set()
    assert pool.close(timeout=10)
    assert sorted(handler.handled) == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]


def test_merging_goes_into_the_waiting_job_until_a_worker_takes_it():
    handler = Handler(blocking=(0,))
    pool = lanes(handler)
    pool.submit("a", Job("a", 0))
    assert handler.started.wait(5)
    first = Job("a", 1)
    assert pool.submit("a", first, merge).outcome == Outcome.QUEUED
    assert pool.submit("a", Job("a", 3), merge).outcome == Outcome.MERGED
    assert pool.submit("a", Job("a", 2), merge).outcome == Outcome.MERGED
    assert pool.submit("b", Job("b", 1), merge).outcome == Outcome.QUEUED  # another key
    assert pool.submit("a", Job("a", 9)).outcome == Outcome.QUEUED  # no merge: its own job
    assert (first.number, first.count) == (3, 3)
    handler.release.set()
    deadline = time.monotonic() + 5
    while pool.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    # taken by a worker: the next one is queued, not merged
    assert pool.submit("a", Job("a", 5), merge).outcome == Outcome.QUEUED
    assert pool.close(timeout=10)
    assert [job for job in handler.handled if job[0] == "a"] == [
        ("a", 0),
        ("a", 3),
        ("a", 9),
        ("a", 5),
    ]


def test_merging_does_not_bypass_the_refusal_after_close():
    handler = Handler()
    pool = lanes(handler)
    assert pool.close()
    assert pool.submit("a", Job("a", 1), merge) == Submitted(Outcome.CLOSED)
    assert pool.submit("a", Job("a", 2)) == Submitted(Outcome.CLOSED)
    assert handler.handled == [] and pool.workers == 0


def test_close_gives_up_at_its_deadline_and_says_what_is_left():
    handler = Handler(blocking=(1,))
    pool = lanes(handler)
    pool.submit("a", Job("a", 1))
    assert handler.started.wait(5)
    pool.submit("a", Job("a", 2))
    started = time.monotonic()
    assert not pool.close(timeout=0.2)
    assert time.monotonic() - started < 2
    assert pool.pending == 2
    assert pool.submit("b", Job("b", 1)).outcome == Outcome.CLOSED
    handler.release.set()  # the workers still finish what was queued
    assert pool.close(timeout=10)
    assert handler.handled == [("a", 1), ("a", 2)] and pool.pending == 0


@pytest.mark.parametrize("workers", [1, 3])
def test_many_keys_each_keep_their_order(workers):
    handler = Handler()
    pool = lanes(handler, workers=workers)
    for number in range(20):
        for key in "abcde":
            pool.submit(key, Job(key, number))
    assert pool.workers <= workers
    assert pool.close(timeout=10)
    for key in "abcde":
        assert [n for k, n in handler.handled if k == key] == list(range(20))
