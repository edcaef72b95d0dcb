"""One thread that watches every job serve runs: one epoll over all their pipes and pidfds,
their timers (timeouts, kill deadlines, stop checks, the leftover drain) in one heap.

Each job is a `Supervision` driven step by step (runner/supervision.py); what a job thread's
own loop did for one job, this thread does for all of them, in the same order of steps. A job
whose watch is over is handed to `ended` with how it ended: a job that was neither stopped nor
timed out nor left leftovers is concluded here (a few µs: its descriptors are closed already),
the others on a short thread of their own, since concluding them waits for their process
group to be gone. Nothing here touches the database: the caller's `ended` hands the outcome
on (serve/workers.py, to its finisher thread), so a slow or locked database never stalls the
pipes and timers of the jobs still running.

Reads are bounded (pipes.READ_CHUNK a descriptor a turn): a job that prints megabytes gets
one chunk a turn like every other ready pipe.
"""

from __future__ import annotations

import _thread
import heapq
import itertools
import logging
import os
import select
import threading
from collections.abc import Callable

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.runner.outcome import ProcessOutcome
from cronctl.runner.supervision import Supervision

log = logging.getLogger("cronctl.runner")

Ended = Callable[[ProcessOutcome | BaseException], None]
"""Told once, on the supervising thread or a concluding one, how the job ended (or the
exception a callback of the job raised; the job is killed and reaped then)."""


class _Job:
    """One watched job: its supervision, whom to tell of its end, when it wants a turn."""

    __slots__ = ("due", "ended", "fds", "supervision", "watched")

    def __init__(self, supervision: Supervision, ended: Ended) -> None:
        self.supervision = supervision
        self.ended = ended
        self.due: float | None = None
        self.fds: set[int] = set()
        self.watched = False


class _Registration:
    """A job's descriptors in the shared epoll (a pipes.Watcher)."""

    __slots__ = ("_job", "_supervisor")

    def __init__(self, supervisor: Supervisor, job: _Job) -> None:
        self._supervisor = supervisor
        self._job = job

    def register(self, fd: int) -> None:
        self._supervisor._epoll.register(fd, select.EPOLLIN)
        self._supervisor._owners[fd] = self._job
        self._job.fds.add(fd)

    def unregister(self, fd: int) -> None:
        if fd in self._job.fds:
            self._job.fds.discard(fd)
            del self._supervisor._owners[fd]
            self._supervisor._epoll.unregister(fd)

    def close(self) -> None:
        for fd in list(self._job.fds):
            self.unregister(fd)


