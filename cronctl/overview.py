"""What `list`, `show` and `check` report, as data: tasks joined with their schedule and history."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol

from cronctl import timefmt
from cronctl.errors import TaskFileError
from cronctl.history import HealthReader, RunReader
from cronctl.model import Task, case_twins
from cronctl.model.checks import insecure_login, task_warnings
from cronctl.records import Run, TaskStats
from cronctl.schedule import SharedAnswers
from cronctl.taskfile import TaskFile, collector_paused, unknown_task

# `check` warns when at least this many tasks fire in the same minute of the day.
CROWDED_MINUTE = 5
CROWDED_SHOWN = 10


@dataclass(frozen=True)
class TaskRow:
    task: Task
    summary: str  # the short English form of the schedule
    next_run: datetime | None
    stats: TaskStats


@dataclass(frozen=True)
class TaskDetail:
    row: TaskRow
    description: str
    upcoming: list[datetime]
    runs: list[Run]
    durations_ms: list[int]  # oldest first, for the sparkline


@dataclass(frozen=True)
class Finding:
    level: str  # "warning" or "error"
    task: str | None
    message: str


class DetailReader(HealthReader, RunReader, Protocol):
    """What `show` reads: a task's health figures and its latest runs."""


def next_run(task: Task, now: datetime) -> datetime | None:
    if not task.enabled:
        return None
    return task.parsed_schedule().next_after(now)


@dataclass(frozen=True)
class TaskList:
    """The rows `list` shows, and how many tasks matched in all (`--limit` leaves the rest)."""

    rows: list[TaskRow]
    matched: int

    @property
    def left_out(self) -> int:
        return self.matched - len(self.rows)


def select_tasks(taskfile: TaskFile, patterns: Sequence[str] = ()) -> list[Task]:
    """The tasks whose names match any of `patterns` (shell-style: `backup-*`, `db-?`,
    `[ab]*`), in the file's order; all of them without patterns. A pattern without wildcards
    that names no task is an UnknownTaskError (with the nearest name); a glob may match none."""
    tasks = taskfile.tasks
    if not patterns:
        return list(tasks.values())
    for pattern in patterns:
        if not _GLOB.search(pattern) and pattern not in tasks:
            raise unknown_task(pattern, tasks)
    return [task for name, task in tasks.items() if any(fnmatchcase(name, p) for p in patterns)]


_GLOB = re.compile(r"[*?\[]")


def task_rows(
    taskfile: TaskFile,
    store: HealthReader,
    now: datetime,
    *,
    patterns: Sequence[str] = (),
    limit: int | None = None,
) -> TaskList:
    """The rows of `list`: the tasks `patterns` select (select_tasks), at most `limit` of them.

    Only the rows shown are computed (their history read, their next run searched). Tasks
    that share a parsed schedule share its summary and next run, and the collector is paused
    while the rows are made: 100,000 rows took 3.2 s, 1.6 s of it in the cyclic collector
    walking the rows made so far again and again (docs/performance.md, "100,000 tasks").
    """
    chosen = select_tasks(taskfile, patterns)
    shown = chosen if limit is None else chosen[:limit]
    summaries = SharedAnswers(lambda schedule: schedule.describe(short=True))
    next_runs = SharedAnswers(lambda schedule: schedule.next_after(now))
    # The figures of every task in one statement (100,000 queries took 0.45 s); a task
    # without runs has empty figures.
    stats = store.tasks_stats([task.name for task in shown])
    with collector_paused():
        rows = [
            TaskRow(
                task=task,
                summary=summaries(task.parsed_schedule()),
                next_run=next_runs(task.parsed_schedule()) if task.enabled else None,
                stats=stats.get(task.name) or TaskStats(task.name, None, (), None, None, None),
            )
            for task in shown
        ]
    return TaskList(rows, len(chosen))


def task_detail(task: Task, store: DetailReader, now: datetime) -> TaskDetail:
    schedule = task.parsed_schedule()
    stats = store.task_stats(task.name)
    recent = store.runs(task.name, limit=30)  # the last 10 listed, 30 for the sparkline
    runs = recent[:10]
    durations = [r.duration_ms for r in reversed(recent) if r.duration_ms is not None]
    return TaskDetail(
        row=TaskRow(task, schedule.describe(short=True), next_run(task, now), stats),
        description=schedule.describe(),
        upcoming=schedule.upcoming(now, 5) if task.enabled else [],
        runs=runs,
        durations_ms=durations,
    )


