"""The database as serve's threads use it.

* `SerialStore`: one connection shared by the job threads, one call at a time under a lock.
  Measured against one connection per thread: SQLite's busy handler makes contending writers
  sleep (1, 2, 5, 10 ms ...), while a Python lock hands over in microseconds, so a burst of
  starts is faster through one connection. The claims of a batch are one transaction
  (`start_runs`); the pids and ends that wait for the connection together are committed
  together (a group commit); each task's last success is kept in memory (both in
  serve/grouping.py). The writes a job needs after it ran are retried with back-off (a
  locked, full or read-only database) and the result waits in memory until the database
  takes it.
* `Recorder`: a thread for the writes the scheduling loop must never wait for (heartbeat,
  `skipped` and `missed` rows, retention, WAL checkpoints), on a second connection, in order,
  each retried with back-off until it succeeds; it tells the run listeners of the rows of runs
  that never ran (`cronctl.serve.writes.BackgroundWrites` is what the loop asks of it).
* `open_history`: the database as serve opens it at start: checked (quick_check), a damaged
  one moved aside and replaced, loudly; a read-only one, a full disk or a newer schema refused.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from cronctl.clock import Clock
from cronctl.errors import SlotTakenError, StoreError
from cronctl.history import History, ServeHistory
from cronctl.listeners import NoEvents, RunEvents
from cronctl.model import Task
from cronctl.records import Output, Run, RunningElsewhere, Status, Trigger
from cronctl.runner.early import Finish
from cronctl.runner.requests import RunRequest
from cronctl.serve import rows
from cronctl.serve.fleet import TaskOf
from cronctl.serve.grouping import GroupCommit, LastSuccesses
from cronctl.serve.outage import Outage
from cronctl.serve.rows import write_missed, write_skipped
from cronctl.store.opening import open_store_for_serve
from cronctl.store.runs import Claim
from cronctl.store.skips import is_condition_skip

log = logging.getLogger("cronctl.serve")

BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds between attempts of a write the database refused."""
UNREACHABLE_RETRY = 1.0
"""Seconds between attempts of a write while the database cannot be reached: the connection
itself waits between its connects (RECONNECT_BACKOFF of the PostgreSQL store) and fails at
once meanwhile, so a write retried each second is recorded within a second of its return."""

__all__ = ["BACKOFF", "LogOnce", "Recorder", "SerialStore", "open_history", "write_missed"]
__all__ += ["write_skipped"]  # tests/serve/fakes.py writes the rows as the Recorder does


def open_history(path: str, clock: Clock, *, tasks_file: Path | None = None) -> ServeHistory:
    """Open the history for serve (call with the serve lock held).

    A damaged file (SQLite cannot read it, or `PRAGMA quick_check` finds problems) is moved
    to `history.db.corrupt-<UTC time>` with its -wal and -shm, a new history is created, and
    this is logged at error level: the old runs are gone from `cronctl history` and the user
    should know where they went. tasks.toml is never touched. Raises StoreError when the
    history cannot be written (read-only, full disk, locked past the busy timeout) or has a
    newer schema: serve then refuses to start, and moving the file would lose history.
    """
    store, moved = open_store_for_serve(path, now=clock.now(), tasks_file=tasks_file)
    if moved is not None:
        log.error(
            "the history database %s was damaged: moved it to %s and started a new, empty one",
            path,
            moved,
        )
    return store


class LogOnce:
    """Says a recurring problem once, then again only after it went away and came back (or
    every `every` seconds, with the count of repeats)."""

    def __init__(self, clock: Clock, every: float = 300.0) -> None:
        self.clock = clock
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, level: int, message: str, *args: Any) -> None:
        now = self.clock.monotonic()
        with self._lock:
            first, repeats = self._seen.get(key, (None, 0))
            if first is not None and now - first < self.every:
                self._seen[key] = (first, repeats + 1)
                return
            self._seen[key] = (now, 0)
        suffix = f" (and {repeats} more times)" if repeats else ""
        log.log(level, message + suffix, *args)


