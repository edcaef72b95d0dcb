"""Runs written and read back: `RunRecorder` and `RunReader` of `cronctl.history` in SQLite.

`finish_run` returns the finished run from its own `UPDATE ... RETURNING` (no second read),
which needs SQLite 3.35 or newer (Python's sqlite3 module reports it as
`sqlite3.sqlite_version`). Rows become `Run` records here and only here (`run_from_row`):
statuses and triggers come back as the enums of `cronctl.records`, found by a dict lookup
(cheaper per row than calling the enum).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from cronctl.errors import DatabaseFullError, SlotTakenError, StoreError, UnknownRunError
from cronctl.records import FAILURE_STATUSES, Output, Run, RunningElsewhere, Status, Trigger
from cronctl.store.database import Database, from_ms, to_ms
from cronctl.store.schema import FAILURES_SQL, SLOT_TRIGGERS_SQL

RUN_COLUMNS = (
    "id, task, trigger, attempt, scheduled_at, started_at, finished_at, duration_ms, status, "
    "exit_code, signal, pid, reason, notify_error, host"
)
OUTPUT_COLUMNS = "stdout, stderr, stdout_bytes, stderr_bytes, stdout_dropped, stderr_dropped"
NO_OUTPUT = (b"", b"", 0, 0, 0, 0)
"""The output of a run that has no run_output row, in the order of OUTPUT_COLUMNS."""

Claim = tuple[str, Trigger, int, datetime | None]
"""A run to claim: task, trigger, attempt, slot (None for a run of no slot)."""

STATUSES: dict[str, Status] = {status.value: status for status in Status}
TRIGGERS: dict[str, Trigger] = {trigger.value: trigger for trigger in Trigger}


def run_from_row(row: Sequence[Any], output: Sequence[Any] | None = None) -> Run:
    """The Run of a row of RUN_COLUMNS and, when given, its row of OUTPUT_COLUMNS."""
    stdout = stderr = None
    if output is not None:
        stdout = Output(output[0] or b"", output[2], output[4])
        stderr = Output(output[1] or b"", output[3], output[5])
    try:
        trigger, status = TRIGGERS[row[2]], STATUSES[row[8]]
    except KeyError:
        raise unknown_value(row[1], row[8] if row[2] in TRIGGERS else row[2]) from None
    return Run(
        id=row[0],
        task=row[1],
        trigger=trigger,
        attempt=row[3],
        scheduled_at=from_ms(row[4]),
        started_at=from_ms(row[5]),
        finished_at=from_ms(row[6]),
        duration_ms=row[7],
        status=status,
        exit_code=row[9],
        signal=row[10],
        pid=row[11],
        reason=row[12],
        notify_error=row[13],
        stdout=stdout,
        stderr=stderr,
        host=row[14],
    )


def unknown_value(task: str, value: object) -> StoreError:
    """The error for a run whose status or trigger is none of this cronctl's."""
    return StoreError(
        f"the history of task '{task}' holds a status or trigger this cronctl does not know"
        f" ({value!r})",
        hint="was it recorded by a newer cronctl? upgrade cronctl",
    )


def _output_row(out: Output, err: Output) -> tuple[bytes, bytes, int, int, int, int]:
    """The run_output row of two captured streams, in the order of OUTPUT_COLUMNS."""
    return (
        out.data,
        err.data,
        out.total_bytes,
        err.total_bytes,
        out.dropped_bytes,
        err.dropped_bytes,
    )


def _unknown_run(run_id: int) -> UnknownRunError:
    return UnknownRunError(f"no run with id {run_id}", hint="see `cronctl history`")


