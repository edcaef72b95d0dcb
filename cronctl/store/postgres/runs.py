"""Runs written and read back in PostgreSQL: `RunRecorder`, `RunReader` and the condition
skips (cronctl/store/skips.py), each answering as the SQLite store's `RunStore` and
`SkipStore` answer (rows become `Run`s through the same `run_from_row`).

One round trip a write where it can be: a claim is `INSERT ... ON CONFLICT DO NOTHING
RETURNING id` (no error, hence no aborted transaction, for a slot taken); the claims of one
instant are one statement over arrays (`start_runs`); the end of a run is one statement, its
output written by a data-modifying CTE beside the `UPDATE ... RETURNING` that gives the run
back (`finish_run`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from cronctl.errors import DatabaseFullError, SlotTakenError, UnknownRunError
from cronctl.records import FAILURE_STATUSES, Output, Run, RunningElsewhere, Status, Trigger
from cronctl.store.database import from_ms, to_ms
from cronctl.store.postgres.connection import Connection, PgDatabase
from cronctl.store.runs import NO_OUTPUT, OUTPUT_COLUMNS, RUN_COLUMNS, Claim, run_from_row
from cronctl.store.schema import FAILURES_SQL, SLOT_TRIGGERS_SQL
from cronctl.store.skips import FOLDED_RUN_COLUMNS, PREVIOUS_COLUMNS, fold_values

# Under serve's log (cronctl/serve/log.py): what a host learns about the others' records.
fleet_log = logging.getLogger("cronctl.serve.fleet")
OVERLAP_SKIP_REASON = 'overlap = "skip": a run of it is still going (on host '
RUNS_OF_R = ", ".join(f"r.{name.strip()}" for name in RUN_COLUMNS.split(","))
OUTPUT_OF_O = ", ".join(f"o.{name.strip()}" for name in OUTPUT_COLUMNS.split(","))
SLOT_SQL = f"attempt = 1 AND trigger IN ({SLOT_TRIGGERS_SQL}) AND scheduled_at IS NOT NULL"

_FINISH_SET = (
    "UPDATE runs SET status = %(status)s, finished_at = %(finished_at)s,"
    " duration_ms = %(duration_ms)s, exit_code = %(exit_code)s, signal = %(signal)s,"
    " reason = COALESCE(%(reason)s, reason), started_at = COALESCE(%(started_at)s, started_at)"
    f" WHERE id = %(id)s AND status <> 'abandoned' RETURNING {RUN_COLUMNS}"
)
_FINISH_WITH_OUTPUT = (
    f"WITH done AS ({_FINISH_SET}), kept AS (INSERT INTO run_output (run_id, {OUTPUT_COLUMNS})"
    " SELECT id, %(stdout)s, %(stderr)s, %(stdout_bytes)s, %(stderr_bytes)s,"
    " %(stdout_dropped)s, %(stderr_dropped)s FROM done ON CONFLICT (run_id) DO UPDATE SET"
    " stdout = EXCLUDED.stdout, stderr = EXCLUDED.stderr, stdout_bytes = EXCLUDED.stdout_bytes,"
    " stderr_bytes = EXCLUDED.stderr_bytes, stdout_dropped = EXCLUDED.stdout_dropped,"
    " stderr_dropped = EXCLUDED.stderr_dropped)"
    f" SELECT {RUN_COLUMNS} FROM done"
)
_CLAIMS = (
    "INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, status, host, reason)"
    " SELECT c.task, c.trigger, c.attempt, c.slot, %(at)s,"
    " CASE WHEN elsewhere.host IS NULL THEN 'running' ELSE 'skipped' END, %(me)s,"
    " CASE WHEN elsewhere.host IS NULL THEN NULL"
    f" ELSE {OVERLAP_SKIP_REASON!r} || elsewhere.host || ')' END"
    " FROM unnest(%(tasks)s::text[], %(triggers)s::text[], %(attempts)s::integer[],"
    " %(slots)s::bigint[]) WITH ORDINALITY AS c(task, trigger, attempt, slot, n)"
    " LEFT JOIN LATERAL (SELECT r.host FROM runs r WHERE c.attempt = 1"
    " AND c.task = ANY(%(skips)s::text[]) AND r.status = 'running' AND r.task = c.task"
    " AND r.host IS DISTINCT FROM %(me)s LIMIT 1) AS elsewhere ON true"
    " ORDER BY c.n ON CONFLICT DO NOTHING RETURNING id, task, trigger, attempt, scheduled_at,"
    " status"
)
# The claims of tasks with `overlap = "skip"`, "queue" or "replace" wait here for each other
# across hosts (one lock a task, taken in name order: no two claimers wait for each other in a
# cycle), so that a claim sees the `running` row another host's claim of the task committed
# just before.
_TASK_LOCKS = (
    "SELECT pg_advisory_xact_lock(hashtext('cronctl:task:' || t))"
    " FROM (SELECT DISTINCT t FROM unnest(%s::text[]) AS t ORDER BY t) AS locked"
)
# The claims (by their place n) of a task with a run going on another host (any attempt, any
# trigger: a retry or a run-now there counts as much as a slot), with that host; not a claim
# of a slot that has its row already: that one is taken, whoever runs the task now.
_RUNNING_ELSEWHERE = (
    "SELECT c.n, e.host FROM unnest(%(tasks)s::text[], %(triggers)s::text[],"
    " %(attempts)s::integer[], %(slots)s::bigint[]) WITH ORDINALITY AS c(task, trigger,"
    " attempt, slot, n) JOIN LATERAL (SELECT r.host FROM runs r WHERE r.status = 'running'"
    " AND r.task = c.task AND r.host IS DISTINCT FROM %(me)s ORDER BY r.id LIMIT 1) AS e"
    f" ON true WHERE NOT (c.attempt = 1 AND c.trigger IN ({SLOT_TRIGGERS_SQL})"
    " AND EXISTS (SELECT 1 FROM runs s WHERE s.task = c.task AND s.scheduled_at = c.slot"
    f" AND s.attempt = 1 AND s.trigger IN ({SLOT_TRIGGERS_SQL})))"
)


def _claim_params(claims: Sequence[Claim], me: str) -> dict[str, Any]:
    return {
        "me": me,
        "tasks": [claim[0] for claim in claims],
        "triggers": [str(claim[1]) for claim in claims],
        "attempts": [claim[2] for claim in claims],
        "slots": [to_ms(claim[3]) for claim in claims],
    }


def unknown_run(run_id: int) -> UnknownRunError:
    return UnknownRunError(f"no run with id {run_id}", hint="see `cronctl history`")


def text(value: object) -> str | None:
    """A status or trigger as the column holds it (an enum's value; a str as it is)."""
    return None if value is None else str(value)


def match_claims(claims: Sequence[Claim], rows: Iterable[tuple[Any, ...]]) -> list[int | None]:
    """The id of each claim from the rows its INSERT returned (id, task, trigger, attempt,
    slot), None for a claim with no row (its slot was taken). Equal claims get the ids of
    their equal rows in id order: the first claim of a slot is the one that won it."""
    found: dict[tuple[Any, ...], list[int]] = {}
    for row in sorted(rows):
        found.setdefault(tuple(row[1:]), []).append(int(row[0]))
    ids: list[int | None] = []
    for task, trigger, attempt, slot in claims:
        waiting = found.get((task, str(trigger), attempt, to_ms(slot)))
        ids.append(waiting.pop(0) if waiting else None)
    return ids


class PgRunStore(PgDatabase):
    """The runs table: a run's start, pid and end; runs read back, newest first."""

    fleet_skips: frozenset[str] = frozenset()
    fleet_waits: frozenset[str] = frozenset()

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
        """Insert a run and return its id; raise SlotTakenError when its slot already ran
        (or, for a task of `skip_while_running_elsewhere`, was just recorded `skipped`: its
        run goes on another host)."""
        if task in self.fleet_skips and status is Status.RUNNING and scheduled_at is not None:
            [run_id] = self.start_runs(
                [(task, trigger, attempt, scheduled_at)], started_at=started_at
            )
            if not isinstance(run_id, int):
                raise SlotTakenError(f"slot {scheduled_at} of task '{task}' is settled")
            return run_id
        row = self._write_one(
            "INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, status, pid,"
            " reason, host) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                task,
                text(trigger),
                attempt,
                to_ms(scheduled_at),
                to_ms(started_at),
                text(status),
                pid,
                reason,
                self.host,
            ),
        ).fetchone()
        if row is None:
            raise SlotTakenError(f"slot {scheduled_at} of task '{task}' has already run")
        return int(row[0])

    def start_runs(
        self, claims: Sequence[Claim], *, started_at: datetime
    ) -> list[int | RunningElsewhere | None]:
        """Insert the `running` rows of several runs in one statement (serve's claims of one
        instant) and return their ids in order, None for a run whose slot already ran. All or
        none are written: a StoreError means none was.

        Across hosts (README.md#several-serves-one-history): the first attempt of a task of
        `skip_while_running_elsewhere` whose run is going on another host is recorded
        `skipped` for its slot, with that host in the reason, and comes back None: the slot
        is settled, nothing runs. A claim of a task of `wait_while_running_elsewhere` whose
        run is going on another host writes nothing and comes back RunningElsewhere: that
        host applies `queue` or `replace` to the slot, and this one tries again later."""
        if not claims:
            return []
        skips = sorted({claim[0] for claim in claims if claim[0] in self.fleet_skips})
        waits = sorted({claim[0] for claim in claims if claim[0] in self.fleet_waits})
        if not skips and not waits:
            return self._claim(claims, started_at, [], self._write_one)
        elsewhere: dict[int, str] = {}
        with self._write() as db:
            db.execute(_TASK_LOCKS, (skips + waits,))
            if waits:
                waiting = [(n, claim) for n, claim in enumerate(claims) if claim[0] in waits]
                found = db.execute(
                    _RUNNING_ELSEWHERE, _claim_params([claim for _, claim in waiting], self.host)
                ).fetchall()
                elsewhere = {waiting[n - 1][0]: host or "?" for n, host in found}
            going = [claim for n, claim in enumerate(claims) if n not in elsewhere]
            taken = iter(self._claim(going, started_at, skips, db.execute) if going else [])
        return [
            RunningElsewhere(elsewhere[n]) if n in elsewhere else next(taken)
            for n in range(len(claims))
        ]

    def _claim(
        self,
        claims: Sequence[Claim],
        started_at: datetime,
        skips: list[str],
        execute: Callable[[str, Any], psycopg.Cursor[tuple[Any, ...]]],
    ) -> list[int | RunningElsewhere | None]:
        params = _claim_params(claims, self.host) | {"at": to_ms(started_at), "skips": skips}
        rows = execute(_CLAIMS, params).fetchall()
        started = [row[:5] for row in rows if row[5] == "running"]
        taken = match_claims(claims, [row[:5] for row in rows])
        running = {int(row[0]) for row in started}
        return [run_id if run_id in running else None for run_id in taken]

    def skip_while_running_elsewhere(self, tasks: Collection[str]) -> None:
        """The tasks whose `overlap = "skip"` holds across hosts (serve sets them at start
        and at each reload)."""
        self.fleet_skips = frozenset(tasks)

    def wait_while_running_elsewhere(self, tasks: Collection[str]) -> None:
        """The tasks whose `overlap = "queue"` or `"replace"` holds across hosts (serve sets
        them at start and at each reload)."""
        self.fleet_waits = frozenset(tasks)

    def set_pid(self, run_id: int, pid: int) -> None:
        self._write_one("UPDATE runs SET pid = %s WHERE id = %s", (pid, run_id))

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
        """Record the end of a run and return the finished record, in one statement. On a
        full disk the end is recorded without the output, with a note in `reason` (as the
        SQLite store does)."""
        values: dict[str, Any] = {
            "status": text(status),
            "finished_at": to_ms(finished_at),
            "duration_ms": duration_ms,
            "exit_code": exit_code,
            "signal": signal,
            "reason": reason,
            "started_at": to_ms(started_at),
            "id": run_id,
        }
        has_output = stdout is not None or stderr is not None
        out, err = stdout or Output(b"", 0), stderr or Output(b"", 0)
        output = (
            out.data,
            err.data,
            out.total_bytes,
            err.total_bytes,
            out.dropped_bytes,
            err.dropped_bytes,
        )
        if not has_output:
            row = self._write_one(_FINISH_SET, values).fetchone()
            if row is None:
                return self._not_running(run_id, status)
            return run_from_row(row, NO_OUTPUT)
        names = ("stdout", "stderr", "stdout_bytes", "stderr_bytes")
        streams = dict(zip((*names, "stdout_dropped", "stderr_dropped"), output, strict=True))
        try:
            row = self._write_one(_FINISH_WITH_OUTPUT, values | streams).fetchone()
        except DatabaseFullError as exc:
            note = f"output not kept: {exc.message}"
            values["reason"] = f"{reason}; {note}" if reason else note
            row = self._write_one(_FINISH_SET, values).fetchone()
            if row is None:
                return self._not_running(run_id, status)
            return run_from_row(row, NO_OUTPUT)
        if row is None:
            return self._not_running(run_id, status)
        return run_from_row(row, output)

    def _not_running(self, run_id: int, status: Status) -> Run:
        """The end of a run recorded `abandoned` meanwhile: another host declared this one
        dead (serve/fleet.py). Its record stands as that host wrote it (never recorded over),
        returned as it is; UnknownRunError when there is no such run. An `abandoned` row is
        final: the only writer of one besides a lease is serve's start-up recovery, of runs
        whose serve is gone."""
        run = self.get_run(run_id)
        fleet_log.warning(
            "run %s of %s ended %s here, but another host had recorded it %s meanwhile (%s):"
            " its record is left as it is",
            run.id,
            run.task,
            status,
            run.status,
            run.reason or "no reason given",
        )
        return run

    def record_notify_error(self, run_id: int, message: str | None) -> None:
        self._write_one("UPDATE runs SET notify_error = %s WHERE id = %s", (message, run_id))

    # -- reading runs --------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run:
        """Return one run with its output; raise UnknownRunError when there is none."""
        row = self._read_one(
            f"SELECT {RUNS_OF_R}, o.run_id, {OUTPUT_OF_O} FROM runs r"
            " LEFT JOIN run_output o ON o.run_id = r.id WHERE r.id = %s",
            (run_id,),
        )
        if row is None:
            raise unknown_run(run_id)
        width = len(RUN_COLUMNS.split(","))
        output = row[width + 1 :] if row[width] is not None else NO_OUTPUT
        return run_from_row(row[:width], output)

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
        """Runs newest first (no output), filtered as `RunStore.runs` filters them."""
        clauses: list[str] = []
        params: list[object] = []
        if task is not None:
            clauses.append("task = %s")
            params.append(task)
        if statuses is not None:
            status_list = [str(status) for status in statuses]
            if sorted(status_list) == sorted(FAILURE_STATUSES):
                clauses.append(f"status IN ({FAILURES_SQL})")  # the partial index's predicate
            else:
                clauses.append("status = ANY(%s::text[])")
                params.append(status_list)
        if triggers is not None:
            clauses.append("trigger = ANY(%s::text[])")
            params.append([str(trigger) for trigger in triggers])
        if since is not None:
            clauses.append("started_at >= %s")
            params.append(to_ms(since))
        if until is not None:
            clauses.append("started_at < %s")
            params.append(to_ms(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        return [run_from_row(row) for row in self._read(sql, params)]

    def last_run(self, task: str, *, statuses: Iterable[Status] | None = None) -> Run | None:
        found = self.runs(task, statuses=statuses, limit=1)
        return found[0] if found else None

    def last_success_at(self, task: str) -> datetime | None:
        last = self.last_run(task, statuses=[Status.SUCCEEDED])
        return last.started_at if last else None

    def latest_slot(self, task: str) -> datetime | None:
        row = self._read_one(
            f"SELECT MAX(scheduled_at) FROM runs WHERE task = %s AND {SLOT_SQL}", (task,)
        )
        return from_ms(row[0]) if row else None

    def latest_slots(self, tasks: Collection[str]) -> dict[str, datetime]:
        """`latest_slot` of each of `tasks` that has one, in one statement."""
        if not tasks:
            return {}
        rows = self._read(
            "SELECT n.task, (SELECT MAX(scheduled_at) FROM runs WHERE task = n.task"
            f" AND {SLOT_SQL}) FROM unnest(%s::text[]) AS n(task)",
            (list(tasks),),
        )
        return {task: from_ms(slot) for task, slot in rows if slot is not None}

    def task_names(self) -> list[str]:
        return [row[0] for row in self._read("SELECT DISTINCT task FROM runs ORDER BY task")]

    # -- condition skips (cronctl/store/skips.py) ----------------------------------------

    def finish_condition_skip(self, run_id: int, *, finished_at: datetime, reason: str) -> Run:
        """Record run `run_id` as skipped by its `when` condition, folded into the task's
        previous row when that row is the same skip (SkipStore.finish_condition_skip)."""
        with self._write() as conn:
            folded = _fold(conn, run_id, finished_at, reason)
        if folded is not None:
            return folded
        return self.finish_run(
            run_id, status=Status.SKIPPED, finished_at=finished_at, reason=reason
        )


def _fold(conn: Connection, run_id: int, finished_at: datetime, reason: str) -> Run | None:
    row = conn.execute(f"SELECT {FOLDED_RUN_COLUMNS} FROM runs WHERE id = %s", (run_id,)).fetchone()
    if row is None:
        raise unknown_run(run_id)
    previous = conn.execute(
        f"SELECT {PREVIOUS_COLUMNS} FROM runs WHERE task = %s AND id < %s"
        " ORDER BY id DESC LIMIT 1 FOR UPDATE",
        (row[0], run_id),
    ).fetchone()
    values = fold_values(row, previous, finished_at, reason)  # the same rule as SQLite's
    if values is None:
        return None
    conn.execute("DELETE FROM runs WHERE id = %s", (run_id,))
    folded = conn.execute(
        "UPDATE runs SET repeats = %s, skipped_since = %s, started_at = %s,"
        " scheduled_at = COALESCE(%s, scheduled_at), finished_at = %s, reason = %s"
        f" WHERE id = %s RETURNING {RUN_COLUMNS}",
        values,
    ).fetchone()
    assert folded is not None  # the row was locked FOR UPDATE
    return run_from_row(folded, NO_OUTPUT)
