"""Fault scenarios 26-31 of reliability.md section 6: time.

Clock steps and daylight-saving changes (26-30) drive the real Scheduler, the code path of
`cronctl serve`, with the fake clock of tests/serve/fakes.py (a real clock cannot be stepped
in a test), a real in-memory history store (so the exactly-once index is the real one) and a
launcher that claims runs as serve's worker does. Where the job process matters (timeouts and
durations across a step), the real runner runs a real job under a clock whose wall time is
stepped while the job runs. Hot reload (31) uses the real `cronctl serve` process.

Decided (docs/reliability.md#decisions): a wall-clock jump forward follows the task's `catch_up`
policy, whatever its size (there is no cronie-style 3-hour rule), and the DST rules are
README.md#daylight-saving-time.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronctl.clock import SystemClock
from cronctl.records import Status, Trigger
from cronctl.runner.execute import Executor
from cronctl.runner.requests import RunRequest
from cronctl.serve.reload import POLL_INTERVAL
from cronctl.store import HistoryStore
from tests.serve.fakes import Harness, harness_maker, task, utc
from tests.serve.test_serve_process import Serve, serve_starter, task_text, wait_for

T0 = utc(2026, 1, 5, 12, 0, 0)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def clock_harness():
    yield from harness_maker(T0)


def slots(runs):
    return [r.scheduled_at for r in runs]


def first_attempts(h: Harness) -> Counter:
    return Counter(
        (r.task, r.scheduled_at)
        for r in h.runs()
        if r.attempt == 1 and r.trigger in (Trigger.SCHEDULE, Trigger.CATCH_UP) and r.scheduled_at
    )


def assert_exactly_once(h: Harness) -> None:
    repeated = [key for key, n in first_attempts(h).items() if n > 1]
    assert not repeated, f"slots run twice: {repeated}"


def ran(h: Harness, name: str, trigger: str | None = None):
    return [
        r
        for r in h.runs(name)
        if r.status != Status.MISSED and (trigger is None or r.trigger == trigger)
    ]


def every(start, minutes, count):
    return [start + timedelta(minutes=minutes * i) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# 26. The wall clock jumps forward 2 h


POLICIES = ("skip", "once", "all")


def test_s26_jump_forward_follows_each_tasks_catch_up_policy(clock_harness):
    """Decided (not cronie's "< 3 h: run what was skipped"): slots jumped over follow
    the task's `catch_up` policy, the same for fixed-time and wildcard tasks: `skip` records each
    `missed`, `once` runs the newest one once (trigger `catch-up`), `all` runs every one, oldest
    first, one after another. A `*/5` task under `skip`/`once` is therefore coalesced into no run
    / one run. A `missed` row says why: "the slot passed when the wall clock jumped" (not that
    serve was down). Afterwards every task fires on its normal schedule from the new time."""
    tasks = [task(f"fixed_{p}", "30 13 * * *", catch_up=p) for p in POLICIES]
    tasks += [task(f"five_{p}", "*/5 * * * *", catch_up=p) for p in POLICIES]
    h = clock_harness(tasks, outcomes={t.name: "succeeded" for t in tasks})
    h.run_until(T0 + timedelta(minutes=2, seconds=30))
    h.clock.step_wall(2 * 3600)  # 12:02:30 -> 14:02:30
    h.run_for(1)
    jumped = every(T0 + timedelta(minutes=5), 5, 24)  # 12:05 .. 14:00
    thirteen_thirty = T0 + timedelta(hours=1, minutes=30)

    assert slots(h.runs("fixed_skip", statuses=[Status.MISSED])) == [thirteen_thirty]
    assert ran(h, "fixed_skip") == []
    for name in ("fixed_once", "fixed_all"):
        assert [(r.trigger, r.scheduled_at) for r in ran(h, name)] == [
            (Trigger.CATCH_UP, thirteen_thirty)
        ]
    missed = h.runs("five_skip", statuses=[Status.MISSED])
    assert slots(missed) == jumped
    assert {r.reason for r in missed} == {"the slot passed when the wall clock jumped"}
    assert ran(h, "five_skip") == []
    assert [(r.trigger, r.scheduled_at) for r in ran(h, "five_once")] == [
        (Trigger.CATCH_UP, jumped[-1])
    ]
    caught = ran(h, "five_all")
    assert slots(caught) == jumped and {r.trigger for r in caught} == {Trigger.CATCH_UP}

    h.run_until(T0 + timedelta(hours=2, minutes=5, seconds=1))
    for p in POLICIES:
        last = h.runs(f"five_{p}")[-1]
        assert (last.trigger, last.scheduled_at) == (
            Trigger.SCHEDULE,
            T0 + timedelta(hours=2, minutes=5),
        )
    assert_exactly_once(h)


def test_s26_jump_while_a_slot_is_due_keeps_slot_order(clock_harness):
    """Decided: when the clock steps while the loop sleeps towards a slot, that slot was due
    on time and runs as a plain scheduled run, first; the slots jumped over then follow the
    catch-up policy after it, in slot order (`once`: one more run, of the newest slot; `all`:
    every slot, oldest first). Regression: `all` used to run the on-time slot after all the
    caught-up ones (out of order), and `once` dropped the jumped-over slots without a run or
    a row."""
    tasks = [task(f"five_{p}", "*/5 * * * *", catch_up=p) for p in POLICIES]
    h = clock_harness(tasks, outcomes={t.name: "succeeded" for t in tasks})
    h.run_until(T0 + timedelta(minutes=4, seconds=59.5))
    h.clock.advance(0.5)  # the sleep ends at 12:05:00 ...
    h.clock.step_wall(2 * 3600)  # ... but the wall clock says 14:05:00
    h.run_for(1)
    on_time = (Trigger.SCHEDULE, T0 + timedelta(minutes=5))
    jumped = every(T0 + timedelta(minutes=10), 5, 24)  # 12:10 .. 14:05

    def order(name):
        return [(r.trigger, r.scheduled_at) for r in ran(h, name)]

    assert order("five_skip") == [on_time]
    assert slots(h.runs("five_skip", statuses=[Status.MISSED])) == jumped
    assert order("five_once") == [on_time, (Trigger.CATCH_UP, jumped[-1])]
    assert order("five_all") == [on_time] + [(Trigger.CATCH_UP, s) for s in jumped]
    started = [r.started_at for r in ran(h, "five_all")]
    assert started == sorted(started)
    assert_exactly_once(h)


class SteppedClock(SystemClock):
    """The real clock, except that the wall clock can be stepped (monotonic time cannot)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self):
        return super().now() + self.offset

    def step_later(self, after: float, seconds: float) -> threading.Timer:
        timer = threading.Timer(after, lambda: setattr(self, "offset", timedelta(seconds=seconds)))
        timer.start()
        return timer


