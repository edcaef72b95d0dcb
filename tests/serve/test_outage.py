"""serve with its database out of reach (cronctl/serve/outage.py, catchup.py `after_outage`):
the loop with a fake clock and a launcher whose claims fail while the database is "down" (a
real in-memory history, so the exactly-once index is the real one). The same with real serves
and a real PostgreSQL server stopped for 10 s: tests/fleet/test_outage.py."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from cronctl.errors import (
    ConnectionLostError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    StoreError,
)
from cronctl.locations import MEMORY
from cronctl.records import Status, Trigger
from cronctl.serve.outage import Outage
from cronctl.serve.plan import MAX_CATCH_UP
from cronctl.serve.storage import SerialStore
from cronctl.serve.workers import Completion
from cronctl.store import HistoryStore
from tests.serve.fakes import FakeClock, task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)
S = timedelta(seconds=1)
UNREACHABLE = DatabaseUnavailableError("cannot reach the history database at db:5432: refused")


def _outage(clock) -> Outage:
    return Outage(clock, host="web1", database="postgresql://cron@db/cron")


def _watched(h) -> Outage:
    """The harness's scheduler with an outage tracker on its clock, as serve wires it."""
    outage = _outage(h.clock)
    h.scheduler.outage = outage
    outage.wake = h.scheduler.inbox.wake
    return outage


def _cut_off(h, outage: Outage, error: StoreError = UNREACHABLE) -> None:
    """Claims fail as the real claimer's do while the database is out of reach: told to the
    outage (SerialStore does), the run not started (ThreadLauncher does)."""

    def launch_one(handle, done):
        request = handle.request
        claim = (request.task.name, request.trigger, request.attempt, request.scheduled_at)
        outage.claims_failed([claim], error)
        done(Completion(handle, None))

    h.launcher.launch_one = launch_one


def _back(h, outage: Outage, launch_one) -> None:
    h.launcher.launch_one = launch_one
    outage.reached()  # the first call that reaches the database


def test_the_slots_of_an_outage_go_through_each_catch_up_policy_once_it_is_back(harness, caplog):
    caplog.set_level(logging.INFO, logger="cronctl.serve")
    tasks = [task("skipper", catch_up="skip"), task("oncer", catch_up="once")]
    tasks.append(task("aller", catch_up="all", overlap="allow"))
    h = harness(tasks, outcomes={t.name: "succeeded" for t in tasks})
    outage = _watched(h)
    h.run_for(3.5)
    working = h.launcher.launch_one
    _cut_off(h, outage)
    h.run_for(10)  # slots 4..13 unclaimed: nothing runs
    assert outage.down and len(h.launcher.launched) == 9
    assert h.scheduler.status_line().startswith(
        "the history database is out of reach, nothing starts; 3 tasks"
    )  # systemd's STATUS=
    assert {r.status for r in h.runs()} == {Status.SUCCEEDED}
    _back(h, outage, working)
    h.run_for(2)
    assert h.scheduler.status_line().startswith("3 tasks")

    lost = [T0 + timedelta(seconds=s) for s in range(4, 14)]
    by_task = {t.name: {r.scheduled_at: r for r in h.runs(t.name)} for t in tasks}
    skipped = [by_task["skipper"][slot] for slot in lost]
    assert {(r.status, r.trigger) for r in skipped} == {(Status.MISSED, Trigger.CATCH_UP)}
    assert skipped[0].reason == (  # the first claim that failed was slot 4's, fired ahead
        "the slot passed while the history database was unreachable from host web1"
        " (from 2026-01-05T12:00:03+00:00 to 2026-01-05T12:00:13+00:00)"
    )
    caught = [by_task["aller"][slot] for slot in lost]
    assert {(r.status, r.trigger) for r in caught} == {(Status.SUCCEEDED, Trigger.CATCH_UP)}
    assert [slot for slot in lost if slot in by_task["oncer"]] == [lost[-1]]
    assert by_task["oncer"][lost[-1]].trigger is Trigger.CATCH_UP
    for name, runs in by_task.items():  # every slot before and after, once
        assert sorted(runs) == [T0 + timedelta(seconds=s) for s in range(1, 16)
                                if name != "oncer" or s not in range(4, 13)]  # fmt: skip

    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in errors] == [
        "the history database is out of reach from host web1: cannot reach the history"
        " database at db:5432: refused (postgresql://cron@db/cron); nothing starts until it is"
        " back (no run without its claim); retrying with back-off; the slots that pass"
        " meanwhile go through each task's catch_up policy then"
    ]
    [back] = [r.getMessage() for r in caplog.records if "is back after" in r.getMessage()]
    assert back == (
        "the history database is back after 9s out of reach from host web1"
        " (2026-01-05T12:00:03+00:00 to 2026-01-05T12:00:13+00:00); 30 slots of 3 tasks went"
        " unclaimed here: 10 to record missed (catch_up skip), 11 to run (once, all), 9 left"
        " alone (the older ones under once, beyond 100 a task, or their task is gone); a slot"
        " another host"
        " recorded keeps its row"
    )
    assert outage.outages == 1


