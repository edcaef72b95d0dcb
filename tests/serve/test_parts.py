"""The small parts of serve: the lock, sd_notify, the log formats, the watchdog, events for
rows that never ran."""

from __future__ import annotations

import io
import logging
import os
import socket
from datetime import timedelta

import pytest

from cronctl.errors import LockHeldError, StoreError
from cronctl.records import Status
from cronctl.serve import log as serve_log
from cronctl.serve.lock import ServeLock
from cronctl.serve.systemd import SystemdNotifier
from tests.serve.fakes import task, utc


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    path = tmp_path / "state" / "serve.lock"
    first = ServeLock(path)
    first.acquire()
    assert path.read_text().strip() == str(os.getpid())
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(LockHeldError) as caught:
        ServeLock(path).acquire()
    assert caught.value.message == f"cronctl serve is already running (pid {os.getpid()})"
    assert caught.value.exit_code == 75
    first.release()
    with ServeLock(path):  # released: free again
        pass


def test_lock_descriptor_is_not_inherited(tmp_path):
    lock = ServeLock(tmp_path / "serve.lock")
    lock.acquire()
    assert os.get_inheritable(lock._fd) is False
    lock.release()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dangling symlink"])
def test_h10_the_lock_is_never_opened_through_a_link_or_a_non_file(tmp_path, kind):
    """h10: a planted `serve.lock` symlink (or a FIFO) is refused, and what it points at is
    left exactly as it was: serve would write its pid into it and empty it on exit."""
    path = tmp_path / "serve.lock"
    target = tmp_path / "precious.txt"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        if kind == "symlink":
            target.write_text("keep me\n")
        path.symlink_to(target)
    with pytest.raises(StoreError) as caught:
        ServeLock(path).acquire()
    assert "cronctl writes only files of its own there" in caught.value.message
    if kind == "symlink":
        assert target.read_text() == "keep me\n"
    if kind == "dangling symlink":
        assert not target.exists()  # not created through the link


def datagram_socket(address):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_sd_notify_to_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    with datagram_socket(path) as sock:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
        assert notifier.ready("3 tasks loaded")
        assert sock.recv(1024) == b"READY=1\nSTATUS=3 tasks loaded"
        assert notifier.stopping()
        assert sock.recv(1024) == b"STOPPING=1"
        notifier.close()


def test_sd_notify_to_an_abstract_socket():
    name = f"cronctl-test-{os.getpid()}"
    with datagram_socket("\0" + name) as sock:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.watchdog()
        assert sock.recv(1024) == b"WATCHDOG=1"
        notifier.close()


def test_sd_notify_without_a_socket_is_a_no_op(caplog):
    assert SystemdNotifier({}).ready() is False
    missing = SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent/socket"})
    assert missing.ready() is False and missing.status("x") is False
    assert caplog.text.count("cannot notify systemd") == 1


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert SystemdNotifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    assert (
        SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval
        is None
    )
    assert SystemdNotifier({}).watchdog_interval is None


def test_the_loop_pings_the_watchdog(harness, tmp_path):
    path = str(tmp_path / "notify")
    with datagram_socket(path) as sock:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
        h = harness([task("daily", "0 3 * * *")], systemd=notifier)
        h.run_for(10)
        sock.settimeout(0.1)
        messages = []
        try:
            while True:
                messages.append(sock.recv(1024))
        except TimeoutError:
            pass
        assert messages.count(b"WATCHDOG=1") in (5, 6)  # every 2 s (half of 4 s)
        notifier.close()


