"""Lanes: a bounded queue of jobs per key, served in turn by a few worker threads.

The Notifier keys its jobs by task name. `submit` only queues and returns: it never blocks.
The jobs of one key are handled one at a time, oldest first (a task's healthchecks /start
ping goes out before its end ping). A worker takes one job of a lane, then the lane goes to
the back of the turn: a key with many jobs, or whose jobs are slow, holds one worker and
does not starve the others. Workers are started as lanes become ready, up to `workers`.

At most `queue_size` jobs wait (or are being handled) in all, at most `lane_size` in one
lane; past that `submit` refuses the job and says why (the caller logs it). A job submitted
with `merge` may instead be merged into the key's earlier mergeable job while that one
still waits (the Notifier counts missed runs into one notification this way).

`close` lets the workers finish every queued job, up to a deadline; jobs submitted after it
are refused.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cronctl.clock import SYSTEM_CLOCK, Clock

J = TypeVar("J")


class Outcome(enum.Enum):
    QUEUED = "queued"
    MERGED = "merged"  # counted into the key's waiting mergeable job
    CLOSED = "closed"
    QUEUE_FULL = "queue full"
    LANE_FULL = "lane full"


@dataclass(frozen=True)
class Submitted:
    outcome: Outcome
    waiting: int = 0  # LANE_FULL: the jobs waiting in the key's lane


class Lanes(Generic[J]):
    """One lane of jobs per key, handled by up to `workers` threads. See the module's docstring.

    `handle(job)` runs on a worker thread and should not raise: an exception ends that worker
    (the lane still goes back in turn), and no other is started in its place.
    """

    def __init__(
        self,
        handle: Callable[[J], None],
        *,
        workers: int,
        queue_size: int,
        lane_size: int,
        clock: Clock = SYSTEM_CLOCK,
        thread_name: str = "cronctl-lanes",
    ) -> None:
        self._handle = handle
        self._max_workers = workers
        self._queue_size = queue_size
        self._lane_size = lane_size
        self._clock = clock
        self._thread_name = thread_name
        self._changed = threading.Condition()  # a job queued or done; closing
        self._lanes: dict[str, deque[J]] = {}  # key -> its jobs, oldest first
        self._ready: deque[str] = deque()  # lanes with jobs that no worker is on, in turn
        self._mergeable: dict[str, J] = {}  # key -> its waiting job that `merge` goes into
        self._queued = 0  # jobs in the lanes or being handled
        self._workers: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Jobs queued or being handled."""
        return self._queued

    @property
    def workers(self) -> int:
        """Worker threads started so far."""
        return len(self._workers)

    def submit(self, key: str, job: J, merge: Callable[[J, J], None] | None = None) -> Submitted:
        """Queue `job` in the lane of `key`, or say why not.

        With `merge`: when a job of `key` submitted with `merge` still waits (no worker has
        taken it), `merge(waiting, job)` is called (under the lock) and `job` is not queued;
        else `job` is queued and becomes the one later jobs merge into.
        """
        with self._changed:
            if self._closed:
                return Submitted(Outcome.CLOSED)
            if merge is not None:
                waiting = self._mergeable.get(key)
                if waiting is not None:
                    merge(waiting, job)
                    return Submitted(Outcome.MERGED)
            if self._queued >= self._queue_size:
                return Submitted(Outcome.QUEUE_FULL)
            lane = self._lanes.get(key)
            if lane is not None and len(lane) >= self._lane_size:
                return Submitted(Outcome.LANE_FULL, len(lane))
            if merge is not None:
                self._mergeable[key] = job
            if lane is None:  # no jobs and no worker on it: its turn comes
                lane = self._lanes[key] = deque()
                self._ready.append(key)
            lane.append(job)
            self._queued += 1
            # A lane whose turn has come counts as ready until a worker takes it, so more ready
            # lanes than waiting workers means a worker more (up to `workers`).
            if len(self._ready) > self._idle and len(self._workers) < self._max_workers:
                number = len(self._workers) + 1
                worker = threading.Thread(
                    target=self._work, name=f"{self._thread_name}-{number}", daemon=True
                )
                worker.start()  # listed only once started: close() joins every listed worker
                self._workers.append(worker)
            self._changed.notify()
            return Submitted(Outcome.QUEUED)

    def close(self, timeout: float = 10.0) -> bool:
        """Refuse new jobs, let the workers handle the queued ones (waiting up to `timeout`
        seconds), and stop them. Returns False when a worker was still busy at the deadline
        (`pending` then says how many jobs were left)."""
        deadline = self._clock.monotonic() + max(0.0, timeout)
        with self._changed:
            self._closed = True  # workers leave once no lane has work
            self._changed.notify_all()
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - self._clock.monotonic()))
        return not any(worker.is_alive() for worker in workers)

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._ready and not self._closed:
                    self._idle += 1
                    self._changed.wait()
                    self._idle -= 1
                if not self._ready:
                    return  # closed, and no lane has work
                key = self._ready.popleft()
                lane = self._lanes[key]
                job = lane.popleft()
                if self._mergeable.get(key) is job:
                    del self._mergeable[key]
            try:
                self._handle(job)
            finally:
                # Even after a BaseException the lane goes back in turn (or away): never left
                # with no worker.
                with self._changed:
                    self._queued -= 1
                    if lane:
                        self._ready.append(key)  # one job a turn: other keys go first
                    else:
                        del self._lanes[key]