def run_with_a_step(command: str, timeout: int, step: float):
    """Run one real job through the runner; the wall clock steps by `step` s 0.3 s in."""
    clock = SteppedClock()
    with HistoryStore(":memory:") as store:
        executor = Executor(store, clock=clock, kill_grace=1.0)
        timer = clock.step_later(0.3, step)
        began = time.monotonic()
        try:
            run = executor.execute(
                RunRequest(task("job", "@daily", command=command, timeout=timeout), Trigger.MANUAL)
            )
        finally:
            timer.cancel()
        return run, time.monotonic() - began


def test_s26_timeouts_and_durations_follow_elapsed_time_across_a_forward_step():
    """Decided: a job's timeout and its recorded duration count elapsed (monotonic) time: a
    wall clock that steps 2 h forward while a 1 s job with a 4 s timeout runs neither times it
    out nor makes its duration 2 h. Its start and end stay wall-clock times, as they were read."""
    run, elapsed = run_with_a_step("sleep 1", timeout=4, step=2 * 3600)
    assert run.status == Status.SUCCEEDED, run.reason
    assert 800 <= run.duration_ms <= 1000 * elapsed + 100
    assert run.finished_at - run.started_at > timedelta(hours=1)  # the wall clock did step


# ---------------------------------------------------------------------------------------------
# 27. The wall clock jumps back 1 h