class SerialStore:
    """The history's run writes and the reads serve makes through its shared connection, one
    call at a time; safe to share between threads. A `RunRecorder` for the Executor."""

    def __init__(self, store: ServeHistory, clock: Clock, outage: Outage | None = None) -> None:
        self._store = store
        self.outage = outage  # told of every claim and end: reached, or not
        self._lock = threading.Lock()
        # The pids and ends waiting for the connection: whoever gets the lock writes them all
        # in one transaction (a group commit).
        self._grouped = GroupCommit(store, self._lock)
        self._last_success = LastSuccesses(
            clock, self._read_last_success, self._read_last_successes
        )
        self.clock = clock
        self.give_up = threading.Event()  # set at shutdown: finish_run stops retrying
        self.say = LogOnce(clock)

    # -- RunRecorder -------------------------------------------------------------------------

    def start_run(
        self,
        task: str,
        trigger: Trigger,
        *,
        started_at: datetime,
        attempt: int = 1,
        scheduled_at: datetime | None = None,
        status: Status = Status.RUNNING,
        pid: int | None = None,
        reason: str | None = None,
    ) -> int:
        try:
            with self._lock:
                self._settle(started_at)
                run_id = self._store.start_run(
                    task,
                    trigger,
                    started_at=started_at,
                    attempt=attempt,
                    scheduled_at=scheduled_at,
                    status=status,
                    pid=pid,
                    reason=reason,
                )
        except SlotTakenError:
            self._reached()
            raise
        except StoreError as exc:
            self._claims_failed([(task, trigger, attempt, scheduled_at)], exc)
            raise
        self._reached()
        return run_id

    def start_runs(
        self, claims: Sequence[Claim], *, started_at: datetime
    ) -> Sequence[int | RunningElsewhere | None]:
        """Claim several runs in one transaction (RunStore.start_runs); None: slot taken;
        RunningElsewhere: left to the host where the task runs. Claims the database was out
        of reach for are the outage's (serve/outage.py)."""
        try:
            with self._lock:
                self._settle(started_at)
                run_ids = self._store.start_runs(claims, started_at=started_at)
        except StoreError as exc:
            self._claims_failed(claims, exc)
            raise
        self._reached()
        self._warm_last_successes(claims)
        return run_ids

    def _warm_last_successes(self, claims: Sequence[Claim]) -> None:
        """The newest success of each claimed task, read together for their jobs'
        environments (CRONCTL_LAST_SUCCESS_AT); when it fails, each job reads its own."""
        try:
            self._last_success.warm(claim[0] for claim in claims)
        except StoreError as exc:
            log.debug("the last successes of %d claims not read together: %s", len(claims), exc)

    def _settle(self, now: datetime) -> None:
        """Before a claim (under the lock): the claims whose answer a lost connection took
        are settled first (serve/outage.py)."""
        if self.outage is not None and self.outage.in_doubt:
            self.outage.settle(self._store, now)

    def _claims_failed(self, claims: Sequence[Claim], exc: StoreError) -> None:
        if self.outage is not None:
            self.outage.claims_failed(claims, exc)

    def _reached(self) -> None:
        if self.outage is not None:
            self.outage.reached()

    def set_pid(self, run_id: int, pid: int) -> None:
        # Called as the job starts: a failure here must not kill the job (the pid is a detail).
        self._best_effort("set_pid", "the pid", run_id, self._store.set_pid, pid)

    def set_pids(self, pids: Sequence[tuple[int, int]]) -> None:
        """The pids of the jobs the claimer spawned, in one transaction (the store's `batch`);
        when it fails, each again on its own, as set_pid (logged once, never raised)."""
        store = self._store
        try:
            with self._lock, store.batch():
                for run_id, pid in pids:
                    store.set_pid(run_id, pid)
        except StoreError:
            pass  # rolled back whole: each again below, with its own error
        else:
            return
        for run_id, pid in pids:
            self.set_pid(run_id, pid)

    def finish_run(
        self,
        run_id: int,
        *,
        status: Status,
        finished_at: datetime,
        duration_ms: int | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        reason: str | None = None,
        stdout: Output | None = None,
        stderr: Output | None = None,
        started_at: datetime | None = None,
    ) -> Run:
        """Record the end of a run and return it; retry while the database refuses, until
        `give_up`. A run its `when` condition skipped is folded into the task's previous row
        when that is the same skip (cronctl.store.skips): the row returned is that one."""
        if is_condition_skip(status, reason):
            assert reason is not None
            fold: Callable[[], Run] = partial(
                self._store.finish_condition_skip, run_id, finished_at=finished_at, reason=reason
            )
            return self._write_finish(run_id, status, fold)
        write = partial(
            self._store.finish_run,
            run_id,
            status=status,
            finished_at=finished_at,
            duration_ms=duration_ms,
            exit_code=exit_code,
            signal=signal,
            reason=reason,
            stdout=stdout,
            stderr=stderr,
            started_at=started_at,
        )
        return self._write_finish(run_id, status, write)

    def finish_runs(self, ends: Sequence[Finish]) -> list[Run | Exception]:
        """Record several ends in one transaction (the group commit's `many`): the finisher
        thread's batch. An end the batch could not write is written again on its own as
        `finish_run` writes it (retried while the database refuses, until `give_up`); each
        finished run, or the error that stopped its end."""
        writes = [self._finish_write(end) for end in ends]
        results: list[Run | Exception] = []
        for end, write, result in zip(ends, writes, self._grouped.many(writes), strict=True):
            if isinstance(result, Run):
                if result.status is Status.SUCCEEDED:
                    self._last_success.succeeded(result)
                results.append(result)
                continue
            if not isinstance(result, Exception):
                raise result  # KeyboardInterrupt, SystemExit: not the run's to keep
            if not isinstance(result, StoreError):
                results.append(result)
                continue
            try:
                results.append(self._write_finish(end.run_id, end.status, write))
            except StoreError as exc:
                results.append(exc)
        return results

    def _finish_write(self, end: Finish) -> Callable[[], Run]:
        fields = end._asdict()
        return partial(self._store.finish_run, fields.pop("run_id"), **fields)

    def _write_finish(self, run_id: int, status: Status, write: Callable[[], Run]) -> Run:
        attempt = 0
        while True:
            try:
                run = self._grouped(write)
            except StoreError as exc:
                if self.give_up.is_set():
                    log.error(
                        "run %s ended %s but cannot be recorded: %s", run_id, status, exc.message
                    )
                    raise
                delay = self._retry_delay(run_id, exc, attempt)
                attempt += 1
                self.clock.sleep(delay, wake=self.give_up)
                continue
            self._reached()
            if attempt:
                log.info("run %s recorded after %d attempts", run_id, attempt + 1)
            if run.status is Status.SUCCEEDED:
                self._last_success.succeeded(run)
            return run

    def _retry_delay(self, run_id: int, exc: StoreError, attempt: int) -> float:
        """How long before the end of `run_id` is written again; says why, once (the outage
        says it when the database is out of reach)."""
        if self.outage is not None and self.outage.unreachable(exc):
            return UNREACHABLE_RETRY
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        self.say(
            "finish_run",
            logging.ERROR,
            "cannot record the end of run %s (%s); keeping it in memory, retrying in %gs",
            run_id,
            exc.message,
            delay,
        )
        return delay

    def get_run(self, run_id: int) -> Run:
        with self._lock:
            return self._store.get_run(run_id)

    def last_success_at(self, task: str) -> datetime | None:
        """The task's newest success, from memory (serve/grouping.py `LastSuccesses`)."""
        return self._last_success.get(task)

    def _read_last_success(self, task: str) -> datetime | None:
        with self._lock:
            return self._store.last_success_at(task)

    def _read_last_successes(self, tasks: Collection[str]) -> dict[str, datetime]:
        with self._lock:
            return self._store.last_successes(tasks)

    # -- what else serve reads and writes through it -----------------------------------------

    def latest_slot(self, task: str) -> datetime | None:
        with self._lock:
            return self._store.latest_slot(task)

    def _best_effort(
        self, key: str, what: str, run_id: int, write: Callable[[int, Any], None], value: Any
    ) -> None:
        """Write a detail of a run; when the database refuses, log it (once) and go on."""
        try:
            self._grouped(partial(write, run_id, value))
        except StoreError as exc:
            if self.outage is not None and self.outage.unreachable(exc):
                return  # said once an outage
            self.say(
                key, logging.WARNING, "cannot record %s of run %s: %s", what, run_id, exc.message
            )