def test_a_connection_lost_and_opened_again_loses_no_slot_and_starts_no_outage(harness, caplog):
    caplog.set_level(logging.INFO, logger="cronctl.serve")
    h = harness([task("skipper")], outcomes={"skipper": "succeeded"})
    outage = _watched(h)
    h.run_for(2.5)
    working = h.launcher.launch_one
    _cut_off(h, outage, ConnectionLostError("the server restarted"))
    h.run_for(1)
    h.launcher.launch_one = working
    h.run_for(1)
    assert not outage.down and outage.outages == 0
    runs = {r.scheduled_at: r for r in h.runs("skipper")}
    assert runs[T0 + timedelta(seconds=3)].status is Status.MISSED
    assert "reconnected to the history database" in runs[T0 + timedelta(seconds=3)].reason
    assert sorted(runs) == [T0 + timedelta(seconds=s) for s in range(1, 5)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("error", "kept", "said"),
    [
        (UNREACHABLE, True, True),
        (ConnectionLostError("lost"), True, False),
        (DatabaseLockedError("locked"), False, False),
        (StoreError("a constraint"), False, False),
    ],
)
def test_what_the_outage_keeps_of_a_failed_claim(error, kept, said, caplog):
    clock = FakeClock(T0)
    outage = _outage(clock)
    claims = [
        ("a", Trigger.SCHEDULE, 1, T0 + timedelta(seconds=2)),
        ("a", Trigger.SCHEDULE, 1, T0 + timedelta(seconds=1)),
        ("a", Trigger.RETRY, 2, T0),  # a retry has its run's row already: not a slot to keep
        ("b", Trigger.MANUAL, 1, None),
        ("c", Trigger.CATCH_UP, 1, T0),
    ]
    assert outage.claims_failed(claims, error) is kept
    assert outage.down is said
    assert bool([r for r in caplog.records if r.levelno >= logging.ERROR]) is said
    outage.reached()
    taken = outage.take()
    if not kept:
        assert taken is None
        return
    assert taken is not None
    assert taken.slots == {"a": [T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)], "c": [T0]}
    assert (taken.began is not None) is said
    assert taken.others == 2  # the retry and the manual run: no slot, told in the end line
    assert outage.take() is None  # taken once


def test_an_outage_is_said_once_however_many_calls_fail(caplog):
    clock = FakeClock(T0)
    outage = _outage(clock)
    for _ in range(50):
        outage.unreachable(UNREACHABLE)
        clock.advance(1)
    assert outage.take() is None  # nothing while it lasts
    outage.reached()
    outage.reached()
    taken = outage.take()
    assert taken is not None and (taken.began, taken.ended) == (T0, T0 + timedelta(seconds=50))
    outage.unreachable(UNREACHABLE)  # a second outage: said again
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.ERROR]
    assert outage.outages == 2


