"""The run history as the rest of cronctl sees it: what a history backend offers, by reader.

`cronctl.store.HistoryStore` (SQLite) implements every protocol here; a second backend (a
shared PostgreSQL database for several hosts) implements the same ones and nothing above this
seam changes. No SQL and no driver is imported here, so a module can name the type it needs
without paying for the database at import time.

Who reads what:

* `RunRecorder` - whoever starts runs (the runner's Executor for `run-now` and serve): the
  `running` row first (for a scheduled slot, the exactly-once claim), the pid, the end.
* `RunReader` - `history`, `logs`, `show`, the notifier's failure streaks, serve's start-up
  (each task's newest slot).
* `HealthReader` - `list`, `status`, `metrics`: figures answered from indexes.
* `ServeStateRecorder` - serve's start, heartbeat and stop, which `status` reads back.
* `Retention` - `prune`, `remove --purge`, and serve's hourly retention.
* `TaskDefinitions` - what each host's serve runs, as digests: serve writes its host's at
  start and each reload, `status` and `check` compare the hosts'.

Statuses and triggers are the enums of `cronctl.records`; times are aware datetimes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, Self

from cronctl.records import (
    DEFAULT_LEASE,
    Ack,
    Heartbeat,
    Output,
    Rename,
    Run,
    RunningElsewhere,
    ServeState,
    Status,
    TaskDefinition,
    TaskStats,
    Trigger,
)


class RunRecorder(Protocol):
    """Writes the life of a run: start, pid, end."""

    def start_run(
        self,
        task: str,
        trigger: Trigger,
        *,
        started_at: datetime,
        attempt: int = 1,
        scheduled_at: datetime | None = None,
        status: Status = Status.RUNNING,
        pid: int | None = None,
        reason: str | None = None,
    ) -> int:
        """Insert a run and return its id; raise SlotTakenError when its slot already ran."""
        ...

    def set_pid(self, run_id: int, pid: int) -> None: ...

    def finish_run(
        self,
        run_id: int,
        *,
        status: Status,
        finished_at: datetime,
        duration_ms: int | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        reason: str | None = None,
        stdout: Output | None = None,
        stderr: Output | None = None,
        started_at: datetime | None = None,
    ) -> Run:
        """Record the end of a run and return the finished record, as written."""
        ...

    def get_run(self, run_id: int) -> Run:
        """Return one run with its output; raise UnknownRunError when there is none."""
        ...

    def last_success_at(self, task: str) -> datetime | None:
        """When the newest successful run of `task` started (CRONCTL_LAST_SUCCESS_AT)."""
        ...


class RunReader(Protocol):
    """Reads runs back."""

    def get_run(self, run_id: int) -> Run: ...

    def runs(
        self,
        task: str | None = None,
        *,
        statuses: Iterable[Status] | None = None,
        triggers: Iterable[Trigger] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 50,
    ) -> list[Run]:
        """Runs newest first (no output), filtered by task, status, trigger and start time, from
        `since` (included) to `until` (excluded)."""
        ...

    def last_run(self, task: str, *, statuses: Iterable[Status] | None = None) -> Run | None: ...

    def latest_slot(self, task: str) -> datetime | None:
        """The newest scheduled instant that has a run (where catch-up starts from)."""
        ...

    def latest_slots(self, tasks: Collection[str]) -> dict[str, datetime]:
        """`latest_slot` of each of `tasks` that has one, in one read."""
        ...

    def last_successes(self, tasks: Collection[str]) -> dict[str, datetime]:
        """`last_success_at` of each of `tasks` that has a success, in one read."""
        ...

    def task_names(self) -> list[str]: ...


class HealthReader(Protocol):
    """Figures for `list`, `show`, `status` and `metrics`."""

    def task_stats(self, task: str, window: int = 50) -> TaskStats: ...

    def tasks_stats(self, tasks: Collection[str], window: int = 50) -> dict[str, TaskStats]:
        """`task_stats` of each of `tasks` that has runs, in a few reads."""
        ...

    def newest_starts(self, tasks: Collection[str]) -> dict[str, datetime]:
        """When the newest run of each of `tasks` started, for those that have runs."""
        ...

    def running_tasks(self) -> set[str]: ...

    def stderr_heads(self, run_ids: Iterable[int], size: int = 512) -> dict[int, bytes]: ...

    def missed_counts(self, since: datetime) -> list[tuple[str, int, datetime | None]]: ...

    def run_counts(self) -> dict[str, tuple[int, int]]: ...

    def failure_counts(self, since: datetime, recent_since: datetime) -> list[tuple[Run, int, int]]:
        """Per task with a failed run since `since`: its newest failed run, its failures since
        `since` and since `recent_since` (`status`: the day and the hour)."""
        ...


class ServeStateRecorder(Protocol):
    """The serves' rows, one per host: who runs, since when, last heartbeat, when its tasks
    were loaded, its lease. `tasks_loaded`, `heartbeat` and `serve_stopped` write the row of
    the store's own host (CRONCTL_HOST, else the hostname)."""

    def serve_started(
        self,
        *,
        pid: int,
        hostname: str,
        version: str,
        now: datetime,
        lease: float = DEFAULT_LEASE,
    ) -> None: ...

    def heartbeat(self, now: datetime) -> Heartbeat:
        """Renew this host's lease; on a shared history, also declare dead the serves whose
        lease ran out (their runs recorded `abandoned`) and say whether this one had been."""
        ...

    def tasks_loaded(self, now: datetime) -> None:
        """serve put a newly loaded, valid task file in force (`serve_started` counts as one)."""
        ...

    def serve_stopped(self, now: datetime) -> None: ...

    def serve_state(self) -> ServeState | None:
        """This host's serve, else the one that started last (None: no serve ever ran)."""
        ...

    def serves(self) -> list[ServeState]:
        """Every serve of the history, by host (a SQLite history has one)."""
        ...


