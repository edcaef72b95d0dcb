"""The Notifier as a RunEvents listener: off the caller's thread, bounded in time, recording
failures on the run, and wired to the real Executor."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from datetime import timedelta

import pytest

from cronctl.notify.message import Delivery, detail_lines, headline
from cronctl.notify.notifier import WORKERS, Notifier
from cronctl.records import Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.store import HistoryStore
from tests.notify.helpers import T0, make_task, record
from tests.notify.servers import free_port


@pytest.fixture
def db(tmp_path):
    return tmp_path / "history.db"


@pytest.fixture
def store(db):
    with HistoryStore(db) as opened:
        yield opened


class Log(list):
    def __call__(self, message: str) -> None:
        self.append(message)


def test_a_hanging_notify_command_neither_blocks_the_listener_nor_the_run(store, db):
    log = Log()
    notifier = Notifier(db, log=log, sendmail=None)
    task = make_task(notify={"command": "sleep 30", "timeout": 1})
    run = record(store)
    started = time.monotonic()
    notifier.run_finished(task, run, final=True)
    assert time.monotonic() - started < 0.2  # the listener returned at once
    assert notifier.close(timeout=10)
    assert time.monotonic() - started < 6  # the command was stopped at its timeout
    error = store.get_run(run.id).notify_error
    assert error == "command: the notify command did not finish within 1s (stopped)"
    assert any("failure notification by command failed" in line for line in log)


def test_an_unreachable_webhook_is_recorded_on_the_run(store, db):
    log = Log()
    port = free_port()
    task = make_task(
        notify={
            "webhook": f"http://127.0.0.1:{port}/hook",
            "healthchecks": f"http://127.0.0.1:{port}/hc",
        }
    )
    notifier = Notifier(db, log=log, sendmail=None)
    run_id = store.start_run("backup", "schedule", started_at=T0, scheduled_at=T0)
    notifier.run_started(task, store.get_run(run_id))
    store.finish_run(run_id, status="failed", finished_at=T0 + timedelta(seconds=1), exit_code=1)
    notifier.run_finished(task, store.get_run(run_id), final=True)
    assert notifier.close(timeout=10)
    error = store.get_run(run_id).notify_error
    # the start ping's failure, then the end's two
    assert error.startswith(f"healthchecks: cannot reach 127.0.0.1:{port}")
    assert error.count("healthchecks:") == 2 and f"webhook: cannot reach 127.0.0.1:{port}" in error
    assert len(log) == 3


def test_successful_notifications_leave_no_error(store, db, web):
    task = make_task(notify={"webhook": f"{web.url}/hook"})
    run = record(store)
    with Notifier(db, log=Log(), sendmail=None) as notifier:
        notifier.run_finished(task, run, final=True)
    assert len(web.requests) == 1 and store.get_run(run.id).notify_error is None


def test_executor_retries_notify_once_for_the_final_attempt(store, db, web):
    """A run that fails, is retried and fails again: one failure notification; healthchecks
    sees both attempts (the first as a /log ping)."""
    task = make_task(
        command="echo oops >&2; exit 3",
        retries=1,
        retry_delay=0,
        notify={
            "webhook": f"{web.url}/hook",
            "healthchecks": f"{web.url}/hc",
            "on": ["failure", "recovery"],
        },
    )
    notifier = Notifier(db, log=Log(), sendmail=None)
    runs = Executor(store, events=notifier).run_with_retries(RunRequest(task, Trigger.MANUAL))
    assert [r.status for r in runs] == ["failed", "failed"]
    assert notifier.close(timeout=10)
    paths = [r.path for r in web.requests]
    # in order, except that the channels of one notification go out side by side
    assert paths[:3] == ["/hc/start", "/hc/log", "/hc/start"] and sorted(paths[3:]) == [
        "/hc/3",
        "/hook",
    ]
    [hook] = [json.loads(r.body) for r in web.requests if r.path == "/hook"]
    assert hook["id"] == runs[-1].id and hook["attempt"] == 2 and hook["event"] == "failure"
    rids = [r.query["rid"][0] for r in web.requests if r.path.startswith("/hc/")]
    assert rids[0] == rids[1] != rids[2] == rids[3]


def test_after_failures_notifies_once_and_then_the_recovery(store, db, web):
    notify = {"webhook": f"{web.url}/hook", "on": ["failure", "recovery"], "after_failures": 2}
    failing = make_task(command="exit 1", notify=notify)
    fixed = make_task(command="true", notify=notify)
    notifier = Notifier(db, log=Log(), sendmail=None, synchronous=True)
    executor = Executor(store, events=notifier)
    for task in (failing, failing, failing, fixed, fixed, failing):
        executor.run_with_retries(RunRequest(task, Trigger.MANUAL))
    events = [(json.loads(r.body)["event"], json.loads(r.body)["id"]) for r in web.requests]
    ids = [r.id for r in reversed(store.runs("backup"))]
    assert events == [("failure", ids[1]), ("recovery", ids[3])]


def test_missed_runs_are_coalesced(store, db, web):
    task = make_task(notify={"webhook": f"{web.url}/hook", "on": ["missed"]})
    notifier = Notifier(db, log=Log(), sendmail=None)
    runs = [
        record(store, status="missed", exit_code=None, at=T0 + timedelta(minutes=5 * i))
        for i in range(50)
    ]
    for run in runs:
        notifier.run_finished(task, run, final=True)
    assert notifier.close(timeout=10)
    bodies = [json.loads(r.body) for r in web.requests]
    assert sum(b["missed_count"] for b in bodies) == 50
    assert len(bodies) < 50
    assert bodies[-1]["id"] == runs[-1].id  # the message names the latest slot


def test_the_listener_never_raises(tmp_path):
    def broken_log(message: str) -> None:
        raise RuntimeError("the log is broken too")

    # A database that cannot be opened, a history query that is needed, a log that raises.
    notifier = Notifier(
        tmp_path / "file" / "in" / "nowhere" / "x.db",
        log=broken_log,
        synchronous=True,
        sendmail=None,
    )
    (tmp_path / "file").write_text("not a folder")
    task = make_task(
        notify={"webhook": f"http://127.0.0.1:{free_port()}/", "after_failures": 2, "timeout": 1}
    )
    with HistoryStore(":memory:") as memory:
        run = record(memory)
    notifier.run_started(task, run)
    notifier.run_finished(task, run, final=True)
    notifier.run_finished(make_task(), run, final=True)  # no notify table at all


def test_events_after_close_are_dropped_with_a_log_line(store, db, web):
    log = Log()
    notifier = Notifier(db, log=log, sendmail=None)
    assert notifier.close()
    notifier.run_finished(
        make_task(notify={"webhook": f"{web.url}/hook"}), record(store), final=True
    )
    assert not web.requests and "notifier closed" in log[0]


def test_a_full_queue_drops_instead_of_blocking(store, db):
    log = Log()
    notifier = Notifier(db, log=log, sendmail=None, queue_size=1)
    blocker = make_task(notify={"command": "sleep 0.5", "timeout": 5})
    run = record(store)
    started = time.monotonic()
    for _ in range(5):
        notifier.run_finished(blocker, run, final=True)
    assert time.monotonic() - started < 0.5
    assert any("queue full" in line for line in log)
    assert notifier.close(timeout=5)


def test_notify_test_sends_a_sample_through_every_channel(web, tmp_path):
    out = tmp_path / "stdin.json"
    task = make_task(
        notify={
            "webhook": f"{web.url}/hook",
            "healthchecks": f"{web.url}/hc",
            "command": f"cat > {out}",
            "on": ["missed"],
        }
    )
    results = Notifier(None, log=Log(), sendmail=None, hostname="box").test(task)
    assert [(r.channel, r.ok) for r in results] == [
        ("command", True),
        ("webhook", True),
        ("healthchecks", True),
    ]
    assert json.loads(out.read_text())["event"] == "test"
    assert sorted(r.path for r in web.requests) == ["/hc/log", "/hook"]


def test_errors_can_be_recorded_through_the_callers_writer(store, db):
    recorded = []
    task = make_task(notify={"webhook": f"http://127.0.0.1:{free_port()}/", "after_failures": 2})
    notifier = Notifier(
        db,
        log=Log(),
        sendmail=None,
        synchronous=True,
        record_error=lambda run_id, message: recorded.append((run_id, message)),
    )
    record(store)
    run = record(store, at=T0 + timedelta(minutes=5))  # the second failure in a row: notifies
    notifier.run_finished(task, run, final=True)
    assert [r[0] for r in recorded] == [run.id] and "webhook: cannot reach" in recorded[0][1]
    assert store.get_run(run.id).notify_error is None


def test_a_hanging_endpoint_delays_only_its_own_task(store, db, web):
    """Each task has its own lane: a task whose notify command hangs (up to its timeout)
    holds one worker, and another task's webhook goes out meanwhile."""
    log = Log()
    notifier = Notifier(db, log=log, sendmail=None)
    # A timeout past the 2.5 s bound below: were the lanes shared, the webhook would wait for it.
    hanging = make_task(name="stuck", notify={"command": "sleep 30", "timeout": 3})
    healthy = make_task(name="fine", notify={"webhook": f"{web.url}/hook"})
    notifier.run_finished(hanging, record(store, task="stuck"), final=True)
    started = time.monotonic()
    notifier.run_finished(healthy, record(store, task="fine"), final=True)
    while not web.requests and time.monotonic() - started < 10:
        time.sleep(0.01)
    assert web.requests and time.monotonic() - started < 2.5
    assert notifier.close(timeout=15)
    assert any("did not finish within 3s" in line for line in log)


