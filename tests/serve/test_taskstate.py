"""The snapshot of the loop that its report and status line are made from."""

from __future__ import annotations

from cronctl.records import Trigger
from cronctl.serve.starts import Starts, run_request
from cronctl.serve.taskstate import TaskState, snapshot
from tests.serve.fakes import FakeClock, task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


class Launcher:
    def launch(self, handles, done) -> None:
        pass


def test_snapshot_of_tasks_runs_waiting_starts_and_timers():
    clock = FakeClock(T0)
    starts = Starts(Launcher(), lambda c: None, clock=clock, recorder=None, max_parallel=2)
    states = {}
    for name in ("a", "b"):
        t = task(name, overlap="allow")
        states[name] = TaskState(t, t.parsed_schedule(), 1)
    states["a"].next_slot = T0
    states["b"].backlog.append(run_request(states["b"].task, Trigger.CATCH_UP))
    for name in ("a", "a", "b", "removed"):
        t = task(name, overlap="allow")
        starts.start(
            states.get(name) or TaskState(t, t.parsed_schedule(), 1),
            run_request(t, Trigger.SCHEDULE),
        )
    starts.flush()
    starts.of("a")[0].run_id = 5
    retry = run_request(states["b"].task, Trigger.RETRY)
    timers = [
        (1010.0, 2, "retry", "b", retry, frozenset()),
        (1005.0, 1, "start", "b", retry, frozenset()),
    ]
    view = snapshot(states, starts, timers, 1000.0)
    a, b = view.tasks
    assert (a.task.name, a.next_slot, a.runs, a.waiting, a.timers) == ("a", T0, (5, None), 0, ())
    assert (b.runs, b.waiting, b.backlog, b.queued) == ((None,), 1, 1, False)
    assert b.timers == (("start", 5.0), ("retry", 10.0))
    assert (view.going, view.waiting, view.max_parallel) == (2, 2, 2)
    assert (view.timers, view.started) == (2, 2)
