"""The loop's two heaps: order, stale entries, entries pushed while due ones are taken out."""

from __future__ import annotations

from datetime import timedelta

from cronctl.records import Trigger
from cronctl.serve.heaps import SlotHeap, TimerHeap
from cronctl.serve.starts import run_request
from cronctl.serve.taskstate import TaskState
from tests.serve.fakes import task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


def state(heap: SlotHeap, name: str, **values) -> TaskState:
    t = task(name, **values)
    return TaskState(t, t.parsed_schedule(), heap.new_generation())


def test_slots_come_out_by_instant_then_in_the_order_they_went_in():
    heap = SlotHeap()
    states = {name: state(heap, name) for name in ("a", "b", "c")}
    heap.schedule(states["c"], T0 + timedelta(seconds=2))
    heap.schedule(states["b"], T0 + timedelta(seconds=1))
    heap.schedule(states["a"], T0 + timedelta(seconds=1))
    assert states["a"].next_slot == T0 + timedelta(seconds=1)
    assert heap.next_at() == (T0 + timedelta(seconds=1)).timestamp()
    due = list(heap.due((T0 + timedelta(seconds=1)).timestamp(), states))
    assert [(s.task.name, slot) for s, slot in due] == [
        ("b", T0 + timedelta(seconds=1)),
        ("a", T0 + timedelta(seconds=1)),
    ]
    assert heap.next_at() == (T0 + timedelta(seconds=2)).timestamp()


def test_stale_entries_are_skipped():
    heap = SlotHeap()
    renewed, removed, disabled = (
        state(heap, "renewed"),
        state(heap, "removed"),
        state(heap, "off", enabled=False),
    )
    states = {"renewed": renewed, "off": disabled}
    for s in (renewed, removed, disabled):
        heap.schedule(s, T0)
    heap.renew(renewed)  # its timing changed: the entry above is stale
    heap.schedule(renewed, T0 + timedelta(seconds=1))
    due = list(heap.due((T0 + timedelta(seconds=5)).timestamp(), states))
    assert [(s.task.name, slot) for s, slot in due] == [("renewed", T0 + timedelta(seconds=1))]
    assert heap.next_at() is None


def test_a_slot_scheduled_while_taking_out_due_ones_comes_out_when_due():
    heap = SlotHeap()
    s = state(heap, "t")
    heap.schedule(s, T0)
    until = (T0 + timedelta(seconds=1)).timestamp()
    seen = []
    for due_state, slot in heap.due(until, {"t": s}):
        seen.append(slot)
        if len(seen) < 3:
            heap.schedule(due_state, slot + timedelta(seconds=0.5))
    assert seen == [T0, T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=1)]


def test_schedule_none_leaves_the_task_without_a_next_slot():
    heap = SlotHeap()
    s = state(heap, "t")
    heap.schedule(s, T0)
    heap.schedule(s, None)
    assert s.next_slot is None
    heap.clear()
    assert heap.next_at() is None


def test_timers_come_out_soonest_first_then_in_order():
    heap = TimerHeap()
    t = task("t")
    requests = [run_request(t, Trigger.RETRY) for _ in range(3)]
    heap.push(10.0, "retry", requests[0], frozenset())
    heap.push(5.0, "start", requests[1], frozenset({"up"}))
    heap.push(5.0, "retry", requests[2], frozenset())
    assert heap.next_at() == 5.0 and len(heap.pending()) == 3
    due = list(heap.due(5.0))
    assert [(kind, request) for _, _, kind, _, request, _ in due] == [
        ("start", requests[1]),
        ("retry", requests[2]),
    ]
    assert due[0][3] == "t" and due[0][5] == {"up"}
    assert heap.next_at() == 10.0
    heap.clear()
    assert heap.next_at() is None and heap.pending() == []
