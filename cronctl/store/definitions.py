"""What each host's serve runs, as digests: `TaskDefinitions` of `cronctl.history` in SQLite
(schema 9's `task_definitions`; README.md#task-files-that-differ).

A serve replaces its host's rows at start and at each reload, in one transaction: the rows of
tasks gone from its file are deleted, a row whose digest changed is written anew (its
`seen_at` is when this host first ran that definition), an unchanged row is left as it is, so
that a reload that changed one task writes one row. `status` and `check` read the rows of the
live hosts. The key digests are a JSON object of key name to digest; values are never stored.

The rows are the same on PostgreSQL (cronctl/store/postgres/definitions.py), which shares
`definition_from_row`, `key_digests_text` and `changes` with this module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from cronctl.history import Digested
from cronctl.records import TaskDefinition
from cronctl.store.database import Database, from_ms, to_ms

DEFINITION_COLUMNS = "host, task, digest, key_digests, seen_at"


def key_digests_text(keys: Mapping[str, str]) -> str:
    """The key digests as stored: a JSON object, keys sorted (digests are hex, names words)."""
    return "{" + ",".join(f'"{name}":"{keys[name]}"' for name in sorted(keys)) + "}"


def definition_from_row(row: Sequence[Any]) -> TaskDefinition:
    """The TaskDefinition of a row of DEFINITION_COLUMNS (both stores)."""
    # json here: the store is imported by every command, and only these readers need it.
    import json

    seen = from_ms(row[4])
    assert seen is not None
    return TaskDefinition(row[0], row[1], row[2], json.loads(row[3]), seen)


def changes(
    stored: Mapping[str, str], digests: Mapping[str, Digested]
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """What replacing a host's rows `stored` (task: digest) by `digests` takes: the tasks to
    delete, and the (task, digest, key digests) rows to write (new or changed)."""
    gone = [task for task in stored if task not in digests]
    written = [
        (task, found.digest, key_digests_text(found.keys))
        for task, found in digests.items()
        if stored.get(task) != found.digest
    ]
    return gone, written


def divergent_only(rows: list[tuple[Any, ...]], hosts: int) -> list[tuple[Any, ...]]:
    """The rows (of DEFINITION_COLUMNS) of the tasks whose digests differ, or that some of
    `hosts` lack."""
    found: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        found.setdefault(row[1], set()).add(row[2])
        counts[row[1]] = counts.get(row[1], 0) + 1
    odd = {task for task, digests in found.items() if len(digests) > 1 or counts[task] < hosts}
    return [row for row in rows if row[1] in odd]


class DefinitionStore(Database):
    """The `task_definitions` rows: a serve's write, `status`'s and `check`'s reads."""

    def record_definitions(self, digests: Mapping[str, Digested], *, now: datetime) -> int:
        with self._write() as db:
            stored = dict(
                db.execute(
                    "SELECT task, digest FROM task_definitions WHERE host = ?", (self.host,)
                ).fetchall()
            )
            gone, written = changes(stored, digests)
            db.executemany(
                "DELETE FROM task_definitions WHERE host = ? AND task = ?",
                [(self.host, task) for task in gone],
            )
            at = to_ms(now)
            db.executemany(
                "INSERT OR REPLACE INTO task_definitions (host, task, digest, key_digests,"
                " seen_at) VALUES (?, ?, ?, ?, ?)",
                [(self.host, task, digest, keys, at) for task, digest, keys in written],
            )
        return len(gone) + len(written)

    def task_definitions(
        self, hosts: Collection[str], *, divergent: bool = False
    ) -> list[TaskDefinition]:
        if not hosts:
            return []
        marks = ", ".join("?" * len(hosts))
        with self._guard():
            rows = self._db.execute(
                f"SELECT {DEFINITION_COLUMNS} FROM task_definitions WHERE host IN ({marks})"
                " ORDER BY task, host",
                tuple(hosts),
            ).fetchall()
        if divergent:
            rows = divergent_only(rows, len(set(hosts)))
        return [definition_from_row(row) for row in rows]