def test_a_long_outage_keeps_the_newest_slots_a_catch_up_may_use_and_counts_the_rest():
    clock = FakeClock(T0)
    outage = _outage(clock)
    for second in range(1000):  # 1,000 s of an `@every 1s` task
        claim = ("a", Trigger.SCHEDULE, 1, T0 + timedelta(seconds=second))
        outage.claims_failed([claim], UNREACHABLE)
    outage.reached()
    taken = outage.take()
    assert taken is not None and taken.count == 1000 and taken.total("a") == 1000
    assert MAX_CATCH_UP <= len(taken.slots["a"]) <= 2 * MAX_CATCH_UP
    assert taken.slots["a"][-1] == T0 + timedelta(seconds=999)  # the newest kept, in order
    assert taken.slots["a"] == sorted(taken.slots["a"])


class _AnswerLost:
    """A real history whose claims fail as a lost connection makes them fail: `lost`, the
    claim was committed and its answer lost; `down`, nothing reached the server."""

    def __init__(self, store) -> None:
        self.store = store
        self.failure: tuple[str, StoreError] | None = None

    def start_runs(self, claims, *, started_at):
        if self.failure and self.failure[0] == "down":
            raise self.failure[1]
        run_ids = self.store.start_runs(claims, started_at=started_at)
        if self.failure:
            raise self.failure[1]
        return run_ids

    def runs(self, *args, **kwargs):
        if self.failure and self.failure[0] == "down":
            raise self.failure[1]
        return self.store.runs(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.mark.parametrize(
    "error",
    [ConnectionLostError("the connection to db:5432 was lost"), UNREACHABLE],
    ids=["lost-and-reopened", "outage-begins"],
)
def test_a_claim_committed_unanswered_is_recorded_abandoned_before_the_next_claim(error):
    clock = FakeClock(T0)
    with HistoryStore(MEMORY) as store:
        live = store.start_run("t", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
        manual = store.start_run("t", Trigger.MANUAL, started_at=T0)
        outage = Outage(clock, host=store.host, database="postgresql://cron@db/cron")
        flaky = _AnswerLost(store)
        serial = SerialStore(flaky, clock, outage)

        flaky.failure = ("lost", error)
        lost_slot = T0 + 2 * S
        with pytest.raises(DatabaseUnavailableError):
            serial.start_runs([("t", Trigger.SCHEDULE, 1, lost_slot)], started_at=lost_slot)
        assert len(outage.in_doubt) == 1
        if outage.down:  # once an outage runs, a claim fails at its connect: not in doubt
            flaky.failure = ("down", UNREACHABLE)
            with pytest.raises(DatabaseUnavailableError):
                serial.start_runs([("t", Trigger.SCHEDULE, 1, T0 + 3 * S)], started_at=T0)
            assert len(outage.in_doubt) == 1

        flaky.failure = None
        outage.reached()
        (next_id,) = serial.start_runs([("t", Trigger.SCHEDULE, 1, T0 + 4 * S)], started_at=T0)
        (lost,) = [run for run in store.runs("t", limit=None) if run.scheduled_at == lost_slot]
        assert lost.status is Status.ABANDONED and "never started" in lost.reason
        running = {run.id for run in store.runs("t", statuses=[Status.RUNNING], limit=None)}
        assert running == {live, manual, next_id}  # answered claims and run-now's row
        assert outage.in_doubt == []


def test_a_claim_in_doubt_never_ends_another_hosts_row(tmp_path):
    clock = FakeClock(T0)
    db = str(tmp_path / "history.db")
    with HistoryStore(db) as other_host, HistoryStore(db) as store:
        other_host.host = "web2"
        theirs = other_host.start_run("t", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
        outage = Outage(clock, host=store.host, database=db)
        outage.in_doubt.append(("t", Trigger.SCHEDULE, 1, T0))
        SerialStore(store, clock, outage).start_runs(
            [("t", Trigger.SCHEDULE, 1, T0 + S)], started_at=T0
        )
        assert store.get_run(theirs).status is Status.RUNNING
        assert outage.in_doubt == []