class Retention(Protocol):
    """Deleting old history."""

    def prune(
        self,
        *,
        now: datetime,
        keep_days: int,
        keep_runs: dict[str, int] | None = None,
        default_keep_runs: int,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Delete runs older than `keep_days` or beyond each task's newest `keep_runs`;
        return how many went (or would go) per task."""
        ...

    def delete_task_runs(self, task: str) -> int: ...

    def checkpoint(self) -> None:
        """Give the write-ahead log back to the database file (a no-op where there is none)."""
        ...


class Digested(Protocol):
    """A task's digests, as cronctl/model/digest.py makes them (its `TaskDigest`): the
    definition's digest and the digests of the keys that differ from their defaults."""

    @property
    def digest(self) -> str: ...

    @property
    def keys(self) -> Mapping[str, str]: ...


class TaskDefinitions(Protocol):
    """What each host's serve runs, as digests, never values (README.md#task-files-that-differ):
    one row per (host, task)."""

    def record_definitions(self, digests: Mapping[str, Digested], *, now: datetime) -> int:
        """Make this host's rows `digests` (task name: its digests) in one transaction: the
        rows of tasks not in it deleted, the new and changed ones written (`seen_at` = `now`),
        the others left; return how many rows were deleted or written."""
        ...

    def task_definitions(
        self, hosts: Collection[str], *, divergent: bool = False
    ) -> list[TaskDefinition]:
        """The rows of `hosts`, by task then host; with `divergent`, only those of the tasks
        whose digests differ between `hosts` or that some of `hosts` lack."""
        ...


class Acknowledgements(Protocol):
    """`cronctl ack`: one acknowledgement a task, the newest (cronctl/acks.py)."""

    def acknowledge(
        self, task: str, *, at: datetime, by: str | None = None, note: str | None = None
    ) -> Ack: ...

    def acks(self) -> dict[str, Ack]: ...


class Renames(Protocol):
    """`cronctl rename`'s journal and the rename of a task's history rows
    (cronctl/renaming.py, docs/reliability.md#renaming-a-task)."""

    def begin_rename(
        self,
        old: str,
        new: str,
        *,
        tasks_file: str,
        digest_before: str,
        digest_after: str,
        now: datetime,
    ) -> int:
        """Write the open journal row (before the task file is replaced); return its id."""
        ...

    def finish_rename(self, rename_id: int) -> Rename:
        """Rename the history rows and close the journal row, in one transaction."""
        ...

    def drop_rename(self, rename_id: int) -> None: ...

    def history_rows(self, task: str) -> int:
        """How many rows of the history are `task`'s (runs, acknowledgement)."""
        ...

    def renames_after(self, rename_id: int) -> list[Rename]:
        """The renames done after journal row `rename_id` (serve carries their tasks over)."""
        ...

    def rename_stragglers(self, old: str, new: str) -> int:
        """Rename rows written under `old` after its rename (serve ran it before reloading)."""
        ...

    def settle_open_renames(self) -> list[Rename]:
        """Finish or drop the renames a killed `cronctl rename` left half done."""
        ...


class History(
    RunRecorder,
    RunReader,
    HealthReader,
    ServeStateRecorder,
    Retention,
    Acknowledgements,
    Renames,
    TaskDefinitions,
    Protocol,
):
    """A whole history backend: every reader's part, and closing."""

    def record_notify_error(self, run_id: int, message: str | None) -> None: ...

    def skip_while_running_elsewhere(self, tasks: Collection[str]) -> None:
        """`tasks` have `overlap = "skip"`: on a history several hosts share, a claim of
        their slot while a run of theirs goes on another host records it `skipped`."""
        ...

    def wait_while_running_elsewhere(self, tasks: Collection[str]) -> None:
        """`tasks` have `overlap = "queue"` or `"replace"`: on a history several hosts share,
        a claim of theirs while a run of theirs goes on another host writes nothing and
        comes back `RunningElsewhere` (that host queues or replaces; this one tries again)."""
        ...

    def close(self) -> None: ...


class ServeHistory(History, Protocol):
    """What serve needs of a store beyond every reader (serve/storage.py, serve/grouping.py):
    the claims of one instant in one transaction, several writes in one transaction (a group
    commit), and a run its `when` condition skipped folded into the task's previous such row.
    Both stores implement it, so that PostgreSQL gets serve's fast path too."""

    def start_runs(
        self, claims: Sequence[tuple[str, Trigger, int, datetime | None]], *, started_at: datetime
    ) -> Sequence[int | RunningElsewhere | None]:
        """Claim each (task, trigger, attempt, scheduled_at); None for a slot already taken,
        RunningElsewhere for a claim left to the host where the task runs."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """The writes inside join one transaction, committed at the end or rolled back whole."""
        ...

    def finish_condition_skip(self, run_id: int, *, finished_at: datetime, reason: str) -> Run: ...


class ReadOnlyReader(History, Protocol):
    """A history opened for reading only, by a viewer (`top`, `upcoming`): every reader, and
    what `top` asks each second. Never created: while it does not exist it reads as empty."""

    def appeared(self) -> bool:
        """Whether a history that did not exist when this was opened exists now."""
        ...

    def data_version(self) -> int:
        """A number that changes when anything was written since the last call."""
        ...

    def running_runs(self) -> list[Run]: ...

    def recent_outcomes(
        self, tasks: Iterable[str], count: int
    ) -> dict[str, list[tuple[Status, int | None]]]: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class FleetLocks(Protocol):
    """Shared locks held across the hosts of one history (README.md#shared-locks): a
    PostgreSQL history's advisory locks (cronctl/store/postgres/locks.py), beside each host's
    flocks (cronctl/runner/locks.py)."""

    def try_lock(self, names: Sequence[str]) -> str | None:
        """Take every lock of `names`, or none: None when taken, else why not (who holds one,
        or a database that cannot be reached: fail closed)."""
        ...

    def unlock(self, names: Sequence[str]) -> None:
        """Free the locks of `names` taken by `try_lock`; never raises."""
        ...

    def close(self) -> None: ...
