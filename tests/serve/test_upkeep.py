"""The loop's chores on their own: when the task file is looked at, the heartbeat, retention
and the watchdog ping."""

from __future__ import annotations

import pytest

from cronctl.serve.reload import POLL_INTERVAL, SETTLE
from cronctl.serve.upkeep import HEARTBEAT_INTERVAL, POLL_SLACK, PRUNE_INTERVAL, Upkeep
from tests.serve.fakes import utc

T0 = utc(2026, 1, 5, 12, 0, 0)
M0 = 1000.0


class Systemd:
    def __init__(self, enabled: bool = True, watchdog_interval: float | None = None) -> None:
        self.enabled = enabled
        self.watchdog_interval = watchdog_interval
        self.sent: list[str] = []

    def status(self, text: str) -> bool:
        self.sent.append(f"STATUS={text}")
        return True

    def watchdog(self) -> bool:
        self.sent.append("WATCHDOG=1")
        return True


class Writes:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def heartbeat(self, now) -> None:
        self.calls.append(("heartbeat", now))

    def retention(self, now, *, keep_days, keep_runs) -> None:
        self.calls.append(("retention", now, keep_days, keep_runs))


class Watcher:
    """Answers polls from a script: each poll takes (loaded, settling)."""

    def __init__(self, answers) -> None:
        self.answers = list(answers)
        self.polls: list[bool] = []
        self.settling = False

    def poll(self, *, force: bool = False):
        self.polls.append(force)
        loaded, self.settling = self.answers.pop(0) if self.answers else (None, False)
        return loaded


def make(watcher=None, systemd=None, on_reload=None):
    writes = Writes()
    upkeep = Upkeep(writes, systemd or Systemd(), watcher, keep_days=30, on_reload=on_reload)
    upkeep.start(M0)
    return upkeep, writes


def test_the_task_file_is_polled_every_interval_a_little_early():
    watcher = Watcher([])
    upkeep, _ = make(watcher)
    assert upkeep.poll_task_file(M0 + POLL_INTERVAL - POLL_SLACK - 0.01, force=False) is None
    assert watcher.polls == []
    upkeep.poll_task_file(M0 + POLL_INTERVAL - POLL_SLACK, force=False)
    assert watcher.polls == [False]
    assert upkeep.seconds_to_next(M0 + POLL_INTERVAL) == pytest.approx(POLL_INTERVAL - POLL_SLACK)


def test_a_change_settling_is_looked_at_again_after_settle():
    watcher = Watcher([(None, True), ("loaded", False)])
    upkeep, _ = make(watcher)
    at = M0 + POLL_INTERVAL
    assert upkeep.poll_task_file(at, force=False) is None
    assert upkeep.seconds_to_next(at) == pytest.approx(SETTLE)
    assert upkeep.poll_task_file(at + SETTLE, force=False) == "loaded"
    assert upkeep.seconds_to_next(at + SETTLE) == pytest.approx(POLL_INTERVAL)


def test_a_forced_poll_reads_at_once():
    watcher = Watcher([("loaded", False)])
    upkeep, _ = make(watcher)
    assert upkeep.poll_task_file(M0 + 0.1, force=True) == "loaded"
    assert watcher.polls == [True]


def test_without_a_watcher_the_poll_still_paces_the_loop():
    upkeep, _ = make(None)
    assert upkeep.poll_task_file(M0 + POLL_INTERVAL, force=True) is None
    assert upkeep.seconds_to_next(M0 + POLL_INTERVAL) == pytest.approx(POLL_INTERVAL)


def test_a_failing_reload_listener_is_logged_not_raised(caplog):
    def boom(loaded):
        raise RuntimeError("listener")

    upkeep, _ = make(on_reload=boom)
    upkeep.reloaded("loaded")
    assert "a reload listener failed" in caplog.text
    heard = []
    make(on_reload=heard.append)[0].reloaded("loaded")
    assert heard == ["loaded"]


def test_heartbeat_with_status_and_retention_at_start_then_on_their_periods():
    systemd = Systemd()
    upkeep, writes = make(systemd=systemd)
    keep = {"a": 5}
    upkeep.chores(T0, M0, lambda: "1 task", lambda: keep)
    assert writes.calls == [("retention", T0, 30, {"a": 5})]
    upkeep.chores(T0, M0 + HEARTBEAT_INTERVAL, lambda: "1 task", lambda: keep)
    assert writes.calls[1:] == [("heartbeat", T0)] and systemd.sent == ["STATUS=1 task"]
    upkeep.chores(T0, M0 + HEARTBEAT_INTERVAL + 1, lambda: "1 task", lambda: keep)
    assert len(writes.calls) == 2
    upkeep.chores(T0, M0 + PRUNE_INTERVAL, lambda: "1 task", lambda: keep)
    assert [call[0] for call in writes.calls] == [
        "retention",
        "heartbeat",
        "heartbeat",
        "retention",
    ]


def test_status_goes_to_systemd_only_when_it_listens():
    asked = []
    systemd = Systemd(enabled=False)
    upkeep, _ = make(systemd=systemd)
    upkeep.tell_status(lambda: asked.append(1) or "x")
    assert systemd.sent == [] and asked == []  # not even computed


def test_the_watchdog_is_pinged_on_its_interval():
    systemd = Systemd(enabled=True, watchdog_interval=2.0)
    upkeep, _ = make(systemd=systemd)
    for step in range(9):  # every half second for 4 s
        upkeep.chores(T0, M0 + step * 0.5, lambda: "", dict)
    assert systemd.sent.count("WATCHDOG=1") == 3  # at 0, 2 and 4 s
    upkeep.poll_task_file(M0 + 4.5, force=False)
    assert upkeep.seconds_to_next(M0 + 4.5) == pytest.approx(1.5)  # the ping, before the poll
