"""Runs written and read back (cronctl/store/runs.py)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from cronctl.errors import StoreError, UnknownRunError
from cronctl.records import FAILURE_STATUSES, Output, Status, Trigger
from cronctl.store import DatabaseFullError, HistoryStore, SlotTakenError

from .support import T0, add_run, execute, in_transaction


def test_run_round_trip_with_output(store):
    run_id = store.start_run("a", "schedule", started_at=T0, scheduled_at=T0, pid=123)
    assert store.get_run(run_id).status == Status.RUNNING
    store.finish_run(
        run_id,
        status="failed",
        finished_at=T0 + timedelta(seconds=2),
        duration_ms=2000,
        exit_code=3,
        stdout=Output(b"out\xff", 4),
        stderr=Output(b"err", 200_000, 70_000),
        reason="exit status 3",
    )
    run = store.get_run(run_id)
    assert (run.status, run.exit_code, run.duration_ms, run.pid) == ("failed", 3, 2000, 123)
    assert run.scheduled_at == T0 and run.finished_at == T0 + timedelta(seconds=2)
    assert run.stdout == Output(b"out\xff", 4, 0)
    assert run.stderr.dropped_bytes == 70_000 and run.stderr.total_bytes == 200_000
    assert run.reason == "exit status 3"


def test_a_slot_runs_once(store):
    store.start_run("a", "schedule", started_at=T0, scheduled_at=T0)
    with pytest.raises(SlotTakenError):
        store.start_run("a", "catch-up", started_at=T0, scheduled_at=T0)
    # Retries of the slot, other tasks and manual runs are not slot claims.
    store.start_run("a", "retry", attempt=2, started_at=T0, scheduled_at=T0)
    store.start_run("b", "schedule", started_at=T0, scheduled_at=T0)
    store.start_run("a", "manual", started_at=T0)
    assert store.latest_slot("a") == T0


def test_runs_filters_newest_first(store):
    for minute, status in enumerate(["succeeded", "failed", "timed_out", "skipped", "succeeded"]):
        add_run(store, status=status, at=T0 + timedelta(minutes=minute))
    add_run(store, task="b", status="failed", at=T0 + timedelta(minutes=10))
    assert [r.status for r in store.runs("a")] == [
        "succeeded",
        "skipped",
        "timed_out",
        "failed",
        "succeeded",
    ]
    assert [r.task for r in store.runs(statuses=FAILURE_STATUSES)] == ["b", "a", "a"]
    since = store.runs(since=T0 + timedelta(minutes=3))
    assert [r.status for r in since] == ["failed", "succeeded", "skipped"]
    assert len(store.runs(limit=2)) == 2


def test_unknown_run(store):
    with pytest.raises(UnknownRunError):
        store.get_run(99)


def test_runs_carry_the_enums_of_records(store):
    add_run(store, status="failed", trigger="catch-up", scheduled=T0)
    [run] = store.runs("a")
    assert type(run.status) is Status and run.status is Status.FAILED
    assert type(run.trigger) is Trigger and run.trigger is Trigger.CATCH_UP
    assert type(store.get_run(run.id).status) is Status


def test_a_status_unknown_to_this_cronctl_is_a_clear_error(store):
    run_id = add_run(store)
    execute(store, "UPDATE runs SET status = 'paused' WHERE id = ?", (run_id,))
    with pytest.raises(StoreError, match="does not know .'paused'.") as caught:
        store.get_run(run_id)
    assert caught.value.hint
    with pytest.raises(StoreError, match="'paused'"):
        store.task_stats("a")


def test_finish_run_returns_what_get_run_reads_afterwards(store):
    """The finished Run comes from the UPDATE's RETURNING clause: it is the record as written."""
    plain = store.start_run("a", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0, pid=7)
    finished = store.finish_run(
        plain,
        status=Status.SUCCEEDED,
        finished_at=T0 + timedelta(seconds=1),
        duration_ms=1000,
        exit_code=0,
    )
    assert finished == store.get_run(plain)
    assert finished.status is Status.SUCCEEDED and finished.pid == 7

    captured = store.start_run("a", Trigger.MANUAL, started_at=T0, reason="asked")
    finished = store.finish_run(
        captured,
        status=Status.FAILED,
        finished_at=T0 + timedelta(seconds=2),
        duration_ms=2000,
        exit_code=3,
        signal=None,
        stdout=Output(b"out\xff", 4),
        stderr=Output(b"err", 200_000, 70_000),
        started_at=T0 + timedelta(milliseconds=5),
    )
    assert finished == store.get_run(captured)
    assert finished.reason == "asked" and finished.started_at == T0 + timedelta(milliseconds=5)
    assert finished.stderr == Output(b"err", 200_000, 70_000)

    only_stdout = store.start_run("a", Trigger.MANUAL, started_at=T0)
    finished = store.finish_run(
        only_stdout, status=Status.SUCCEEDED, finished_at=T0, stdout=Output(b"x", 1)
    )
    assert finished == store.get_run(only_stdout) and finished.stderr == Output(b"", 0)


def test_finish_run_on_a_full_disk_returns_what_was_recorded(tmp_path):
    """Without room for the output, the end is recorded without it: the returned Run says so
    exactly as a later read does. (max_page_count stands for the full disk, as in s21.)"""
    with HistoryStore(tmp_path / "history.db") as store:
        run_id = store.start_run("a", Trigger.MANUAL, started_at=T0)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages + 2}")
        finished = store.finish_run(
            run_id,
            status=Status.SUCCEEDED,
            finished_at=T0 + timedelta(seconds=2),
            duration_ms=2000,
            exit_code=0,
            reason="exit status 0",
            stdout=Output(os.urandom(128 * 1024), 300_000, 300_000 - 128 * 1024),
        )
        assert finished == store.get_run(run_id)
        assert finished.reason.startswith("exit status 0; output not kept: ")
        assert finished.stdout == Output(b"", 0) and finished.status is Status.SUCCEEDED
        with pytest.raises(DatabaseFullError):
            for _ in range(10_000):  # without output to drop, a full disk is an error
                store.finish_run(
                    store.start_run("a", Trigger.MANUAL, started_at=T0),
                    status=Status.FAILED,
                    finished_at=T0,
                    reason="x" * 1000,
                )


def test_finish_run_of_an_unknown_id_raises_and_records_nothing(store):
    with pytest.raises(UnknownRunError, match="no run with id 41"):
        store.finish_run(41, status=Status.FAILED, finished_at=T0, stdout=Output(b"x", 1))
    assert execute(store, "SELECT COUNT(*) FROM run_output") == [(0,)]
    assert not in_transaction(store)


def test_set_pid_last_run_and_task_names(store):
    run_id = store.start_run("b", Trigger.MANUAL, started_at=T0)
    store.set_pid(run_id, 4321)
    assert store.get_run(run_id).pid == 4321
    add_run(store, task="a", status="failed", at=T0 + timedelta(minutes=1))
    assert store.last_run("a").status is Status.FAILED
    assert store.last_run("a", statuses=[Status.SUCCEEDED]) is None
    assert store.last_success_at("a") is None
    assert store.task_names() == ["a", "b"]


def test_record_notify_error(store):
    run_id = add_run(store)
    store.record_notify_error(run_id, "webhook: connection refused")
    assert store.get_run(run_id).notify_error == "webhook: connection refused"
    store.record_notify_error(run_id, None)
    assert store.get_run(run_id).notify_error is None