def test_journal_lines_carry_priority_prefixes(tmp_path):
    stream = open(tmp_path / "journal", "w+")
    info = os.fstat(stream.fileno())
    assert serve_log.connected_to_journal(
        stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
    )
    assert not serve_log.connected_to_journal(stream, {"JOURNAL_STREAM": "1:2"})
    serve_log.setup(stream, environ={"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
    serve_log.log.error("bad")
    serve_log.log.warning("careful")
    serve_log.log.info("fine")
    stream.seek(0)
    assert stream.read().splitlines() == ["<3>bad", "<4>careful", "<6>fine"]


def test_plain_lines_elsewhere():
    stream = io.StringIO()
    serve_log.setup(stream, environ={})
    serve_log.log.warning("careful")
    line = stream.getvalue().strip()
    assert line.endswith(" warning careful") and "\x1b" not in line
    assert line[:4].isdigit()  # an ISO 8601 timestamp first


class Recording:
    def __init__(self):
        self.finished = []

    def run_started(self, task, run):
        pass

    def run_finished(self, task, run, *, final):
        self.finished.append((task.name, run.status, final))


def test_skipped_and_missed_rows_reach_the_listeners(harness):
    events = Recording()
    h = harness([task("m", "* * * * *")], start=utc(2026, 1, 5, 12, 10, 30), events=events)
    at = utc(2026, 1, 5, 12, 7)
    run_id = h.store.start_run("m", "schedule", started_at=at, scheduled_at=at)
    h.store.finish_run(run_id, status=Status.SUCCEEDED, finished_at=at)
    h.run_for(125)  # 12:08..12:10 missed; 12:11 runs and still runs at 12:12
    assert events.finished == [
        ("m", Status.MISSED, True),
        ("m", Status.MISSED, True),
        ("m", Status.MISSED, True),
        ("m", Status.SKIPPED, True),
    ]


def test_status_line_names_the_next_task(harness):
    h = harness([task("a", "0 3 * * *"), task("b", "0 2 * * *")]).start()
    assert h.scheduler.status_line() == "2 tasks, 0 running; next: b at 2026-01-06T02:00:00+00:00"


def test_clock_jump_is_logged(harness, caplog):
    caplog.set_level(logging.WARNING, logger="cronctl.serve")
    h = harness([task("a", "0 3 * * *")])
    h.run_for(5)
    h.clock.step_wall(-7200)
    h.run_for(2)
    assert "wall clock moved back by 7200.0s" in caplog.text
    assert h.clock.now() == utc(2026, 1, 5, 10, 0, 7)
    assert h.scheduler.states["a"].next_slot == utc(2026, 1, 6, 3) - timedelta(0)


def test_report_from_a_snapshot():
    now = utc(2026, 1, 5, 12, 0, 0)
    view = serve_log.LoopView(
        (
            serve_log.TaskView(
                task("zeta", "0 * * * *", timezone="Europe/Berlin"),
                utc(2026, 1, 5, 13),
                False,
                runs=(12, None),
                waiting=1,
                queued=True,
                backlog=3,
                timers=(("retry", 59.7), ("start", -0.2)),
            ),
            serve_log.TaskView(task("alpha", "0 3 * * *"), utc(2026, 1, 5, 13), False),
            serve_log.TaskView(task("boot", "@reboot"), None, True),
            serve_log.TaskView(task("gone", "0 3 * * *"), None, False),
            serve_log.TaskView(task("off", enabled=False), None, False),
        ),
        going=2,
        waiting=1,
        max_parallel=2,
        timers=2,
        started=40,
    )
    assert serve_log.report(view, now) == [
        "state: 5 tasks, 2 runs going (1 waiting for a free place, at most 2), 2 timers,"
        " 40 runs started since serve started",
        "state: task alpha: next 2026-01-05T13:00:00+00:00 (in 1h)",
        "state: task boot: idle",
        "state: task gone: no next slot",
        "state: task off: disabled",
        "state: task zeta: next 2026-01-05T14:00:00+01:00 (in 1h); running: run 12, starting;"
        " 1 waiting to start; 1 queued behind the running one; 3 catch-up runs to go;"
        " retry in 59s; start in 0s",
    ]
    empty = serve_log.LoopView((), going=0, waiting=0, max_parallel=1, timers=0, started=0)
    assert serve_log.report(empty, now) == [
        "state: 0 tasks, 0 runs going (0 waiting for a free place, at most 1), 0 timers,"
        " 0 runs started since serve started"
    ]


def test_status_line_names_the_first_task_due():
    tasks = [
        (task("zeta", "0 * * * *", timezone="Europe/Berlin"), utc(2026, 1, 5, 13)),
        (task("alpha", "0 3 * * *"), utc(2026, 1, 5, 13)),
        (task("later", "0 3 * * *"), utc(2026, 1, 5, 14)),
        (task("boot", "@reboot"), None),
        (task("off", enabled=False), None),
    ]
    # The first of equal next slots in the loop's order; `running` counts a removed task's too.
    assert serve_log.status_line(tasks, 3) == (
        "4 tasks, 3 running; next: zeta at 2026-01-05T14:00:00+01:00"
    )
    assert serve_log.status_line([], 0) == "0 tasks, 0 running"
    assert serve_log.status_line([(task("one"), None)], 1) == "1 task, 1 running"