Write = Callable[[History], None]


class Recorder:
    """Runs database writes on its own thread, in order, retrying each until it succeeds.

    The rows it writes of runs that never ran (`skipped`, `missed`) are told to `events`, the
    run listeners, once written."""

    def __init__(
        self,
        store: History,
        clock: Clock,
        events: RunEvents | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.outage = outage  # told of every write: the database reached, or not
        self.events = events or NoEvents()
        # The tasks of the runs a heartbeat abandons on other hosts (serve sets it).
        self.task_of: TaskOf = rows.no_task
        self.say = LogOnce(clock)
        self._queue: deque[tuple[str, Write]] = deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronctl-recorder", daemon=True)

    # -- BackgroundWrites --------------------------------------------------------------------

    def record_skipped(self, request: RunRequest, reason: str, now: datetime) -> None:
        log.debug("task %s: %s run skipped: %s", request.task.name, request.trigger, reason)
        self.submit(
            f"skipped run of {request.task.name}",
            lambda store: write_skipped(store, self.events, request, reason, now),
        )

    def record_missed(self, task: Task, slots: tuple[datetime, ...], reason: str) -> None:
        self.submit(
            f"missed slots of {task.name}",
            lambda store: write_missed(store, self.events, task, slots, reason),
        )

    def heartbeat(self, now: datetime) -> None:
        self.submit(
            "heartbeat", partial(rows.heartbeat, now, self.events, self.task_of), replace=True
        )

    def tasks_loaded(self, now: datetime) -> None:
        self.submit("tasks loaded", partial(rows.tasks_loaded, now), replace=True)

    def task_definitions(self, tasks: Iterable[Task]) -> None:
        """Record what this host runs: each task's digests (README.md#task-files-that-differ),
        computed on this thread, once per load; a write still queued is replaced."""
        write = partial(rows.task_definitions, tuple(tasks), self.clock.now(), {})
        self.submit("task definitions", write, replace=True)

    def retention(self, now: datetime, *, keep_days: int, keep_runs: dict[str, int]) -> None:
        self.submit(
            "retention", partial(rows.retention, now, keep_days, dict(keep_runs)), replace=True
        )

    def serve_stopped(self, now: datetime) -> None:
        """Record serve's stop, then give the write-ahead log back to the database file."""
        self.submit("serve stopped", partial(rows.serve_stopped, now))
        self.submit("checkpoint", rows.checkpoint)

    # -- the queue ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, label: str, write: Write, *, replace: bool = False) -> None:
        """Queue `write(store)`; with `replace`, a queued write of the same label is dropped."""
        with self._cond:
            if replace:
                kept = [item for item in self._queue if item[0] != label]
                if len(kept) != len(self._queue):
                    self._queue = deque(kept)
            self._queue.append((label, write))
            self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued writes (one attempt each once closing), then stop the thread."""
        self._closing.set()
        with self._cond:
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._queue:
            log.error("%d history writes could not be done before exit", len(self._queue))
        self.store.close()

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                while not self._queue and not self._closing.is_set():
                    self._cond.wait()
                if not self._queue:
                    return
                label, write = self._queue[0]
            try:
                write(self.store)
            except SlotTakenError as exc:
                log.debug("%s: %s", label, exc.message)
            except StoreError as exc:
                if not self._closing.is_set():
                    attempt += 1
                    self._closing.wait(self._retry_delay(label, exc, attempt - 1))
                    continue
                log.error("%s not written: %s", label, exc.message)
            except Exception:  # a bug must not stop the recorder
                log.exception("%s failed", label)
            else:
                if self.outage is not None:
                    self.outage.reached()
            attempt = 0
            with self._cond:
                if self._queue and self._queue[0][1] is write:
                    self._queue.popleft()

    def _retry_delay(self, label: str, exc: StoreError, attempt: int) -> float:
        """How long before `label` is written again; says why, once (the outage says it when
        the database is out of reach)."""
        if self.outage is not None and self.outage.unreachable(exc):
            return UNREACHABLE_RETRY
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        self.say(
            "recorder:" + label.split(":")[0],
            logging.ERROR,
            "cannot write to the history database (%s: %s); retrying in %gs",
            label,
            exc.message,
            delay,
        )
        return delay