def test_workers_are_bounded_and_each_task_keeps_its_order(store, db, web):
    notifier = Notifier(db, log=Log(), sendmail=None)
    tasks = [
        make_task(
            name=f"t{i}", notify={"webhook": f"{web.url}/hook/t{i}", "on": ["failure", "success"]}
        )
        for i in range(12)
    ]
    sent: dict[str, list[int]] = {}
    for round_ in range(5):
        for task in tasks:
            run = record(store, task=task.name, at=T0 + timedelta(minutes=round_))
            sent.setdefault(task.name, []).append(run.id)
            notifier.run_finished(task, run, final=True)
    workers = [t for t in threading.enumerate() if t.name.startswith("cronctl-notifier")]
    assert 1 <= len(workers) <= WORKERS
    assert notifier.close(timeout=30)
    received: dict[str, list[int]] = {}
    for request in web.requests:
        task = request.path.rsplit("/", 1)[1]
        received.setdefault(task, []).append(json.loads(request.body)["id"])
    assert received == sent


def test_one_task_cannot_fill_the_queue_for_the_others(store, db, web, tmp_path):
    """A task that fires faster than its notifications go out drops its own newest ones
    (logged) once `lane_size` wait; another task's still go out."""
    log = Log()
    notifier = Notifier(db, log=log, sendmail=None, lane_size=3, queue_size=10)
    started = tmp_path / "started"
    slow = make_task(name="slow", notify={"command": f"touch {started}; sleep 0.5", "timeout": 5})
    runs = [record(store, task="slow", at=T0 + timedelta(minutes=i)) for i in range(8)]
    notifier.run_finished(slow, runs[0], final=True)
    deadline = time.monotonic() + 5
    while not started.exists() and time.monotonic() < deadline:  # a worker has the first
        time.sleep(0.01)
    for run in runs[1:]:
        notifier.run_finished(slow, run, final=True)
    other = make_task(name="other", notify={"webhook": f"{web.url}/hook"})
    notifier.run_finished(other, record(store, task="other"), final=True)
    assert web.wait_for(1, timeout=5)
    dropped = [line for line in log if "notifications waiting" in line]
    # one is being sent, three wait: the last four are dropped, each named
    assert [line.rsplit(" ", 1)[1] for line in dropped] == [str(r.id) for r in runs[4:]]
    assert not any("queue full" in line for line in log)
    assert notifier.close(timeout=10)


