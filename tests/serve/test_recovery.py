"""Start-up recovery on a history several hosts share (cronctl/serve/recovery.py): a serve
abandons only its own host's leftover runs (and those of no host, recorded before schema 8),
never another host's, never run-now's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronctl.records import Status, Trigger
from cronctl.serve.recovery import ABANDONED_REASON, abandon_leftover_runs
from cronctl.store import HistoryStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("host", "trigger", "abandoned"),
    [
        ("host-a", Trigger.SCHEDULE, True),  # this host's: its serve is gone
        ("host-a", Trigger.RETRY, True),
        ("host-a", Trigger.MANUAL, False),  # run-now's: it records its own end
        ("host-b", Trigger.SCHEDULE, False),  # another host's: its serve is likely alive
        ("host-b", Trigger.CATCH_UP, False),
        (None, Trigger.SCHEDULE, True),  # before schema 8: the one serve there was
    ],
)
def test_serve_abandons_only_its_own_hosts_leftover_runs(host, trigger, abandoned):
    with HistoryStore(":memory:") as store:
        store.host = host
        run_id = store.start_run("job", trigger, started_at=T0)
        done = abandon_leftover_runs(store, T0, host="host-a")
        run = store.get_run(run_id)
    assert [r.id for r in done] == ([run_id] if abandoned else [])
    assert run.status is (Status.ABANDONED if abandoned else Status.RUNNING)
    assert run.reason == (ABANDONED_REASON if abandoned else None)