def test_s27_jump_back_never_reruns_a_slot_and_the_loop_keeps_waking(clock_harness):
    """Decided: no slot that ran (or was claimed) runs again after a step back: each task's
    next slot is the first after the newest slot it already ran, so after a 1 h step back a
    `* * * * *` or `@every 10s` task pauses until the wall clock passes its newest slot again
    (the repeated wall times are the same instants, and a slot runs once), and the database's
    unique (task, slot) key is never even needed. A fixed-time task due in the repeated
    hour that has not run yet runs once. The loop never sleeps more than the task-file poll
    interval (1 s), so it never oversleeps a step in either direction."""
    tasks = [
        task("minutely", "* * * * *"),
        task("ten", "@every 10s"),
        task("later", "45 12 * * *"),
    ]
    h = clock_harness(tasks, outcomes={t.name: "succeeded" for t in tasks})
    h.run_until(T0 + timedelta(minutes=30, seconds=5))
    before = {t.name: slots(h.runs(t.name)) for t in tasks}
    assert len(before["minutely"]) == 30 and len(before["ten"]) == 180 and before["later"] == []
    h.clock.step_wall(-3600)  # 12:30:05 -> 11:30:05
    h.run_until(T0 + timedelta(minutes=50))  # an hour and 20 minutes of real time

    assert_exactly_once(h)
    assert h.launcher.taken == []  # the loop itself never tried a slot again
    minutely = slots(h.runs("minutely"))
    assert minutely[:30] == before["minutely"]
    assert minutely[30:] == every(T0 + timedelta(minutes=31), 1, 20)  # 12:31 .. 12:50
    ten = slots(h.runs("ten"))
    assert ten[180] == T0 + timedelta(minutes=30, seconds=10)
    assert slots(h.runs("later")) == [T0 + timedelta(minutes=45)]
    assert max(h.clock.sleeps) <= POLL_INTERVAL + 1e-6
    assert all(r.duration_ms is None or r.duration_ms >= 0 for r in h.runs())


def test_s27_no_negative_duration_and_no_early_timeout_across_a_step_back():
    """Decided: a wall clock stepped 1 h back while a job runs changes neither its timeout
    (a `sleep 30` with a 1 s timeout is `timed_out` after about 1 s, not 1 h later) nor its
    duration, which is elapsed time and never negative, even though its recorded end is
    then earlier on the wall clock than its start."""
    run, elapsed = run_with_a_step("sleep 30", timeout=1, step=-3600)
    assert run.status == Status.TIMED_OUT
    assert elapsed < 10
    assert 900 <= run.duration_ms <= 1000 * elapsed + 100
    assert run.finished_at < run.started_at  # as read from the stepped wall clock


# ---------------------------------------------------------------------------------------------
# 28. A jump of 3 h or more (resume after a day, NTP fixing a dead RTC)


def test_s28_a_long_jump_is_never_a_burst(clock_harness):
    """Decided: a long jump (here a day and 2 h: a resume, or NTP correcting a dead RTC) is no
    different from a short one: the `catch_up` policy applies, with its caps. `skip` records at
    most 100 `missed` rows a task (the newest; a warning counts the rest), `once` runs one
    catch-up however old the slot is (there is no age window), `all` runs at most the newest
    100 slots, strictly one at a time. Nothing ever starts in a burst."""
    tasks = [task(f"five_{p}", "*/5 * * * *", catch_up=p) for p in POLICIES]
    tasks += [task(f"daily_{p}", "0 3 * * *", catch_up=p) for p in ("skip", "once")]
    outcomes = {t.name: "succeeded" for t in tasks if t.name != "five_all"}
    h = clock_harness(tasks, outcomes=outcomes)
    h.run_until(T0 + timedelta(minutes=2))
    h.clock.step_wall(26 * 3600)  # 12:02 -> 14:02 the next day: 312 slots of */5 passed
    h.run_for(0.01)
    now = T0 + timedelta(hours=26, minutes=2)
    newest = every(now - timedelta(minutes=2 + 5 * 99), 5, 100)  # the newest 100 slots

    assert slots(h.runs("five_skip", statuses=[Status.MISSED])) == newest
    assert [(r.trigger, r.scheduled_at) for r in ran(h, "five_once")] == [
        (Trigger.CATCH_UP, newest[-1])
    ]
    assert slots(h.runs("daily_skip", statuses=[Status.MISSED])) == [utc(2026, 1, 6, 3)]
    assert slots(ran(h, "daily_once")) == [utc(2026, 1, 6, 3)]

    caught = []
    for _ in range(100):
        running = h.launcher.running("five_all")
        assert len(running) == 1, "catch-up runs of one task never overlap"
        caught.append(running[0].handle.request.scheduled_at)
        h.launcher.finish(running[0])
        h.run_for(0.01)
    assert caught == newest
    assert h.launcher.running("five_all") == []
    assert_exactly_once(h)


