"""RunPipeline: the Executor and the listeners of its runs, as run-now and serve put them
together (real processes, a real SQLite file)."""

from __future__ import annotations

import pytest

from cronctl import model
from cronctl.clock import SYSTEM_CLOCK
from cronctl.notify.notifier import Notifier
from cronctl.pipeline import RunPipeline
from cronctl.records import Status, Trigger
from cronctl.runner.requests import RunRequest
from cronctl.store import HistoryStore


class Heard:
    def __init__(self, name: str, log: list[tuple[str, str, int]]) -> None:
        self.name = name
        self.log = log

    def run_started(self, task, run):
        self.log.append((self.name, "started", run.id))

    def run_finished(self, task, run, *, final):
        self.log.append((self.name, str(run.status), run.id))


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "history.db")


def job(command: str = "true", **keys) -> model.Task:
    raw = {"schedule": "*/5 * * * *", "command": command, **keys}
    return model.parse_task("job", raw, model.Defaults(), "UTC")


def test_without_listeners_the_notifier_of_the_tasks_hears_the_runs(db, tmp_path):
    out = tmp_path / "notified.json"
    with HistoryStore(db) as store:
        pipeline = RunPipeline(
            store,
            database=db,
            smtp=None,
            hidden_variables=frozenset(),
            clock=SYSTEM_CLOCK,
            warn=lambda _line: None,
        )
        assert isinstance(pipeline.notifier, Notifier)
        assert pipeline.listeners is pipeline.events is pipeline.notifier
        task = job("exit 3", notify={"command": f"cat > {out}"})
        run = pipeline.executor.execute(RunRequest(task, Trigger.MANUAL))
        pipeline.close(timeout=10)
        assert run.status == Status.FAILED and store.get_run(run.id) == run
    assert '"status": "failed"' in out.read_text()


def test_given_listeners_there_is_no_notifier_and_the_run_log_hears_first(db):
    heard: list[tuple[str, str, int]] = []
    with HistoryStore(db) as store:
        pipeline = RunPipeline(
            store,
            database=db,
            smtp=None,
            hidden_variables=frozenset(),
            clock=SYSTEM_CLOCK,
            warn=lambda _line: None,
            listeners=Heard("listener", heard),
            run_log=Heard("log", heard),
        )
        assert pipeline.notifier is None
        run = pipeline.executor.execute(RunRequest(job(), Trigger.MANUAL))
        pipeline.reload(None, frozenset())  # nothing to follow
        pipeline.close(timeout=1)
    assert heard == [
        ("log", "started", run.id),
        ("listener", "started", run.id),
        ("log", "succeeded", run.id),
        ("listener", "succeeded", run.id),
    ]


def test_a_reload_reaches_the_notifier_and_the_executor(db):
    pipeline = RunPipeline(
        HistoryStore(db),
        database=db,
        smtp=None,
        hidden_variables=frozenset({"OLD_SECRET"}),
        clock=SYSTEM_CLOCK,
        warn=lambda _line: None,
    )
    smtp = model.SmtpSettings(host="mail.example.org")
    pipeline.reload(smtp, frozenset({"NEW_SECRET"}))
    assert pipeline.notifier is not None and pipeline.notifier.smtp is smtp
    assert pipeline.executor.hidden_variables == {"NEW_SECRET"}
    pipeline.close(timeout=1)
