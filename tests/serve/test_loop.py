"""The scheduler loop with a fake clock and a fake launcher (no processes, a real in-memory
history store, so the exactly-once index is the real one)."""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from cronctl import taskfile
from cronctl.records import Status, Trigger
from cronctl.serve.reload import TaskFileWatcher
from cronctl.serve.workers import REPLACED_REASON
from cronctl.taskfile import stamp_of
from tests.serve.fakes import task, utc

T0 = utc(2026, 1, 5, 12, 0, 0)


def slots(runs):
    return [r.scheduled_at for r in runs]


def no_duplicate_slots(h):
    firsts = [
        (r.task, r.scheduled_at)
        for r in h.runs()
        if r.attempt == 1 and r.trigger in (Trigger.SCHEDULE, Trigger.CATCH_UP) and r.scheduled_at
    ]
    dupes = [k for k, n in Counter(firsts).items() if n > 1]
    assert not dupes
    return firsts


# ---------------------------------------------------------------------------- firing


def test_every_second_fires_each_slot_once_on_time(harness):
    h = harness([task("a")], outcomes={"a": "succeeded"})
    h.run_for(10.5)
    runs = h.runs("a")
    assert slots(runs) == [T0 + timedelta(seconds=i) for i in range(1, 11)]
    assert all(r.trigger == Trigger.SCHEDULE and r.started_at == r.scheduled_at for r in runs)


def test_sleeps_until_the_next_slot_not_every_tick(harness):
    h = harness([task("daily", "0 3 * * *")])
    h.run_for(3600)
    # Woken only by the task-file poll (1 s); never a busy loop of zero-length sleeps.
    assert min(h.clock.sleeps) > 0.5
    assert len(h.clock.sleeps) <= 3601
    assert h.runs() == []


def test_cron_schedule_in_a_zone(harness):
    h = harness([task("b", "15 9 * * *", timezone="Europe/Berlin")], outcomes={"b": "succeeded"})
    h.run_for(2 * 86400)
    assert slots(h.runs()) == [utc(2026, 1, 6, 8, 15), utc(2026, 1, 7, 8, 15)]


def test_dst_gap_fires_once_at_the_first_instant_after(harness):
    # 2026-03-08: New York springs forward at 02:00 EST -> 03:00 EDT; 02:30 does not exist.
    start = utc(2026, 3, 7, 12)
    h = harness(
        [task("n", "30 2 * * *", timezone="America/New_York")],
        start=start,
        outcomes={"n": "succeeded"},
    )
    h.run_until(utc(2026, 3, 10, 12))
    fired = slots(h.runs())
    assert fired == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]
    local = fired[0].astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.tzname()) == (3, 0, "EDT")


def test_dst_fall_back_fixed_time_runs_once(harness):
    # 2026-11-01: New York falls back at 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    h = harness(
        [task("f", "30 1 * * *", timezone="America/New_York")],
        start=utc(2026, 10, 31, 12),
        outcomes={"f": "succeeded"},
    )
    h.run_until(utc(2026, 11, 1, 12))
    assert slots(h.runs()) == [utc(2026, 11, 1, 5, 30)]  # 01:30 EDT, not 01:30 EST again


def test_jitter_delays_the_start_but_keeps_the_slot(harness):
    h = harness(
        [task("j", "* * * * *", jitter=30)], outcomes={"j": "succeeded"}, rng=random.Random(7)
    )
    h.run_for(10 * 60 + 31)
    launched = h.launcher.launched
    assert len(launched) == 10
    delays = [(item.at - item.handle.request.scheduled_at).total_seconds() for item in launched]
    assert all(0 <= d < 30.5 for d in delays)  # the loop wakes at most POLL_INTERVAL late
    assert len({round(d) for d in delays}) > 3
    assert all(item.handle.request.scheduled_at.second == 0 for item in launched)


def test_reboot_runs_once_per_start(harness):
    h = harness([task("r", "@reboot")], outcomes={"r": "succeeded"})
    h.run_for(120)
    runs = h.runs("r")
    assert [(r.trigger, r.scheduled_at) for r in runs] == [(Trigger.REBOOT, None)]


