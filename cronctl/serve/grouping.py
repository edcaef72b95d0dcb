"""What `SerialStore` (serve/storage.py) adds to the shared connection for issue 18's hot path.

* `GroupCommit`: the job threads' pids and ends that wait for the connection at the same moment
  are written in one transaction. Measured for issue 18 (docs/performance.md): per tick of 20
  runs the connection carried 20 pid updates and 20 ends, a transaction each, and a job thread
  waited 7 ms for its turn.
* `LastSuccesses`: each task's newest success (CRONCTL_LAST_SUCCESS_AT) kept in memory. Its
  read cost 0.15 ms of CPU a run and, waiting for the shared connection, 7.7 ms of the time
  from the slot to the process.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from cronctl.clock import Clock
from cronctl.history import ServeHistory
from cronctl.records import Run

T = TypeVar("T")

LAST_SUCCESS_REFRESH = 60.0
"""Seconds a task's newest success is taken from memory before the history is read again."""


class _Write(Generic[T]):
    """One write waiting for the shared connection, and what came of it."""

    __slots__ = ("done", "error", "result", "write")

    def __init__(self, write: Callable[[], T]) -> None:
        self.write = write
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Writes through one connection guarded by `lock`, those that wait together in one
    transaction (the store's `batch`)."""

    def __init__(self, store: ServeHistory, lock: threading.Lock) -> None:
        self._store = store
        self._lock = lock
        self.waiting: deque[_Write[Any]] = deque()

    def __call__(self, write: Callable[[], T]) -> T:
        """Do `write` with the writes of other threads waiting at the same moment and return
        its result (or raise its error). Returns only once its own write is committed:
        nothing is acknowledged before it is on disk. When the batch fails, its writes are
        done again one by one, each with its own error."""
        mine = _Write(write)
        self.waiting.append(mine)
        with self._lock:
            if not mine.done:  # not yet written by a thread that had the lock before us
                self._write_waiting()
            if not mine.done:  # taken by a thread that failed before writing it: ours alone
                _write_each([mine])
        if mine.error is not None:
            raise mine.error
        return cast(T, mine.result)

    def many(self, writes: Sequence[Callable[[], T]]) -> list[T | BaseException]:
        """Do `writes` together (and with the writes of other threads waiting then), as
        `__call__` does one: each one's result, or its error."""
        mine = [_Write(write) for write in writes]
        self.waiting.extend(mine)
        with self._lock:
            if not all(item.done for item in mine):
                self._write_waiting()
            _write_each([item for item in mine if not item.done])
        return [item.error if item.error is not None else cast(T, item.result) for item in mine]

    def _write_waiting(self) -> None:
        """Write every waiting write (called with the lock held)."""
        group: list[_Write[Any]] = []
        while self.waiting:
            group.append(self.waiting.popleft())
        if len(group) > 1:
            try:
                with self._store.batch():
                    results = [item.write() for item in group]
            except Exception:  # noqa: S110 - each write is done again below, with its own error
                pass
            else:
                for item, result in zip(group, results, strict=True):
                    item.result, item.done = result, True
                return
        _write_each(group)


def _write_each(group: list[_Write[Any]]) -> None:
    for item in group:
        try:
            item.result = item.write()
        except BaseException as exc:
            item.error = exc
        item.done = True


class LastSuccesses:
    """Each task's newest success as serve knows it: `read` (the history) for a task not read
    yet, or last read more than LAST_SUCCESS_REFRESH seconds ago (a `run-now` in another
    process counts by then); every success serve records updates it. `warm` reads those of
    many tasks in one query (`read_many`), before their jobs ask one by one."""

    def __init__(
        self,
        clock: Clock,
        read: Callable[[str], datetime | None],
        read_many: Callable[[Collection[str]], dict[str, datetime]] | None = None,
    ) -> None:
        self._clock = clock
        self._read = read
        self._read_many = read_many
        self._known: dict[str, tuple[datetime | None, float]] = {}  # (started_at, read at)
        self._lock = threading.Lock()

    def _fresh(self, task: str, now: float) -> tuple[datetime | None, float] | None:
        known = self._known.get(task)
        return known if known is not None and now - known[1] < LAST_SUCCESS_REFRESH else None

    def get(self, task: str) -> datetime | None:
        now = self._clock.monotonic()
        known = self._fresh(task, now)
        if known is not None:
            return known[0]
        found = self._read(task)
        with self._lock:
            return self._keep(task, found, now)

    def warm(self, tasks: Iterable[str]) -> None:
        """Read the newest success of each of `tasks` that `get` would read now, together.

        Measured for issue 18, round 6 (docs/performance.md): a burst of 500 tasks right after
        serve's start read 500 of them one by one on the claimer, 15 µs each, before their
        jobs could start."""
        if self._read_many is None:
            return
        now = self._clock.monotonic()
        stale = [task for task in dict.fromkeys(tasks) if self._fresh(task, now) is None]
        if not stale:
            return
        found = self._read_many(stale)
        with self._lock:
            for task in stale:
                self._keep(task, found.get(task), now)

    def _keep(self, task: str, found: datetime | None, now: float) -> datetime | None:
        """Keep what was read of `task` at `now` (under the lock); a success recorded
        meanwhile is newer."""
        known = self._known.get(task)
        if known is not None and known[0] is not None and (found is None or found < known[0]):
            found = known[0]
        self._known[task] = (found, now)
        return found

    def succeeded(self, run: Run) -> None:
        with self._lock:
            known = self._known.get(run.task)
            if known is None:
                return  # never asked for: read from the history when it is
            if run.started_at is not None and (known[0] is None or known[0] < run.started_at):
                self._known[run.task] = (run.started_at, known[1])
