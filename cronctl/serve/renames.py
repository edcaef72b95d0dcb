"""A task renamed while serve runs (`cronctl rename`) is the same task under its new name.

At a reload the task file has NEW where it had OLD. Without more, that is a task removed and
a task added: NEW's next slot computed afresh, the running job left under a name that is
gone, its retry dropped. `RenameFollower` reads the renames done since serve last looked
(the journal of cronctl/store/renames.py, finishing a half-done one first) and `carry_over`
moves the task's state to the new name before the reload's diff is made: its next slot and
newest slot (no slot run twice, none missed), its running runs (their retries and the tasks
`after` it), its queued run, catch-up backlog and timers. The running job's row was renamed
with the history and serve finishes a run by its id, so the run ends recorded under NEW.

Runs serve started under OLD after the history was renamed but before this reload (at most
one poll of the task file, about 2 s) are renamed too (`Renames.rename_stragglers`) once the
state has moved, and again 5 s and 60 s later for rows that were still being written then.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Container, Mapping

from cronctl.errors import StoreError
from cronctl.history import Renames
from cronctl.model import Task
from cronctl.serve.heaps import SlotHeap, TimerHeap
from cronctl.serve.starts import Starts
from cronctl.serve.taskstate import TaskState
from cronctl.timefmt import counted

log = logging.getLogger("cronctl.serve")

SWEEP_AFTER = (5.0, 60.0)
"""Seconds after a rename is carried over at which rows still written under the old name are
renamed again: a claim or a `skipped` row takes milliseconds; a write the database refused is
retried for longer."""


class RenameFollower:
    """The renames done since serve last looked; its own connection, used by the loop at a
    reload only (a rename is rare; a reload reads the task file anyway)."""

    def __init__(self, store: Renames) -> None:
        self.store = store
        self.seen = self._latest()
        # Renames to sweep again: (monotonic time due, OLD, NEW), see `carried`.
        self._sweeps: list[tuple[float, str, str]] = []

    def _latest(self) -> int:
        try:
            done = self.store.renames_after(0)
        except StoreError as exc:
            log.error("cannot read the journal of renames (%s)", exc.message)
            return 0
        return done[-1].id if done else 0

    def pending(self) -> dict[str, str]:
        """OLD -> NEW of the renames done since the last call, chains followed (a -> b -> c
        is a -> c), a rename a killed `cronctl rename` left open settled first."""
        try:
            self.store.settle_open_renames()
            done = self.store.renames_after(self.seen)
        except StoreError as exc:
            log.error("cannot read the journal of renames (%s)", exc.message)
            return {}
        renamed: dict[str, str] = {}
        for rename in done:
            self.seen = max(self.seen, rename.id)
            if rename.outcome != "renamed":
                continue
            earlier = [old for old, new in renamed.items() if new == rename.old]
            for old in earlier:  # a -> b, then b -> c: serve knows a, the file has c
                renamed[old] = rename.new
            if not earlier:
                renamed[rename.old] = rename.new
        return {old: new for old, new in renamed.items() if old != new}

    def carried(self, pairs: Mapping[str, str], mono: float) -> None:
        """Rename the rows serve wrote under an old name before it reloaded: now, and again
        SWEEP_AFTER seconds later, for the rows still on their way to the database when the
        state moved (a claim on the claimer thread, a `skipped` row queued for the background
        writer: both decided under the old name, written a moment later)."""
        for old, new in pairs.items():
            self._rename(old, new)
            self._sweeps.extend((mono + delay, old, new) for delay in SWEEP_AFTER)

    def sweep(self, mono: float, tasks: Container[str] = ()) -> None:
        """Do the sweeps that are due (the loop calls it each step; nothing to do is free).
        An old name that is a task of serve again (`tasks`) keeps its rows: they are its own."""
        if not self._sweeps or min(due for due, _, _ in self._sweeps) > mono:
            return
        due = [(old, new) for at, old, new in self._sweeps if at <= mono]
        self._sweeps = [entry for entry in self._sweeps if entry[0] > mono]
        for old, new in due:
            if old not in tasks:
                self._rename(old, new)

    def _rename(self, old: str, new: str) -> None:
        try:
            count = self.store.rename_stragglers(old, new)
        except StoreError as exc:
            log.error("task %s: runs not renamed to %s (%s)", old, new, exc.message)
            return
        if count:
            written = counted(count, "run")
            log.info("task %s: %s written under its old name renamed %s", old, written, new)

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


def carry_over(
    states: dict[str, TaskState],
    starts: Starts,
    slots: SlotHeap,
    timers: TimerHeap,
    renamed: Mapping[str, str],
    tasks: Mapping[str, Task],
) -> dict[str, str]:
    """Move each renamed task's state to its new name (see above); return the renames
    carried over: OLD known, gone from `tasks`, NEW in `tasks` and not known yet."""
    carried = {}
    for old, new in renamed.items():
        if old not in states or old in tasks or new not in tasks or new in states:
            continue
        state = states.pop(old)
        # The old definition under the new name: the reload's diff then sees an edit only if
        # the rename came with one (a new schedule is a retimed task, as for any edit).
        state.task = dataclasses.replace(state.task, name=new)
        states[new] = state
        slots.renew(state)  # the heap's entries carry the old name
        slots.schedule(state, state.next_slot)
        handles = starts.running.pop(old, [])
        for handle in handles:
            handle.request = dataclasses.replace(handle.request, task=state.task)
        if handles:
            starts.running[new] = handles
        if state.queued is not None:
            request, chain = state.queued
            state.queued = (dataclasses.replace(request, task=state.task), chain)
        state.backlog = deque(dataclasses.replace(r, task=state.task) for r in state.backlog)
        timers.rename(old, state.task)
        log.info(
            "task %s: renamed to %s; its next slot (%s), %s and its timers carry over",
            old,
            new,
            state.next_slot.isoformat() if state.next_slot else "none",
            counted(len(handles), "running run"),
        )
        carried[old] = new
    return carried
