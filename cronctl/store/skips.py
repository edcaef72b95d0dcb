"""Condition skips kept as one row (README: Runs): a task whose `when` condition says no, run
after run, gets one `skipped` row with a count and the time range, not a row per slot.

An `@every 10s` task gated by `when` would otherwise write 8,640 rows a day and push its real
runs out of `keep_runs`. A skip is folded into the task's previous row when that row is a
skip of the same trigger with the same reason and no other row of the task came between
(`id` order: rows are numbered as runs are claimed). The folded row keeps its id and takes
the newest skip's `started_at`, `finished_at` and `scheduled_at` (so `list`'s last run,
`history`'s order, retention by age and the next catch-up see the newest skip, and that slot
stays claimed); schema version 5 adds its count (`repeats`) and when the first of them started
(`skipped_since`), and `reason` says both:
"the when condition `test -e /run/go` exited 1 (123 times since 2026-12-05T14:00:05+00:00)".
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from cronctl.errors import UnknownRunError
from cronctl.records import CONDITION_SKIP_PREFIX, Run, Status
from cronctl.store.database import from_ms, to_ms
from cronctl.store.runs import NO_OUTPUT, RUN_COLUMNS, RunStore, run_from_row
from cronctl.store.schema import SLOT_TRIGGERS_SQL


def is_condition_skip(status: Status, reason: str | None) -> bool:
    return (
        status == Status.SKIPPED and reason is not None and reason.startswith(CONDITION_SKIP_PREFIX)
    )


def folded_reason(reason: str, repeats: int, first: datetime) -> str:
    """The reason of a row that stands for `repeats` skips, the first started at `first`."""
    since = first.replace(microsecond=0).isoformat()
    return f"{reason} ({repeats} times since {since})"


def _same_reason(stored: str | None, reason: str) -> bool:
    return stored is not None and (stored == reason or stored.startswith(f"{reason} ("))


class SkipStore(RunStore):
    """Writes condition skips, folding consecutive ones into one row; reads where each task's
    catch-up starts."""

    def latest_slots(self, tasks: Collection[str]) -> dict[str, datetime]:
        """Return the newest scheduled instant that has a run, of each of `tasks` that has one
        (`latest_slot` for many tasks): serve's catch-up starting points, read at start.

        One statement for every task, the names passed as one JSON array: each task is still
        an index seek on (task, scheduled_at), but in SQLite, not a Python round trip per task
        (100,000 tasks: 0.9 s one query a task, measured; docs/performance.md,
        "100,000 tasks").
        """
        if not tasks:
            return {}
        with self._guard():
            rows = self._db.execute(
                "SELECT names.value, (SELECT MAX(scheduled_at) FROM runs WHERE task = names.value"
                f" AND attempt = 1 AND trigger IN ({SLOT_TRIGGERS_SQL})"
                " AND scheduled_at IS NOT NULL) FROM json_each(?) AS names",
                (names_json(tasks),),
            ).fetchall()
        return {task: from_ms(slot) for task, slot in rows if slot is not None}

    def finish_condition_skip(self, run_id: int, *, finished_at: datetime, reason: str) -> Run:
        """Record run `run_id` as skipped by its `when` condition; fold it into the task's
        previous row when that row is the same skip (see the module docstring). Returns the
        row that now stands for it."""
        with self._write() as db:
            folded = _fold(db, run_id, finished_at, reason)
        if folded is not None:
            return folded
        return self.finish_run(
            run_id, status=Status.SKIPPED, finished_at=finished_at, reason=reason
        )


def _fold(db: sqlite3.Connection, run_id: int, finished_at: datetime, reason: str) -> Run | None:
    """Fold run `run_id` into its task's previous row, in the caller's transaction; None when
    that row is not the same skip (nothing is changed then)."""
    row = db.execute(f"SELECT {FOLDED_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise UnknownRunError(f"no run with id {run_id}", hint="see `cronctl history`")
    previous = db.execute(
        f"SELECT {PREVIOUS_COLUMNS} FROM runs WHERE task = ? AND id < ? ORDER BY id DESC LIMIT 1",
        (row[0], run_id),
    ).fetchone()
    values = fold_values(row, previous, finished_at, reason)
    if values is None:
        return None
    # The new row goes first: the folded row takes its slot, and a slot is claimed once.
    db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    folded = db.execute(
        "UPDATE runs SET repeats = ?, skipped_since = ?, started_at = ?,"
        " scheduled_at = COALESCE(?, scheduled_at), finished_at = ?, reason = ?"
        f" WHERE id = ? RETURNING {RUN_COLUMNS}",
        values,
    ).fetchone()
    return run_from_row(folded, NO_OUTPUT)


# What a fold reads of the run (`FOLDED_RUN_COLUMNS`) and of its task's previous row
# (`PREVIOUS_COLUMNS`), in both stores.
FOLDED_RUN_COLUMNS = "task, trigger, attempt, scheduled_at, started_at"
PREVIOUS_COLUMNS = (
    "id, trigger, attempt, status, reason, COALESCE(skipped_since, started_at), repeats"
)


def fold_values(
    run: Sequence[Any], previous: Sequence[Any] | None, finished_at: datetime, reason: str
) -> tuple[Any, ...] | None:
    """The values of the UPDATE that folds a run (its FOLDED_RUN_COLUMNS) into its task's
    previous row (its PREVIOUS_COLUMNS): repeats, skipped_since, started_at, scheduled_at,
    finished_at, reason, the previous row's id. None when that row is not the same skip (the
    same trigger and attempt, skipped for the same reason): nothing is folded then."""
    if previous is None:
        return None
    _task, trigger, attempt, scheduled_at, started_at = run
    previous_id, previous_trigger, previous_attempt, status, stored, since, repeats = previous
    if (
        status != Status.SKIPPED
        or (previous_trigger, previous_attempt) != (trigger, attempt)
        or not _same_reason(stored, reason)
    ):
        return None
    return (
        repeats + 1,
        since,
        started_at,
        scheduled_at,
        to_ms(finished_at),
        folded_reason(reason, repeats + 1, from_ms(since)),
        previous_id,
    )


def names_json(names: Iterable[str]) -> str:
    """`names` as a JSON array of strings, for `json_each(?)`: one statement for many tasks."""
    return "[" + ",".join(map(_json_string, names)) + "]"


_NOT_PLAIN_IN_JSON = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')


def _json_string(text: str) -> str:
    """`text` as a JSON string, every character that is not plain ASCII escaped as \\uXXXX
    (`list` imports this module and does not need the json module's import)."""

    def escaped(found: re.Match[str]) -> str:
        units = found.group().encode("utf-16-be", "surrogatepass")
        return "".join(f"\\u{units[i] << 8 | units[i + 1]:04x}" for i in range(0, len(units), 2))

    return '"' + _NOT_PLAIN_IN_JSON.sub(escaped, text) + '"'
