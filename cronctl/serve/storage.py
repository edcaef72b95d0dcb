"""The database as serve's threads use it.

* `SerialStore`: one connection shared by the job threads, one call at a time under a lock.
  Measured against one connection per thread: SQLite's busy handler makes contending writers
  sleep (1, 2, 5, 10 ms ...), while a Python lock hands over in microseconds, so a burst of
  starts is faster through one connection. The writes a job needs after it ran are retried
  with back-off (a locked, full or read-only database) and the result waits in memory until
  the database takes it.
* `Recorder`: a thread for the writes the scheduling loop must never wait for (heartbeat,
  `skipped` and `missed` rows, retention, WAL checkpoints), on a second connection, in order,
  each retried with back-off until it succeeds.
* `open_history`: the database as serve opens it at start: checked (quick_check), a damaged
  one moved aside and replaced, loudly; a read-only one, a full disk or a newer schema refused.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from cronctl.clock import Clock
from cronctl.errors import StoreError
from cronctl.store import HistoryStore, SlotTakenError, open_for_serve

log = logging.getLogger("cronctl.serve")

BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds between attempts of a write the database refused."""


def open_history(path: str, clock: Clock) -> HistoryStore:
    """Open the history for serve (call with the serve lock held).

    A damaged file (SQLite cannot read it, or `PRAGMA quick_check` finds problems) is moved
    to `history.db.corrupt-<UTC time>` with its -wal and -shm, a new history is created, and
    this is logged at error level: the old runs are gone from `cronctl history` and the user
    should know where they went. tasks.toml is never touched. Raises StoreError when the
    history cannot be written (read-only, full disk, locked past the busy timeout) or has a
    newer schema: serve then refuses to start, and moving the file would lose history.
    """
    store, moved = open_for_serve(path, now=clock.now())
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
    """A HistoryStore whose methods run one at a time; safe to share between threads."""

    def __init__(self, store: HistoryStore, clock: Clock) -> None:
        self._store = store
        self._lock = threading.Lock()

        self.clock = clock
        self.give_up = threading.Event()  # set at shutdown: finish_run stops retrying
        self.say = LogOnce(clock)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return target(*args, **kwargs)

        call.__name__ = name
        self.__dict__[name] = call  # made once per method
        return call

    def set_pid(self, run_id: int, pid: int) -> None:
        # Called as the job starts: a failure here must not kill the job (the pid is a detail).
        self._best_effort("set_pid", "the pid", run_id, self._store.set_pid, pid)

    def record_notify_error(self, run_id: int, message: str | None) -> None:
        self._best_effort(
            "notify_error", "a notification error", run_id, self._store.record_notify_error, message
        )

    def _best_effort(self, key: str, what: str, run_id: int, write: Any, value: Any) -> None:
        """Write a detail of a run; when the database refuses, log it (once) and go on."""
        try:
            with self._lock:
                write(run_id, value)
        except StoreError as exc:
            self.say(
                key, logging.WARNING, "cannot record %s of run %s: %s", what, run_id, exc.message
            )

    def finish_run(self, run_id: int, **fields: Any) -> None:
        """Record the end of a run; retry while the database refuses, until `give_up`."""
        attempt = 0
        while True:
            try:
                with self._lock:
                    self._store.finish_run(run_id, **fields)
            except StoreError as exc:
                if self.give_up.is_set():
                    log.error(
                        "run %s ended %s but cannot be recorded: %s",
                        run_id,
                        fields.get("status"),
                        exc.message,
                    )
                    raise
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                self.say(
                    "finish_run",
                    logging.ERROR,
                    "cannot record the end of run %s (%s); keeping it in memory, retrying in %gs",
                    run_id,
                    exc.message,
                    delay,
                )
                attempt += 1
                self.clock.sleep(delay, wake=self.give_up)
                continue
            if attempt:
                log.info("run %s recorded after %d attempts", run_id, attempt + 1)
            return


class Recorder:
    """Runs database writes on its own thread, in order, retrying each until it succeeds."""

    def __init__(self, store: HistoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.say = LogOnce(clock)
        self._queue: deque[tuple[str, Callable[[HistoryStore], None]]] = deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronctl-recorder", daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def submit(
        self, label: str, write: Callable[[HistoryStore], None], *, replace: bool = False
    ) -> None:
        """Queue `write(store)`; with `replace`, a queued write of the same label is dropped."""
        with self._cond:
            if replace:
                kept = [item for item in self._queue if item[0] != label]
                if len(kept) != len(self._queue):
                    self._queue = deque(kept)
            self._queue.append((label, write))
            self._idle.clear()
            self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued write is done (for tests and shutdown)."""
        return self._idle.wait(timeout)

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
                    self._idle.set()
                    self._cond.wait()
                if not self._queue:
                    self._idle.set()
                    return
                label, write = self._queue[0]
            try:
                write(self.store)
            except SlotTakenError as exc:
                log.debug("%s: %s", label, exc.message)
            except StoreError as exc:
                if not self._closing.is_set():
                    delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                    self.say(
                        "recorder:" + label.split(":")[0],
                        logging.ERROR,
                        "cannot write to the history database (%s: %s); retrying in %gs",
                        label,
                        exc.message,
                        delay,
                    )
                    attempt += 1
                    self._closing.wait(delay)
                    continue
                log.error("%s not written: %s", label, exc.message)
            except Exception:  # a bug must not stop the recorder
                log.exception("%s failed", label)
            attempt = 0
            with self._cond:
                if self._queue and self._queue[0][1] is write:
                    self._queue.popleft()
