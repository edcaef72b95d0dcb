"""`overlap` across hosts in the PostgreSQL store's claims (cronctl/store/postgres/runs.py
`start_runs`, README.md#several-serves-one-history): a `queue` or `replace` task whose run
goes on another host is left to that host (RunningElsewhere, nothing written) unless its slot
is taken already; `skip` records the slot `skipped`; claims of one task serialise across
hosts. Real server (tests/pgserver.py), a store per host."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from cronctl.records import RunningElsewhere, Status, Trigger

from .support import T0
from .test_fleet_store import pg_hosts  # noqa: F401  (the fixture: a store per host)

pytest.importorskip("psycopg")

T1, T2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)


def _hosts(pg_hosts, *names):  # noqa: F811
    stores = [pg_hosts(name) for name in names]
    for store in stores:
        store.skip_while_running_elsewhere(["skipper"])
        store.wait_while_running_elsewhere(["queued"])
    return stores


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (("queued", Trigger.SCHEDULE, 1, T1), RunningElsewhere("b")),  # left to b
        (("queued", Trigger.CATCH_UP, 1, T1), RunningElsewhere("b")),
        (("queued", Trigger.RETRY, 2, T0), RunningElsewhere("b")),  # a retry waits too
        (("queued", Trigger.AFTER, 1, None), RunningElsewhere("b")),
        (("queued", Trigger.SCHEDULE, 1, T0), None),  # b's own slot: taken, not waiting
        (("skipper", Trigger.SCHEDULE, 1, T1), None),  # recorded skipped, naming b
        (("other", Trigger.SCHEDULE, 1, T1), int),  # a task of no such policy: claimed
    ],
)
def test_a_claim_while_the_task_runs_on_another_host(pg_hosts, claim, expected):  # noqa: F811
    a, b = _hosts(pg_hosts, "a", "b")
    for task in ("queued", "skipper", "other"):
        [running] = b.start_runs([(task, Trigger.SCHEDULE, 1, T0)], started_at=T0)
        assert isinstance(running, int)
    before = len(a.runs(limit=None))
    [answer] = a.start_runs([claim], started_at=T1)
    if expected is int:
        assert isinstance(answer, int) and a.get_run(answer).host == "a"
        return
    assert answer == expected
    written = a.runs(limit=None)
    if claim[0] == "skipper":
        [row] = [run for run in written if run.host == "a"]
        assert row.status is Status.SKIPPED
        assert row.reason == 'overlap = "skip": a run of it is still going (on host b)'
    else:
        assert len(written) == before  # nothing written


def test_a_claim_left_to_another_host_wins_once_that_run_ended(pg_hosts):  # noqa: F811
    a, b = _hosts(pg_hosts, "a", "b")
    [running] = b.start_runs([("queued", Trigger.SCHEDULE, 1, T0)], started_at=T0)
    assert isinstance(running, int)
    claims = [("queued", Trigger.SCHEDULE, 1, T1), ("other", Trigger.SCHEDULE, 1, T1)]
    first = a.start_runs(claims, started_at=T1)
    assert first[0] == RunningElsewhere("b") and isinstance(first[1], int)  # order kept
    b.finish_run(running, status=Status.SUCCEEDED, finished_at=T1, exit_code=0)
    [won] = a.start_runs(claims[:1], started_at=T1)
    assert isinstance(won, int) and a.get_run(won).status is Status.RUNNING
    [again] = b.start_runs(claims[:1], started_at=T1)  # b's queued run of that slot
    assert again is None  # taken: it ran once, on a


def test_this_hosts_own_run_is_not_waited_for_its_serve_keeps_overlap_itself(
    pg_hosts,  # noqa: F811
):
    [a] = _hosts(pg_hosts, "a")
    [running] = a.start_runs([("queued", Trigger.SCHEDULE, 1, T0)], started_at=T0)
    [queued] = a.start_runs([("queued", Trigger.SCHEDULE, 1, T1)], started_at=T1)
    assert isinstance(running, int) and isinstance(queued, int)


def test_claims_of_one_task_on_two_hosts_at_once_start_one_run(pg_hosts):  # noqa: F811
    """The task's advisory lock serialises the claims: the second sees the first's row."""
    for round_ in range(8):
        a, b = _hosts(pg_hosts, f"a{round_}", f"b{round_}")
        slot = T0 + timedelta(hours=round_)
        barrier = threading.Barrier(2)
        answers: dict[str, object] = {}

        def claim(store, name, minutes, barrier=barrier, answers=answers, slot=slot):
            barrier.wait()
            [answers[name]] = store.start_runs(
                [("queued", Trigger.SCHEDULE, 1, slot + timedelta(minutes=minutes))],
                started_at=slot,
            )

        threads = [
            threading.Thread(target=claim, args=(a, "a", 0)),
            threading.Thread(target=claim, args=(b, "b", 1)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        kinds = sorted(type(answer).__name__ for answer in answers.values())
        assert kinds == ["RunningElsewhere", "int"], answers
        [running] = a.runs("queued", statuses=[Status.RUNNING], limit=None)
        a.finish_run(running.id, status=Status.SUCCEEDED, finished_at=slot, exit_code=0)