def test_disabled_task_never_fires(harness):
    h = harness([task("off", enabled=False)], outcomes={"off": "succeeded"})
    h.run_for(5)
    assert h.runs() == []


# ---------------------------------------------------------------------------- overlap


def test_overlap_skip_records_skipped_runs(harness):
    h = harness([task("s", overlap="skip")])
    h.run_for(3.5)
    runs = h.runs("s")
    assert [r.status for r in runs] == [Status.RUNNING, Status.SKIPPED, Status.SKIPPED]
    assert runs[1].reason == f"previous run {runs[0].id} still running"
    assert slots(runs) == [T0 + timedelta(seconds=i) for i in (1, 2, 3)]
    h.launcher.finish("s")
    h.run_for(1)
    assert h.statuses("s")[-1] == Status.RUNNING  # the next slot starts again


def test_overlap_queue_keeps_one_waiting(harness):
    h = harness([task("q", overlap="queue")])
    h.run_for(3.5)  # slot 1 runs, slot 2 waits, slot 3 is skipped
    runs = h.runs("q")
    assert [(r.scheduled_at, r.status) for r in runs] == [
        (T0 + timedelta(seconds=1), Status.RUNNING),
        (T0 + timedelta(seconds=3), Status.SKIPPED),
    ]
    assert "already waiting" in runs[1].reason
    h.launcher.finish("q")
    h.run_for(0.1)
    waiting = h.launcher.running("q")
    assert len(waiting) == 1 and waiting[0].handle.request.scheduled_at == T0 + timedelta(seconds=2)


def test_overlap_allow_runs_concurrently(harness):
    h = harness([task("a", overlap="allow")])
    h.run_for(3.5)
    assert len(h.launcher.running("a")) == 3


def test_overlap_replace_stops_the_previous_run(harness):
    h = harness([task("r", overlap="replace")])
    h.run_for(1.5)
    first = h.launcher.running("r")[0]
    h.run_for(1, settle=False)  # slot 2: the first run is asked to stop; slot 2 waits for it
    assert first.handle.request.stop.is_set()
    assert first.handle.request.stop.reason == REPLACED_REASON
    assert [i.handle.request.scheduled_at for i in h.launcher.running("r")] == [
        T0 + timedelta(seconds=1)
    ]
    h.run_for(0.2)  # the first run ends (interrupted): the second starts
    runs = h.runs("r")
    assert (runs[0].status, runs[0].reason) == (Status.INTERRUPTED, REPLACED_REASON)
    assert [i.handle.request.scheduled_at for i in h.launcher.running("r")] == [
        T0 + timedelta(seconds=2)
    ]


# ---------------------------------------------------------------------------- catch-up


def seed_slot(store, name, at):
    run_id = store.start_run(name, Trigger.SCHEDULE, started_at=at, scheduled_at=at)
    store.finish_run(run_id, status=Status.SUCCEEDED, finished_at=at)


def test_catch_up_skip_records_at_most_100_missed_rows(harness):
    h = harness(
        [task("m", "* * * * *", catch_up="skip")], start=T0 + timedelta(minutes=250, seconds=30)
    )
    seed_slot(h.store, "m", T0)
    h.start()
    missed = h.runs("m", statuses=[Status.MISSED])
    assert len(missed) == 100
    assert slots(missed) == [T0 + timedelta(minutes=m) for m in range(151, 251)]  # the newest
    assert {r.trigger for r in missed} == {Trigger.CATCH_UP}
    assert h.launcher.launched == []
    h.run_for(60)
    assert h.launcher.launched[0].handle.request.scheduled_at == T0 + timedelta(minutes=251)


def test_catch_up_once_runs_the_latest_missed_slot(harness):
    h = harness(
        [task("o", "*/10 * * * *", catch_up="once")],
        start=T0 + timedelta(hours=3, minutes=5),
        outcomes={"o": "succeeded"},
    )
    seed_slot(h.store, "o", T0)
    h.start()
    (first,) = h.launcher.launched
    assert first.handle.request.trigger == Trigger.CATCH_UP
    assert first.handle.request.scheduled_at == T0 + timedelta(hours=3)
    assert h.runs("o", statuses=[Status.MISSED]) == []