# ---------------------------------------------------------------------------------------------
# 29, 30. Daylight saving time (README.md#daylight-saving-time)


def zone_tasks(zone: str, *schedules: str, prefix: str = ""):
    return [task(f"{prefix}{i}", schedule, timezone=zone) for i, schedule in enumerate(schedules)]


def run_day(clock_harness, tasks, start, until) -> Harness:
    h = clock_harness(tasks, start=start, outcomes={t.name: "succeeded" for t in tasks})
    h.run_until(until)
    assert h.runs(statuses=[Status.MISSED]) == []  # DST is not a clock jump: nothing missed
    for run in h.runs():
        assert abs((run.started_at - run.scheduled_at).total_seconds()) < 0.01  # on time
    assert_exactly_once(h)
    return h


@pytest.mark.parametrize(
    ("zone", "start", "until", "fixed_at", "quarter_before"),
    [
        # Berlin 2025-03-30: 02:00 CET -> 03:00 CEST; 02:30 does not exist.
        (
            "Europe/Berlin",
            utc(2025, 3, 29, 22),
            utc(2025, 3, 30, 3),
            utc(2025, 3, 30, 1),
            utc(2025, 3, 30, 0, 45),
        ),
        # New York 2025-03-09: 02:00 EST -> 03:00 EDT.
        (
            "America/New_York",
            utc(2025, 3, 9, 4),
            utc(2025, 3, 9, 9),
            utc(2025, 3, 9, 7),
            utc(2025, 3, 9, 6, 45),
        ),
    ],
)
def test_s29_spring_forward(
    clock_harness, cronctl_exe, zone, start, until, fixed_at, quarter_before
):
    """Decided (README.md#daylight-saving-time, at the reference's instants): a fixed-time task
    whose wall time falls in the gap fires once, at the first instant after it: `30 2 * * *` at
    03:00 local = 2025-03-30T01:00Z (Berlin) / 2025-03-09T07:00Z (New York); `0,30 2 * * *` fires
    once there too. A wildcard task loses the wall times that do not exist: `*/15 * * * *` has
    no 02:xx run and goes from 01:45 to 03:00 local, 15 real minutes, no burst. `explain` notes
    the shifted run."""
    tasks = zone_tasks(zone, "30 2 * * *", "0,30 2 * * *", "*/15 * * * *")
    h = run_day(clock_harness, tasks, start, until)
    local = ZoneInfo(zone)
    for name in ("0", "1"):
        (fired,) = slots(h.runs(name))
        assert fired == fixed_at
        assert (fired.astimezone(local).hour, fired.astimezone(local).minute) == (3, 0)
    quarters = slots(h.runs("2"))
    assert not [s for s in quarters if s.astimezone(local).hour == 2]
    gap = quarters.index(quarter_before)
    assert quarters[gap + 1] == fixed_at  # 01:45 -> 03:00 local: the next quarter, no burst
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(quarters))

    day = fixed_at.astimezone(local).date().isoformat()
    shown = subprocess.run(
        [
            *cronctl_exe,
            "explain",
            "30 2 * * *",
            "--tz",
            zone,
            "--from",
            f"{day}T00:00",
            "--count",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    explained = json.loads(shown.stdout)
    assert explained["next"] == [fixed_at.astimezone(local).isoformat()]
    assert any(day in note and "03:00" in note for note in explained["notes"])


def test_s30_fall_back(clock_harness):
    """Decided (README.md#daylight-saving-time): a fixed-time task in the repeated hour runs once,
    in the first pass: `30 2 * * *` Berlin at 2025-10-26T00:30Z (not 01:30Z), `30 1 * * *` New York
    at 2025-11-02T05:30Z (not 06:30Z). A wildcard task fires in both passes: `*/30 * * * *` runs 4
    times in the repeated hour (2 a pass), `*/15 1 * * *` 8 times. `@every 30m` follows elapsed
    time (epoch-aligned UTC slots), so it too runs 4 times in the two real hours the repeated
    wall hour lasts. Tasks in UTC are unaffected."""
    berlin = zone_tasks("Europe/Berlin", "30 2 * * *", "*/30 * * * *", prefix="b")
    in_utc = zone_tasks("UTC", "30 1 * * *", "*/30 * * * *", prefix="u")
    h = run_day(clock_harness, berlin + in_utc, utc(2025, 10, 25, 22), utc(2025, 10, 26, 3))
    assert slots(h.runs("b0")) == [utc(2025, 10, 26, 0, 30)]
    repeated = [s for s in slots(h.runs("b1")) if s.astimezone(BERLIN).hour == 2]
    assert repeated == every(utc(2025, 10, 26, 0), 30, 4)
    assert [s.astimezone(BERLIN).tzname() for s in repeated] == ["CEST", "CEST", "CET", "CET"]
    assert slots(h.runs("u0")) == [utc(2025, 10, 26, 1, 30)]
    assert slots(h.runs("u1")) == every(utc(2025, 10, 25, 22, 30), 30, 10)

    york = zone_tasks(
        "America/New_York", "30 1 * * *", "*/30 * * * *", "*/15 1 * * *", "@every 30m", prefix="n"
    )
    h = run_day(clock_harness, york, utc(2025, 11, 2, 3), utc(2025, 11, 2, 9))
    assert slots(h.runs("n0")) == [utc(2025, 11, 2, 5, 30)]
    for name, count, step in (("n1", 4, 30), ("n2", 8, 15), ("n3", 4, 30)):
        repeated = [s for s in slots(h.runs(name)) if s.astimezone(NEW_YORK).hour == 1]
        assert repeated == every(utc(2025, 11, 2, 5), step, count), name


# ---------------------------------------------------------------------------------------------
# 31. Hot reload while running (the real `cronctl serve`)


@pytest.fixture
def serve_proc(cronctl_exe, cronctl_home):
    yield from serve_starter(cronctl_exe, cronctl_home)


def reloads(process: Serve) -> list[str]:
    return [line for line in process.log.splitlines() if "task file reloaded" in line]


def wait_reloads(process: Serve, count: int) -> list[str]:
    return wait_for(
        lambda: len(reloads(process)) >= count and reloads(process), what=f"{count} reloads"
    )


def test_s31_add_remove_and_change_tasks_while_running(serve_proc, tasks_path):
    """Decided: serve picks up the edit within 2 s without restarting. An added task is
    scheduled from the moment of the reload. A removed task's running job is left alone: it
    finishes and is recorded, and the task starts nothing new (its waiting runs are dropped).
    A changed schedule is recomputed from now (no catch-up of the slots the new schedule would
    have had before)."""
    keep = task_text("keep")
    tasks_path.write_text(
        keep + task_text("long", command="sleep 2") + task_text("chg", "0 0 1 1 *")
    )
    process = serve_proc()
    (running,) = process.wait_runs("long", 1, statuses=[Status.RUNNING])
    edited = datetime.now(UTC)
    began = time.monotonic()
    tasks_path.write_text(keep + task_text("chg") + task_text("added"))
    (line,) = wait_reloads(process, 1)
    assert time.monotonic() - began < 3.5  # README: within 2 s; slack for a loaded machine
    assert "added added" in line and "removed long" in line and "changed chg" in line
    reloaded = datetime.now(UTC)

    process.wait_runs("added", 1)
    process.wait_runs("chg", 1)
    assert min(r.scheduled_at for r in process.runs("chg")) >= edited
    wait_for(
        lambda: process.runs("long", statuses=[Status.SUCCEEDED]), what="the removed task's run"
    )
    assert [r.id for r in process.runs("long", statuses=[Status.SUCCEEDED])] == [running.id]
    count = len(process.runs("long"))
    process.wait_runs("keep", len(process.runs("keep")) + 2)
    long_runs = process.runs("long")
    assert len(long_runs) == count and all(r.started_at <= reloaded for r in long_runs)
    assert process.log.count("started (pid") == 1  # never restarted
    assert process.stop() == 0


def test_s31_editor_saves_are_detected(serve_proc, tasks_path):
    """Decided: the file is watched by path (inode, mtime, size), not through an open
    descriptor, so every way editors save is seen: write a temporary file and rename it over
    (most editors, `cronctl edit`), rename the original to a backup then write a new file
    (vim's default), and delete then recreate. A moment without the file keeps the last good
    tasks (logged once); to clear all tasks, empty the file."""
    tasks_path.write_text(task_text("a"))
    process = serve_proc()
    process.wait_runs("a", 1)

    temporary = tasks_path.with_name("tasks.toml.tmp")
    temporary.write_text(task_text("a") + task_text("renamed"))
    os.replace(temporary, tasks_path)
    process.wait_log("added renamed")

    backup = tasks_path.with_name("tasks.toml~")
    os.rename(tasks_path, backup)
    tasks_path.write_text(task_text("a") + task_text("renamed") + task_text("vim"))
    backup.unlink()
    process.wait_log("added vim")

    tasks_path.unlink()
    time.sleep(0.05)
    tasks_path.write_text(task_text("a") + task_text("vim") + task_text("recreated"))
    process.wait_log("added recreated")
    assert "removed renamed" in process.log
    for name in ("renamed", "vim", "recreated"):
        process.wait_runs(name, 1)
    assert process.stop() == 0


def test_s31_ten_saves_in_a_second_are_one_reload(serve_proc, tasks_path):
    """Decided: a reload waits until the file has been quiet for a moment (0.3 s, well within
    the 2 s README.md#what-serve-guarantees allows), so a burst of saves (10 in a second here, or
    an editor's several writes) is read once, in its final state, and a file caught half-written is
    read only once it has settled (not reported as invalid). SIGHUP reloads at once."""
    tasks_path.write_text(task_text("a", command="echo v-start"))
    process = serve_proc()
    process.wait_runs("a", 1)
    time.sleep(1.2)  # nothing of the start-up poll left in flight
    for i in range(10):
        tasks_path.write_text(task_text("a", command=f"echo v{i}") + "#" * i + "\n")
        time.sleep(0.1)
    (line,) = wait_reloads(process, 1)
    assert "changed a" in line
    time.sleep(2.5)  # several polls later
    assert len(reloads(process)) == 1, reloads(process)
    checked = datetime.now(UTC)
    newest = wait_for(
        lambda: [
            r for r in process.runs("a", statuses=[Status.SUCCEEDED]) if r.started_at > checked
        ],
        what="a run after the reload",
    )[0]
    with HistoryStore(str(process.home / "history.db")) as store:
        assert store.get_run(newest.id).stdout.data == b"v9\n"  # the final text was read
    assert "not reloaded" not in process.log
    assert process.stop() == 0


# h16. The end of time: datetime holds nothing past 9999-12-31 23:59:59.999999.
END_OF_9999 = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "zone", "after", "expected"),
    [
        ("* * * * *", "UTC", END_OF_9999, None),
        ("@every 1h", "UTC", END_OF_9999, None),
        ("0 0 1 1 *", "UTC", END_OF_9999, None),
        ("@yearly", "UTC", datetime(9999, 6, 1, tzinfo=UTC), None),
        ("* * * * *", "Pacific/Kiritimati", END_OF_9999, None),  # already year 10000 there
        ("* * * * *", "Pacific/Honolulu", END_OF_9999, None),  # 13:59, but 14:00 is year 10000
        ("* * * * *", "UTC", END_OF_9999 - timedelta(minutes=1), END_OF_9999),
    ],
)
def test_h16_next_after_past_year_9999_is_none(schedule, zone, after, expected):
    """Decided: past the last instant Python can hold there is no next fire time: next_after
    returns None and `upcoming` stops, never OverflowError (a traceback in `explain` or
    serve)."""
    from cronctl.schedule import Schedule

    parsed = Schedule.parse(schedule, zone)
    found = parsed.next_after(after)
    assert found == expected
    times = parsed.upcoming(after - timedelta(minutes=2), 5)
    assert all(t.astimezone(UTC) <= END_OF_9999 for t in times)
    assert len(times) <= 3


def test_h16_explain_at_the_end_of_time_lists_what_there_is(cronctl_exe):
    """`explain` lists the fire times that exist before the end of year 9999; asking for more
    is the error of s03 (exit 2), never a traceback."""
    args = ["explain", "* * * * *", "--tz", "UTC", "--from", "9999-12-31T23:57:00+00:00"]
    result = subprocess.run(
        [*cronctl_exe, *args, "--count", "2"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "9999-12-31T23:58:00" in result.stdout and "9999-12-31T23:59:00" in result.stdout
    more = subprocess.run(
        [*cronctl_exe, *args, "--count", "3"], capture_output=True, text=True, timeout=30
    )
    assert more.returncode == 2 and "year 9999" in more.stderr, more.stderr
    assert "Traceback" not in more.stderr