class RunStore(Database):
    """The runs table: a run's start, pid and end; runs read back, newest first."""

    # -- writing runs --------------------------------------------------------------------

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
        try:
            with self._write() as db:
                cursor = db.execute(
                    "INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, status,"
                    " pid, reason, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        task,
                        trigger,
                        attempt,
                        to_ms(scheduled_at),
                        to_ms(started_at),
                        status,
                        pid,
                        reason,
                        self.host,
                    ),
                )
                run_id = cursor.lastrowid
                assert run_id is not None  # set by every INSERT
                return run_id
        except sqlite3.IntegrityError:
            raise SlotTakenError(f"slot {scheduled_at} of task '{task}' has already run") from None

    def start_runs(
        self, claims: Sequence[Claim], *, started_at: datetime
    ) -> list[int | RunningElsewhere | None]:
        """Insert the `running` rows of several runs in one transaction (serve's claims of one
        instant) and return their ids in order, None for a run whose slot already ran (the
        others are claimed all the same). All or none are written: a StoreError means none
        was. One `BEGIN IMMEDIATE ... COMMIT` instead of one each (docs/performance.md,
        "Serve's hot path after issue 18"). Never RunningElsewhere (the PostgreSQL store's
        answer for another host's run): a SQLite history has one host."""
        ids: list[int | RunningElsewhere | None] = []
        with self._write() as db:
            for task, trigger, attempt, scheduled_at in claims:
                row = db.execute(
                    "INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, status,"
                    " host) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                    (
                        task,
                        trigger,
                        attempt,
                        to_ms(scheduled_at),
                        to_ms(started_at),
                        Status.RUNNING,
                        self.host,
                    ),
                ).fetchone()
                ids.append(None if row is None else row[0])
        return ids

    def skip_while_running_elsewhere(self, tasks: Collection[str]) -> None:
        """Nothing to do: a SQLite history has one host, whose serve keeps `overlap` itself
        (the PostgreSQL store's claims check the other hosts' runs)."""
        del tasks

    def wait_while_running_elsewhere(self, tasks: Collection[str]) -> None:
        """Nothing to do, as `skip_while_running_elsewhere`."""
        del tasks

    def set_pid(self, run_id: int, pid: int) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))

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
        """Record the end of a run and return the finished record (from the UPDATE's own
        RETURNING clause: no second read). An `abandoned` run is final: its end is not
        recorded over, and the run comes back as it is (a shared history: another host may
        have abandoned it, README.md#more-than-one-machine). When the disk is too full for
        the captured output, the end is recorded without it (with a note in `reason`) rather
        than not at all: the status is what health, notifications and retries need."""
        update = (
            "UPDATE runs SET status = ?, finished_at = ?, duration_ms = ?, exit_code = ?,"
            " signal = ?, reason = COALESCE(?, reason), started_at = COALESCE(?, started_at)"
            f" WHERE id = ? AND status <> 'abandoned' RETURNING {RUN_COLUMNS}"
        )
        values = (
            status,
            to_ms(finished_at),
            duration_ms,
            exit_code,
            signal,
            reason,
            to_ms(started_at),
            run_id,
        )
        has_output = stdout is not None or stderr is not None
        output = _output_row(stdout or Output(b"", 0), stderr or Output(b"", 0))
        try:
            with self._write() as db:
                row = db.execute(update, values).fetchone()
                if row is None:
                    return self.get_run(run_id)  # abandoned: final (the PostgreSQL store's
                    # `_not_running` says why); UnknownRunError when there is no such run
                if has_output:
                    db.execute(
                        "INSERT OR REPLACE INTO run_output VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (run_id, *output),
                    )
        except DatabaseFullError as exc:
            if not has_output:
                raise
            note = f"output not kept: {exc.message}"
            with self._write() as db:
                row = db.execute(
                    update, (*values[:5], f"{reason}; {note}" if reason else note, *values[6:])
                ).fetchone()
            if row is None:
                return self.get_run(run_id)
            return run_from_row(row, NO_OUTPUT)
        return run_from_row(row, output if has_output else NO_OUTPUT)

    def record_notify_error(self, run_id: int, message: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET notify_error = ? WHERE id = ?", (message, run_id))

    # -- reading runs --------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run:
        """Return one run with its output; raise UnknownRunError when there is none."""
        with self._guard():
            row = self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise _unknown_run(run_id)
            output = self._db.execute(
                f"SELECT {OUTPUT_COLUMNS} FROM run_output WHERE run_id = ?", (run_id,)
            ).fetchone()
        return run_from_row(row, output or NO_OUTPUT)

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
        """Return runs newest first (no output), filtered by task, status, trigger and start
        time: from `since` (included) to `until` (excluded, so that `--since yesterday --until
        today` and `--since today` never both hold a run). Each filter narrows a search of an
        index (runs_task_recent, runs_started or runs_failures, in order): the trigger is
        checked on the rows the index finds, there is no index of it."""
        clauses: list[str] = []
        params: list[object] = []
        if task is not None:
            clauses.append("task = ?")
            params.append(task)
        status_list = list(statuses) if statuses is not None else None
        if status_list is not None:
            if sorted(status_list) == sorted(FAILURE_STATUSES):
                # The exact predicate of the partial index runs_failures, so SQLite uses it.
                clauses.append(f"status IN ({FAILURES_SQL})")
            else:
                clauses.append(f"status IN ({', '.join('?' * len(status_list))})")
                params.extend(status_list)
        trigger_list = list(triggers) if triggers is not None else None
        if trigger_list is not None:
            clauses.append(f"trigger IN ({', '.join('?' * len(trigger_list))})")
            params.extend(trigger_list)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(to_ms(since))
        if until is not None:
            clauses.append("started_at < ?")
            params.append(to_ms(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._guard():
            return [run_from_row(row) for row in self._db.execute(sql, params).fetchall()]

    def last_run(self, task: str, *, statuses: Iterable[Status] | None = None) -> Run | None:
        found = self.runs(task, statuses=statuses, limit=1)
        return found[0] if found else None

    def last_success_at(self, task: str) -> datetime | None:
        """When the newest successful run of `task` started (CRONCTL_LAST_SUCCESS_AT)."""
        last = self.last_run(task, statuses=[Status.SUCCEEDED])
        return last.started_at if last else None

    def latest_slot(self, task: str) -> datetime | None:
        """Return the newest scheduled instant that has a run (the catch-up starting point)."""
        with self._guard():
            row = self._db.execute(
                f"SELECT MAX(scheduled_at) FROM runs WHERE task = ? AND attempt = 1"
                f" AND trigger IN ({SLOT_TRIGGERS_SQL}) AND scheduled_at IS NOT NULL",
                (task,),
            ).fetchone()
        return from_ms(row[0]) if row else None

    def task_names(self) -> list[str]:
        with self._guard():
            return [r[0] for r in self._db.execute("SELECT DISTINCT task FROM runs ORDER BY task")]
