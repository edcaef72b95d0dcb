"""The data behind `cronctl prune`: what retention removes (or would, `--dry-run`) by the rule
of README.md, "Keeping the history small": runs older than `keep_days`, and each task's runs
beyond its newest `keep_runs`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronctl.history import Retention
from cronctl.model import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS
from cronctl.taskfile import TaskFile


@dataclass(frozen=True)
class PruneReport:
    removed: dict[str, int]
    keep_days: int
    keep_runs: dict[str, int]  # the limit applied per task (tasks in the file)
    default_keep_runs: int  # for tasks that are in the history only
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def prune(
    taskfile: TaskFile | None,
    store: Retention,
    now: datetime,
    *,
    keep_days: int | None = None,
    keep_runs: int | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete runs older than `keep_days` (default 90) or beyond each task's newest `keep_runs`
    (default: the task's own keep_runs; 1000 for tasks no longer in the file).

    Without a task file (None: it is invalid) each task's keep_runs is unknown: `keep_runs`
    must then be given, and is applied to every task, lest the default delete runs that the
    file keeps (README.md, "Keeping the history small").
    """
    days = DEFAULT_KEEP_DAYS if keep_days is None else keep_days
    if taskfile is None and keep_runs is None:
        raise ValueError("prune without the task file needs keep_runs")
    tasks = {} if taskfile is None else taskfile.tasks
    limits = {
        name: keep_runs if keep_runs is not None else task.keep_runs for name, task in tasks.items()
    }
    default = DEFAULT_KEEP_RUNS if keep_runs is None else keep_runs
    removed = store.prune(
        now=now, keep_days=days, keep_runs=limits, default_keep_runs=default, dry_run=dry_run
    )
    return PruneReport(
        removed=dict(sorted(removed.items())),
        keep_days=days,
        keep_runs=limits,
        default_keep_runs=default,
        dry_run=dry_run,
    )


def prune_json(report: PruneReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "keep_days": report.keep_days,
        "default_keep_runs": report.default_keep_runs,
        "removed": report.removed,
        "total": report.total,
    }
