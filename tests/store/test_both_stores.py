"""The two stores answer alike: the same generated calls made on the SQLite store and on the
PostgreSQL store give the same answers, read by every reader (records, order, rounding,
errors). Ids are compared through the order the runs were made in: both number runs in
that order, but only SQLite without gaps (docs/architecture.md, the second store)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.errors import CronctlError, StoreError
from cronctl.records import CONDITION_SKIP_PREFIX, Output, Status, Trigger

from .support import T0

TASKS = ["a", "b", "B", "é"]
SKIP = f"{CONDITION_SKIP_PREFIX}`false` exited 1"
FINAL = [s for s in Status if s != Status.RUNNING]

_start = st.tuples(
    st.just("start"),
    st.sampled_from(TASKS),
    st.sampled_from(list(Trigger)),
    st.integers(1, 2),
    st.one_of(st.none(), st.integers(0, 5)),  # slot, minutes after T0
    st.integers(0, 600),  # started, seconds after T0 (with milliseconds below)
)
_claims = st.tuples(
    st.just("claims"),
    st.lists(st.tuples(st.sampled_from(TASKS), st.integers(0, 5)), max_size=4),
    st.integers(0, 600),
)
_finish = st.tuples(
    st.just("finish"),
    st.integers(0, 30),  # which run made so far (modulo their number)
    st.sampled_from(FINAL),
    st.integers(0, 600),
    st.one_of(st.none(), st.binary(max_size=8)),
)
_skip = st.tuples(st.just("skip"), st.integers(0, 30), st.integers(0, 600))
_other = st.one_of(
    st.tuples(st.just("ack"), st.sampled_from(TASKS), st.integers(0, 600)),
    st.tuples(st.just("prune"), st.integers(0, 2), st.integers(1, 3)),
    st.tuples(st.just("purge"), st.sampled_from(TASKS)),
    st.tuples(st.just("pid"), st.integers(0, 30), st.integers(1, 99999)),
)
OPERATIONS = st.lists(
    st.one_of(_start, _start, _claims, _finish, _finish, _skip, _other), max_size=25
)


def at(seconds: int, extra_us: int = 0):
    return T0 + timedelta(seconds=seconds, microseconds=extra_us)


def apply(store, operations) -> list:
    """Make the calls; return what each answered (ids as indexes of the runs made)."""
    made: list[int] = []
    answers: list = []

    def index(run_id):
        """The run's place among the runs made; the latest of equal ids (SQLite gives the id
        of a deleted newest run to the next one)."""
        if run_id is None or run_id not in made:
            return None if run_id is None else "gone"
        return len(made) - 1 - made[::-1].index(run_id)

    def pick(which):
        """One of the runs there are now (the same on both: a deleted run's id is another
        run's in SQLite, and no run's in PostgreSQL)."""
        live = sorted(run.id for run in store.runs(limit=None))
        return live[which % len(live)] if live else None

    for operation in operations:
        kind, *args = operation
        try:
            if kind == "start":
                task, trigger, attempt, slot, started = args
                scheduled = None if slot is None else at(slot * 60)
                run_id = store.start_run(
                    task,
                    trigger,
                    started_at=at(started, 1500),
                    attempt=attempt,
                    scheduled_at=scheduled,
                )
                made.append(run_id)
                answers.append(index(run_id))
            elif kind == "claims":
                claims, started = args
                ids = store.start_runs(
                    [(task, Trigger.SCHEDULE, 1, at(slot * 60)) for task, slot in claims],
                    started_at=at(started),
                )
                made.extend(i for i in ids if i is not None)
                answers.append([index(i) for i in ids])
            elif kind == "finish" and pick(0) is not None:
                which, status, finished, data = args
                out = None if data is None else Output(data, len(data) + 3, 3)
                run = store.finish_run(
                    pick(which),
                    status=status,
                    finished_at=at(finished, 2499),
                    duration_ms=finished,
                    exit_code=finished % 3,
                    stdout=out,
                    stderr=out,
                )
                answers.append(dataclasses.replace(run, id=index(run.id)))
            elif kind == "skip" and pick(0) is not None:
                which, finished = args
                run = store.finish_condition_skip(
                    pick(which), finished_at=at(finished), reason=SKIP
                )
                answers.append(dataclasses.replace(run, id=index(run.id)))
            elif kind == "ack":
                task, when = args
                answers.append(store.acknowledge(task, at=at(when, 700), by="me", note=None))
            elif kind == "prune":
                days, keep = args
                answers.append(
                    store.prune(now=at(86_400 * days), keep_days=0, default_keep_runs=keep)
                )
            elif kind == "purge":
                answers.append(store.delete_task_runs(args[0]))
            elif kind == "pid" and pick(0) is not None:
                store.set_pid(pick(args[0]), args[1])
        except CronctlError as exc:
            answers.append((type(exc).__name__, exc.message))
    return answers + readings(store, index)


def readings(store, index) -> list:
    """What every reader answers now, ids as indexes."""

    def plain(run):
        return None if run is None else dataclasses.replace(run, id=index(run.id))

    since = T0 - timedelta(days=1)
    runs = [plain(run) for run in store.runs(limit=None)]
    full = [plain(store.get_run(run.id)) for run in store.runs(limit=None)]
    stats = store.tasks_stats(TASKS)
    return [
        runs,
        full,
        [plain(store.last_run(task)) for task in TASKS],
        [plain(run) for run in store.runs("a", statuses=[Status.FAILED, Status.SKIPPED], limit=3)],
        [plain(run) for run in store.runs(triggers=[Trigger.SCHEDULE], since=T0, until=at(300))],
        {task: dataclasses.replace(s, last=plain(s.last)) for task, s in stats.items()},
        [dataclasses.replace(s, last=plain(s.last)) for s in map(store.task_stats, TASKS)],
        store.latest_slots(TASKS),
        store.newest_starts(TASKS),
        sorted(store.running_tasks()),
        store.missed_counts(since),
        [(plain(run), day, hour) for run, day, hour in store.failure_counts(since, T0)],
        store.run_counts(),
        store.task_names(),
        store.acks(),
        sorted(
            (index(i), head)
            for i, head in store.stderr_heads([r.id for r in store.runs(limit=None)], 4).items()
        ),
    ]


@given(OPERATIONS)
@settings(max_examples=40, deadline=None)
def test_the_same_calls_get_the_same_answers_from_both_stores(histories, operations):
    with histories.fresh("sqlite") as lite, histories.fresh("postgresql") as pg:
        assert apply(pg, operations) == apply(lite, operations)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_slot_taken_and_an_unknown_run_are_the_same_errors(histories, backend):
    with histories.fresh(backend) as store:
        store.start_run("a", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
        with pytest.raises(StoreError) as taken:
            store.start_run("a", Trigger.CATCH_UP, started_at=T0, scheduled_at=T0)
        assert (type(taken.value).__name__, taken.value.message) == (
            "SlotTakenError",
            f"slot {T0} of task 'a' has already run",
        )
        with pytest.raises(CronctlError) as unknown:
            store.get_run(99)
        assert (type(unknown.value).__name__, unknown.value.message) == (
            "UnknownRunError",
            "no run with id 99",
        )