def test_catch_up_all_runs_every_missed_slot_in_order_one_at_a_time(harness):
    h = harness(
        [task("all", "0 * * * *", catch_up="all")], start=T0 + timedelta(hours=5, minutes=1)
    )
    seed_slot(h.store, "all", T0)
    h.start()
    for expected in range(1, 6):
        running = h.launcher.running("all")
        assert len(running) == 1
        assert running[0].handle.request.trigger == Trigger.CATCH_UP
        assert running[0].handle.request.scheduled_at == T0 + timedelta(hours=expected)
        h.launcher.finish(running[0])
        h.run_for(0.01)
    assert h.launcher.running("all") == []


def test_catch_up_all_is_capped_at_100(harness):
    h = harness(
        [task("c", "* * * * *", catch_up="all")],
        start=T0 + timedelta(minutes=300, seconds=1),
        outcomes={"c": "succeeded"},
    )
    seed_slot(h.store, "c", T0)
    h.run_for(0.5)
    caught = [r for r in h.runs("c") if r.trigger == Trigger.CATCH_UP]
    assert slots(caught) == [T0 + timedelta(minutes=m) for m in range(201, 301)]


def test_a_new_task_does_not_catch_up_history(harness):
    h = harness([task("new", "* * * * *", catch_up="all")], outcomes={"new": "succeeded"})
    h.run_for(30)
    assert h.runs() == []


# ---------------------------------------------------------------------------- clock jumps


def test_forward_jump_follows_the_catch_up_policy(harness):
    tasks = [task("skip", "*/10 * * * *"), task("once", "*/10 * * * *", catch_up="once")]
    h = harness(tasks, outcomes={"skip": "succeeded", "once": "succeeded"})
    h.run_for(15 * 60)  # 12:10 ran for both
    h.clock.step_wall(2 * 3600)  # 14:15 now; 12:20 .. 14:10 were jumped over
    h.run_for(1)
    jumped = [T0 + timedelta(minutes=m) for m in range(20, 135, 10)]
    assert slots(h.runs("skip", statuses=[Status.MISSED])) == jumped
    once = [r for r in h.runs("once") if r.trigger == Trigger.CATCH_UP]
    assert slots(once) == [jumped[-1]]
    h.run_until(T0 + timedelta(hours=2, minutes=21))
    assert h.runs("skip")[-1].scheduled_at == T0 + timedelta(hours=2, minutes=20)
    no_duplicate_slots(h)


def test_backward_jump_never_reruns_a_slot(harness):
    h = harness([task("m", "* * * * *")], outcomes={"m": "succeeded"})
    h.run_for(30 * 60 + 5)
    ran = slots(h.runs("m"))
    assert len(ran) == 30
    h.clock.step_wall(-3600)  # back to 11:30
    h.run_for(100 * 60)  # to 13:10 on the wall clock
    after = slots(h.runs("m"))
    firsts = no_duplicate_slots(h)
    assert len(firsts) == len(after)
    assert after[:30] == ran
    assert after[30:] == [T0 + timedelta(minutes=m) for m in range(31, 71)]
    assert h.launcher.taken == []  # the loop itself never tried a slot again


def test_backward_jump_with_a_stale_memory_is_stopped_by_the_database(harness):
    h = harness([task("m", "* * * * *")], outcomes={"m": "succeeded"})
    h.run_for(5 * 60 + 1)
    h.scheduler.states["m"].last_slot = None  # as if the loop had forgotten what ran
    h.clock.step_wall(-300)
    h.run_for(6 * 60)
    no_duplicate_slots(h)
    assert len(h.launcher.taken) >= 4  # claims refused by the unique index, not run


def test_suspend_and_resume_counts_as_a_forward_jump(harness):
    h = harness([task("h", "0 * * * *", catch_up="once")], outcomes={"h": "succeeded"})
    h.run_for(10)
    h.clock.step_wall(8 * 3600)  # monotonic time stopped while suspended
    h.run_for(1)
    (caught,) = [r for r in h.runs("h") if r.trigger == Trigger.CATCH_UP]
    assert caught.scheduled_at == T0 + timedelta(hours=8)


# ---------------------------------------------------------------------------- retries, after


