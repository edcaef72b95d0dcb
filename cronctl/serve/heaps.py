"""The scheduling loop's two heaps; entries of equal time come out in the order they went in.

* `SlotHeap`, keyed by wall-clock instant (UTC seconds): the next fire time of each task. An
  entry carries the task's generation: when a task changes, is removed or disabled, its older
  entries are stale and skipped as they come out, never searched for.
* `TimerHeap`, keyed by the monotonic clock: retries after their delay, starts delayed by jitter.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime

from cronctl.model import Task
from cronctl.runner.requests import RunRequest
from cronctl.serve.taskstate import TaskState, Timer


class SlotHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, int, datetime]] = []
        self._order = itertools.count()
        self._generations = itertools.count(1)

    def new_generation(self) -> int:
        """A generation for a task that is new or whose timing changed."""
        return next(self._generations)

    def renew(self, state: TaskState) -> None:
        """Make the task's entries stale (its slots are computed anew)."""
        state.gen = self.new_generation()

    def schedule(self, state: TaskState, slot: datetime | None) -> None:
        """Make `slot` the task's next slot (None: it has none)."""
        state.next_slot = slot
        if slot is not None:
            heapq.heappush(
                self._heap, (slot.timestamp(), next(self._order), state.task.name, state.gen, slot)
            )

    def hold(self, state: TaskState, slot: datetime, ahead: float) -> None:
        """Put back `slot`, taken out `ahead` seconds before its instant by a loop that fires
        that early, to come out at its instant instead."""
        heapq.heappush(
            self._heap,
            (slot.timestamp() + ahead, next(self._order), state.task.name, state.gen, slot),
        )

    def due(
        self, until: float, states: Mapping[str, TaskState]
    ) -> Iterator[tuple[TaskState, datetime]]:
        """Take out the entries due at `until` (UTC seconds) or before, with their tasks; an
        entry scheduled meanwhile comes out too when it is due."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            _, _, name, gen, slot = heapq.heappop(heap)
            state = states.get(name)
            if state is None or state.gen != gen or not state.task.enabled:
                continue  # stale entry: the task changed, was removed or disabled
            yield state, slot

    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._heap.clear()


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._order = itertools.count()

    def push(self, due: float, kind: str, request: RunRequest, chain: frozenset[str]) -> None:
        """Start `request` (a `retry` or a jittered `start`) at `due` on the monotonic clock."""
        heapq.heappush(
            self._heap, (due, next(self._order), kind, request.task.name, request, chain)
        )

    def due(self, until: float) -> Iterator[Timer]:
        """Take out the timers due at `until` or before, soonest first."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            yield heapq.heappop(heap)

    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pending(self) -> list[Timer]:
        return list(self._heap)

    def rename(self, old: str, task: Task) -> None:
        """The timers of task `old` are `task`'s now (cronctl.serve.renames)."""
        if not any(entry[3] == old for entry in self._heap):
            return
        self._heap = [
            (due, order, kind, task.name, dataclasses.replace(request, task=task), chain)
            if name == old
            else (due, order, kind, name, request, chain)
            for due, order, kind, name, request, chain in self._heap
        ]
        heapq.heapify(self._heap)

    def clear(self) -> None:
        self._heap.clear()
