"""The overdue and failing checks, and `list`'s figures, read many tasks at once
(cronctl/overdue.py, cronctl/overview.py): on generated histories they answer exactly what
one read per task answered (the code of 7a93e71, kept here as the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl import overdue, overview, taskfile
from cronctl.errors import SlotTakenError
from cronctl.records import Status, Trigger
from cronctl.store import HistoryStore

NOW = datetime(2026, 3, 1, 12, 2, 30, tzinfo=UTC)

TASKS = """\
[tasks.five]
schedule = "*/5 * * * *"
command = "true"

[tasks.five-too]
schedule = "*/5 * * * *"
command = "true"

[tasks.five-paris]
schedule = "*/5 * * * *"
command = "true"
timezone = "Europe/Paris"

[tasks.hourly]
schedule = "0 * * * *"
command = "true"
jitter = 120

[tasks.interval]
schedule = "@every 90s"
command = "true"

[tasks.hashed]
schedule = "H * * * *"
command = "true"
retries = 1

[tasks.boot]
schedule = "@reboot"
command = "true"

[tasks.off]
schedule = "* * * * *"
command = "true"
enabled = false

[tasks.quiet]
schedule = "0 9 * * *"
command = "true"
"""

NAMES = ["five", "five-too", "five-paris", "hourly", "interval", "hashed", "boot", "off", "gone"]

RUNS = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.sampled_from([Trigger.SCHEDULE, Trigger.CATCH_UP, Trigger.MANUAL, Trigger.RETRY]),
        st.sampled_from(list(Status)),
        st.integers(1, 2),  # attempt
        st.integers(0, 300),  # started, minutes before NOW
        st.one_of(st.none(), st.integers(0, 300)),  # scheduled, minutes before NOW
    ),
    max_size=30,
)
MOMENTS = st.one_of(st.none(), st.integers(0, 400).map(lambda m: NOW - timedelta(minutes=m)))


def history(runs, path: Path) -> HistoryStore:
    store = HistoryStore(path)
    for task, trigger, status, attempt, started, scheduled in runs:
        try:
            store.start_run(
                task,
                trigger,
                started_at=NOW - timedelta(minutes=started),
                attempt=attempt,
                scheduled_at=None if scheduled is None else NOW - timedelta(minutes=scheduled),
                status=status,
            )
        except SlotTakenError:
            pass  # a slot runs once: the generated duplicate is left out
    return store


def overdue_one_by_one(tasks, store, serve_started_at, file_changed_at):
    """`overdue_tasks` as it was: two reads and a slot search per task."""
    running = store.running_tasks()
    found = []
    for task in tasks:
        if not task.enabled or task.name in running:
            continue
        schedule = task.parsed_schedule()
        if schedule.is_reboot:
            continue
        reference = store.latest_slot(task.name)
        if reference is None:
            last = store.last_run(task.name)
            reference = last.started_at if last else None
        moments = [m for m in (reference, serve_started_at, file_changed_at) if m is not None]
        if not moments:
            continue
        slot = schedule.next_after(max(moments))
        if slot is None:
            continue
        late = NOW - slot
        if late > overdue.OVERDUE_AFTER + timedelta(seconds=task.jitter):
            found.append(overdue.Overdue(task.name, slot, late.total_seconds(), task.timezone))
    return found


def failing_one_by_one(tasks, store):
    found = []
    for task in tasks:
        if task.enabled:
            streak, last = overdue._streak(task, store)
            if streak >= overdue.FAILING_STREAK and last is not None:
                found.append(overdue.Failing(task.name, streak, last))
    return found


@settings(max_examples=60, deadline=None)
@given(RUNS, MOMENTS, MOMENTS)
def test_the_bulk_checks_answer_as_the_checks_of_one_task_at_a_time(
    tmp_path_factory, runs, serve_started_at, file_changed_at
):
    folder = tmp_path_factory.mktemp("history")
    (folder / "tasks.toml").write_text(TASKS)
    tasks = list(taskfile.load(folder / "tasks.toml", default_zone="UTC").tasks.values())
    with history(runs, folder / "history.db") as store:
        moments = {"serve_started_at": serve_started_at, "file_changed_at": file_changed_at}
        assert overdue.overdue_tasks(tasks, store, NOW, **moments) == overdue_one_by_one(
            tasks, store, serve_started_at, file_changed_at
        )
        assert overdue.failing_tasks(tasks, store) == failing_one_by_one(tasks, store)
        rows = overview.task_rows(taskfile.load(folder / "tasks.toml"), store, NOW).rows
        assert [row.stats for row in rows] == [store.task_stats(task.name) for task in tasks]