def test_retries_are_scheduled_with_doubling_delay(harness):
    t = task("r", "0 * * * *", retries=3, retry_delay=10)
    h = harness(
        [t], outcomes={"r": lambda handle: "failed" if handle.request.attempt < 3 else "succeeded"}
    )
    h.run_until(T0 + timedelta(hours=1, minutes=5))
    runs = h.runs("r")
    assert [(r.trigger, r.attempt, r.status) for r in runs] == [
        (Trigger.SCHEDULE, 1, Status.FAILED),
        (Trigger.RETRY, 2, Status.FAILED),
        (Trigger.RETRY, 3, Status.SUCCEEDED),
    ]
    assert {r.scheduled_at for r in runs} == {T0 + timedelta(hours=1)}
    starts = [item.at for item in h.launcher.launched]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(starts)] == [10, 20]


def test_retries_stop_after_the_limit(harness):
    h = harness([task("r", "0 * * * *", retries=2, retry_delay=5)], outcomes={"r": "failed"})
    h.run_until(T0 + timedelta(hours=1, minutes=5))
    assert [r.attempt for r in h.runs("r")] == [1, 2, 3]


def test_after_starts_dependents_on_success_only(harness):
    tasks = [
        task("extract", "0 * * * *"),
        task("load", "0 0 1 1 *", after=("extract",)),
        task("report", "0 0 1 1 *", after=("load",)),
    ]
    h = harness(tasks, outcomes={"load": "succeeded", "report": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, seconds=1))
    h.launcher.finish("extract", Status.SUCCEEDED)
    h.run_for(1)
    assert [(r.task, r.trigger) for r in h.runs()] == [
        ("extract", Trigger.SCHEDULE),
        ("load", Trigger.AFTER),
        ("report", Trigger.AFTER),
    ]
    h.run_until(T0 + timedelta(hours=2, seconds=1))
    h.launcher.finish("extract", Status.FAILED)
    h.run_for(1)
    assert [r.task for r in h.runs()][3:] == ["extract"]


def test_after_cycle_does_not_loop(harness):
    tasks = [task("a", "0 * * * *", after=("b",)), task("b", "0 0 1 1 *", after=("a",))]
    h = harness(tasks, outcomes={"a": "succeeded", "b": "succeeded"})
    h.run_until(T0 + timedelta(hours=1, seconds=5))
    assert [(r.task, r.trigger) for r in h.runs()] == [
        ("a", Trigger.SCHEDULE),
        ("b", Trigger.AFTER),
    ]


# ---------------------------------------------------------------------------- reload


def write_tasks(path, body):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)


def watched(harness, path, **options):
    loaded = taskfile.load(path)
    h = harness(
        loaded.tasks.values(), watcher=TaskFileWatcher(path, stamp=stamp_of(path)), **options
    )
    return h


EVERY = '[tasks.{name}]\nschedule = "{schedule}"\ncommand = "true"\ntimezone = "UTC"\n'


def test_reload_add_remove_change(harness, tasks_path, caplog):
    write_tasks(
        tasks_path,
        EVERY.format(name="a", schedule="@every 1s") + EVERY.format(name="b", schedule="@every 1s"),
    )
    h = watched(harness, tasks_path, outcomes={"a": "succeeded", "c": "succeeded"})
    h.run_for(3.5)
    caplog.set_level(logging.INFO, logger="cronctl.serve")
    write_tasks(
        tasks_path,
        EVERY.format(name="a", schedule="@every 1m") + EVERY.format(name="c", schedule="@every 1s"),
    )
    h.run_for(2.1)  # picked up within 2 s
    assert "added c" in caplog.text and "removed b" in caplog.text and "changed a" in caplog.text
    assert h.runs("c"), "the added task fires"
    b_before = len(h.runs("b"))
    a_before = len(h.runs("a"))
    running_b = h.launcher.running("b")
    assert running_b and not running_b[0].handle.request.stop.is_set()  # left alone
    h.run_for(30)
    assert len(h.runs("b")) == b_before  # nothing new for a removed task
    assert len(h.runs("a")) == a_before  # @every 1m: next slot at 12:01:00
    h.run_until(T0 + timedelta(minutes=1, seconds=1))
    assert h.runs("a")[-1].scheduled_at == T0 + timedelta(minutes=1)
    h.launcher.finish(running_b[0])  # the removed task's run still ends and is recorded
    h.run_for(0.1)
    assert h.runs("b")[0].status == Status.SUCCEEDED


