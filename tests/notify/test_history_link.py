"""HistoryLink: the notifier's own connection to the history, or the caller's writer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cronctl.errors import CronctlError
from cronctl.notify.history_link import HistoryLink
from cronctl.store import HistoryStore
from tests.notify.helpers import T0, record


@pytest.fixture
def db(tmp_path):
    return tmp_path / "history.db"


def test_without_a_database_it_reads_and_records_nothing():
    link = HistoryLink(None)
    assert link.runs("backup", 10) is None
    link.record_error(1, "webhook: down")  # nowhere to record: no error
    link.close()


def test_it_reads_runs_and_records_errors_through_its_own_connection(db):
    with HistoryStore(db) as store:
        first = record(store)
        second = record(store, at=T0 + timedelta(minutes=5))
    link = HistoryLink(db)
    assert [run.id for run in link.runs("backup", 10)] == [second.id, first.id]
    assert [run.id for run in link.runs("backup", 1)] == [second.id]
    link.record_error(first.id, "webhook: down")
    link.close()
    with HistoryStore(db) as store:
        assert store.get_run(first.id).notify_error == "webhook: down"
    link.record_error(second.id, "email: refused")  # opens again after close
    link.close()
    with HistoryStore(db) as store:
        assert store.get_run(second.id).notify_error == "email: refused"


def test_errors_go_through_the_callers_writer_when_given(db):
    with HistoryStore(db) as store:
        run = record(store)
    recorded = []
    link = HistoryLink(db, lambda run_id, message: recorded.append((run_id, message)))
    link.record_error(run.id, "command: exit status 1")
    link.close()
    assert recorded == [(run.id, "command: exit status 1")]
    with HistoryStore(db) as store:
        assert store.get_run(run.id).notify_error is None


def test_a_database_that_cannot_be_opened_raises_a_cronctl_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    link = HistoryLink(tmp_path / "file" / "x.db")
    with pytest.raises(CronctlError):
        link.runs("backup", 10)
    with pytest.raises(CronctlError):
        link.record_error(1, "webhook: down")