def check(
    taskfile: TaskFile, now: datetime, environ: Mapping[str, str] = os.environ
) -> list[Finding]:
    """Return warnings about a valid task file (errors were raised while loading it)."""
    findings: list[Finding] = []
    refused = insecure_login(taskfile.defaults.smtp)
    if refused:
        findings.append(Finding("warning", None, f"[defaults.smtp]: mail is never sent: {refused}"))
    minute_users: dict[tuple[int, int], set[str]] = defaultdict(set)
    horizon = now + timedelta(days=366)
    for task in taskfile.tasks.values():
        for warning in task_warnings(task, now, environ):
            findings.append(Finding("warning", task.name, warning))
        schedule = task.parsed_schedule()
        if schedule.is_reboot:
            continue
        first = schedule.next_after(now)
        if first is None or first > horizon:
            findings.append(Finding("warning", task.name, "will not fire within a year"))
            continue
        if schedule.interval_seconds is None and task.enabled and not task.jitter:
            day = [m for m in schedule.upcoming(now, 49) if m <= now + timedelta(days=1)]
            # Tasks that fire more than twice an hour share minutes with everything; the
            # stampede worth warning about is many hourly or daily tasks on one minute.
            if len(day) <= 48:
                for moment in day:
                    utc = moment.astimezone(now.tzinfo)
                    minute_users[(utc.hour, utc.minute)].add(task.name)
    crowded = sorted(
        (
            (len(users), slot)
            for slot, users in minute_users.items()
            if len(users) >= CROWDED_MINUTE
        ),
        key=lambda item: (-item[0], item[1]),
    )
    # The busiest minutes first, a few of them: thousands of lines would hide the point.
    for count, (hour, minute) in crowded[:CROWDED_SHOWN]:
        names = sorted(minute_users[(hour, minute)])
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        findings.append(
            Finding(
                "warning",
                None,
                f"{count} tasks fire at {hour:02d}:{minute:02d} UTC ({shown}); "
                "spread them with H in the schedule (e.g. 'H 2 * * *') or a jitter",
            )
        )
    if len(crowded) > CROWDED_SHOWN:
        findings.append(
            Finding(
                "warning",
                None,
                f"{len(crowded) - CROWDED_SHOWN} more minutes each have {CROWDED_MINUTE}"
                " or more tasks",
            )
        )
    for twins in case_twins(taskfile.tasks):
        findings.append(
            Finding(
                "warning",
                twins[0],
                "names differ only in case: "
                + ", ".join(twins)
                + " (task names are case-sensitive)",
            )
        )
    for cycle in after_cycles(taskfile):
        findings.append(
            Finding(
                "warning", cycle[0], "`after` forms a cycle: " + " -> ".join([*cycle, cycle[0]])
            )
        )
    return findings


def check_summary(
    path: Path,
    defined: int,
    taskfile: TaskFile,
    errors: Sequence[TaskFileError],
    findings: Sequence[Finding],
) -> str:
    """`check`'s last line: how many tasks, whether valid, how many errors and warnings."""
    warned = f", {timefmt.counted(len(findings), 'warning')}" if findings else ""
    if not errors:
        return f"{path}: {timefmt.counted(len(taskfile.tasks), 'task')}, valid{warned}."
    return (
        f"{path}: invalid, {timefmt.counted(len(errors), 'error')}; {len(taskfile.tasks)} of"
        f" {timefmt.counted(defined, 'task')} valid{warned}."
    )


def error_json(error: TaskFileError) -> dict[str, Any]:
    """An error of `check --json`: where it is (file, line, task, key), what and the hint."""
    return {
        "file": error.path,
        "line": error.line,
        "task": error.task,
        "key": error.key,
        "message": error.detail,
        "hint": error.hint,
    }


def after_cycles(taskfile: TaskFile) -> list[list[str]]:
    """Return each cycle of `after` links once (a task that runs after itself, via others)."""
    graph = {name: list(task.after) for name, task in taskfile.tasks.items()}
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name)
    return cycles