def test_reload_invalid_edit_keeps_the_last_good_tasks(harness, tasks_path, caplog):
    write_tasks(tasks_path, EVERY.format(name="a", schedule="@every 1s"))
    h = watched(harness, tasks_path, outcomes={"a": "succeeded"})
    h.run_for(2.5)
    caplog.set_level(logging.INFO, logger="cronctl.serve")
    write_tasks(tasks_path, EVERY.format(name="a", schedule="@every 1s") + "[tasks.broken\n")
    h.run_for(10)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "not reloaded" in errors[0].getMessage()
    assert len(h.runs("a")) == 12
    write_tasks(tasks_path, EVERY.format(name="a", schedule="@every 2s"))
    h.run_for(2)
    assert "changed a" in caplog.text


def test_reload_missing_file_keeps_tasks_and_sighup_forces_a_reload(harness, tasks_path, caplog):
    write_tasks(tasks_path, EVERY.format(name="a", schedule="@every 1s"))
    h = watched(harness, tasks_path, outcomes={"a": "succeeded"})
    h.run_for(1.5)
    caplog.set_level(logging.INFO, logger="cronctl.serve")
    tasks_path.unlink()
    h.run_for(5)
    assert caplog.text.count("is gone") == 1
    assert len(h.runs("a")) == 6
    write_tasks(
        tasks_path,
        EVERY.format(
            name="a",
            schedule="@every 1s",
        )
        + EVERY.format(name="z", schedule="@every 1h"),
    )
    h.scheduler.request_reload()
    h.run_for(0.01)
    assert "added z" in caplog.text


# ------------------------------------------------ limits (the shutdown: test_stopping.py)


def test_max_parallel_holds_the_rest_back(harness):
    tasks = [task(f"t{i}", "0 * * * *") for i in range(10)]
    h = harness(tasks, max_parallel=4)
    h.run_until(T0 + timedelta(hours=1, seconds=1))
    assert len(h.launcher.running()) == 4
    for item in h.launcher.running()[:3]:
        h.launcher.finish(item)
    h.run_for(0.1)
    assert len(h.launcher.running()) == 4 and len(h.launcher.launched) == 7


def test_heartbeat_and_retention_are_handed_to_the_recorder(harness):
    h = harness([task("a", "0 0 1 1 *")])
    h.run_for(40)
    assert h.recorder.called("heartbeat") == [
        (T0 + timedelta(seconds=15),),
        (T0 + timedelta(seconds=30),),
    ]
    assert h.recorder.called("retention") == [(T0, 90, {"a": 1000})]


def test_report_lists_each_task_next_slot_runs_and_timers(harness):
    h = harness(
        [
            task("tick"),
            task("hourly", "0 * * * *", retries=2, retry_delay=60, timezone="Europe/Berlin"),
            task("off", enabled=False),
            task("boot", "@reboot"),
        ],
        outcomes={"hourly": "failed", "boot": "succeeded"},
    )
    h.run_until(T0 + timedelta(hours=1, seconds=0.5))  # tick's run at 13:00:00 is going
    lines = h.scheduler.report(h.clock.now(), h.clock.monotonic())
    [going] = [i.handle.run_id for i in h.launcher.running("tick")]
    assert lines[0].startswith("state: 4 tasks, 1 run going (0 waiting for a free place")
    assert lines[1:] == [
        "state: task boot: idle",
        "state: task hourly: next 2026-01-05T15:00:00+01:00 (in 59m 59s); retry in 59s",
        "state: task off: disabled",
        f"state: task tick: next 2026-01-05T13:00:01+00:00 (now); running: run {going}",
    ]


def test_a_report_request_logs_on_the_next_step(harness, caplog):
    h = harness([task("a", "0 3 * * *")])
    h.run_for(1)
    caplog.set_level(logging.INFO, logger="cronctl.serve")
    h.scheduler.request_report()
    assert h.scheduler.inbox.wake.is_set()  # the loop wakes for it
    h.scheduler.step()
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("state:")][1:] == [
        "state: task a: next 2026-01-06T03:00:00+00:00 (in 14h 59m)"
    ]