class Supervisor:
    """Watches jobs spawned elsewhere (`add`) on one thread of its own, started with the first."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._epoll = select.epoll()
        self._owners: dict[int, _Job] = {}
        self._timers: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._added: list[_Job] = []
        self._added_lock = threading.Lock()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._started = False
        self.watching = 0
        """Jobs being watched (read from other threads: a snapshot)."""

    def start(self) -> None:
        """Start the supervising thread unless it runs; RuntimeError ("can't start new
        thread") when it cannot start."""
        with self._added_lock:
            if not self._started:
                self._start()

    def _start(self) -> None:
        _thread.start_new_thread(self._loop, ())
        self._started = True

    def add(self, supervision: Supervision, ended: Ended) -> None:
        """Watch `supervision`'s job to its end; `ended` is told how it ended. Raises
        RuntimeError when the supervising thread is not running and cannot start (`start`
        first to know before anything else is done for the job)."""
        job = _Job(supervision, ended)
        with self._added_lock:
            if not self._started:
                self._start()
            self._added.append(job)
            first = len(self._added) == 1
        if first:
            try:
                os.write(self._wake_write, b"x")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass

    def _loop(self) -> None:
        while True:
            try:
                self._turns()
            except Exception:  # a fault of cronctl: said, and the other jobs still watched
                log.exception("the supervision of serve's jobs failed; going on")

    def _turns(self) -> None:
        monotonic = self.clock.monotonic
        poll = self._epoll.poll
        while True:
            timeout = self._timeout(monotonic())
            try:
                events = poll(timeout)
            except InterruptedError:  # pragma: no cover - PEP 475 retries epoll_wait itself
                continue
            turn: dict[_Job, None] = {}
            for fd, _mask in events:
                job = self._owners.get(fd)
                if job is not None:
                    self._handle(job, fd)
                    turn[job] = None
                elif fd == self._wake_read:
                    for job in self._take_added():
                        turn[job] = None
            now = monotonic()
            timers = self._timers
            while timers and timers[0][0] <= now:
                _, _, job = heapq.heappop(timers)
                if job.due is not None and job.due <= now:
                    turn[job] = None
            for job in turn:
                self._advance(job, now)

    def _timeout(self, now: float) -> float:
        timers = self._timers
        while timers and timers[0][2].due != timers[0][0]:
            heapq.heappop(timers)  # superseded by a later turn of its job
        if not timers:
            return -1
        return max(0.0, timers[0][0] - now)

    def _take_added(self) -> list[_Job]:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        with self._added_lock:
            added, self._added = self._added, []
        begun = []
        for job in added:
            job.watched = True
            self.watching += 1
            try:
                job.supervision.begin(_Registration(self, job))
            except BaseException as exc:
                self._fail(job, exc)
                continue
            begun.append(job)
        return begun

    def _handle(self, job: _Job, fd: int) -> None:
        if not job.watched:
            return  # failed already this turn
        try:
            job.supervision.handle(fd)
        except BaseException as exc:
            self._fail(job, exc)

    def _advance(self, job: _Job, now: float) -> None:
        if not job.watched:
            return  # failed already this turn
        supervision = job.supervision
        try:
            wait = supervision.advance(now)
        except BaseException as exc:
            self._fail(job, exc)
            return
        if supervision.over is not None:
            self._end(job)
            return
        if wait is None:
            job.due = None
            return
        due = now + wait
        job.due = due
        heapq.heappush(self._timers, (due, next(self._order), job))

    def _unwatch(self, job: _Job) -> None:
        job.watched = False
        job.due = None
        self.watching -= 1

    def _end(self, job: _Job) -> None:
        self._unwatch(job)
        if job.supervision.conclude_blocks:
            # Out of the epoll here, on this thread: the pipes a leftover holds are closed by
            # the concluding thread, and a descriptor number it frees may be a new job's
            # before this thread has handled every event of its last poll.
            _Registration(self, job).close()
            _aside(self._conclude, job)
        else:
            self._conclude(job)

    def _conclude(self, job: _Job) -> None:
        try:
            outcome: ProcessOutcome | BaseException = job.supervision.conclude()
        except BaseException as exc:
            outcome = exc
        _tell(job, outcome)

    def _fail(self, job: _Job, exc: BaseException) -> None:
        """A callback of the job raised: kill it, release it, tell its end (the reap may wait
        a moment for the killed process: on a thread of its own)."""
        self._unwatch(job)
        try:
            job.supervision.abort()
        finally:
            _aside(self._failed, job, exc)

    def _failed(self, job: _Job, exc: BaseException) -> None:
        try:
            job.supervision.release()
        finally:
            _tell(job, exc)


def _aside(work: Callable[..., None], *args: object) -> None:
    """Do `work` on a short thread of its own, so that its wait (a terminated group to be
    gone, a killed job to be reaped: a second or two at most) holds up no other job; here when
    no thread can start."""
    try:
        _thread.start_new_thread(work, args)
    except RuntimeError:
        work(*args)


def _tell(job: _Job, outcome: ProcessOutcome | BaseException) -> None:
    try:
        job.ended(outcome)
    except Exception:  # the caller's trouble: the supervision of the others goes on
        log.exception("the end of job %s could not be handed on", job.supervision.proc.pid)