@pytest.mark.parametrize(
    ("environ", "run_host", "hostname", "reported_by"),
    [
        ({"CRONCTL_HOST": "web-9"}, None, "web-9", None),  # a run of no host: this one's
        ({"CRONCTL_HOST": "web-9"}, "web-9", "web-9", None),  # its own run
        ({"CRONCTL_HOST": "web-9"}, "web-2", "web-2", "web-9"),  # another host's, declared dead
        ({}, None, os.uname().nodename, None),  # no CRONCTL_HOST: the node name
    ],
)
def test_the_notification_names_the_runs_host_and_who_told_it(
    store, db, web, environ, run_host, hostname, reported_by
):
    """README.md#notifications: the host of the run (CRONCTL_HOST where set, else the node
    name), not socket.gethostname(); a run of another host (one a survivor recorded
    `abandoned`) names that host, and the host that told it."""
    task = make_task(notify={"webhook": f"{web.url}/hook"})
    run = dataclasses.replace(record(store), host=run_host)
    with Notifier(db, log=Log(), sendmail=None, environ=environ) as notifier:
        notifier.run_finished(task, run, final=True)
    [request] = web.wait_for(1)
    body = json.loads(request.body)
    assert (body["hostname"], body["reported_by"]) == (hostname, reported_by)
    delivery = Delivery(
        task=task,
        run=run,
        phase="finish",
        event="failure",
        final=True,
        hostname=hostname,
        reported_by=reported_by,
    )
    assert headline(delivery).endswith(f"failed (exit status 1) on {hostname}")
    lines = detail_lines(delivery)
    assert f"host:      {hostname}" in lines
    assert (f"told by:   {reported_by}" in lines) is (reported_by is not None)
