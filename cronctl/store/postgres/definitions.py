"""What each host's serve runs, as digests, in PostgreSQL: `TaskDefinitions` as
cronctl/store/definitions.py records it in SQLite (the same rows, the same rule).

A serve's write is one transaction of three statements whatever the number of tasks: its
host's stored digests read, the tasks gone deleted with `= ANY(array)`, the new and changed
rows written from arrays with `unnest` (one statement, not one a row: 100,000 tasks on a first
start). `status` asks for the divergent tasks only, found by the server (GROUP BY task over
the key's included digest): the rows of the tasks that agree never cross the network.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from cronctl.history import Digested
from cronctl.records import TaskDefinition
from cronctl.store.database import to_ms
from cronctl.store.definitions import DEFINITION_COLUMNS, changes, definition_from_row
from cronctl.store.postgres.connection import PgDatabase

_WRITE = (
    "INSERT INTO task_definitions (host, task, digest, key_digests, seen_at)"
    " SELECT %(host)s, task, digest, keys, %(at)s"
    " FROM unnest(%(tasks)s::text[], %(digests)s::text[], %(keys)s::text[])"
    " AS t(task, digest, keys)"
    " ON CONFLICT (host, task) DO UPDATE SET digest = EXCLUDED.digest,"
    " key_digests = EXCLUDED.key_digests, seen_at = EXCLUDED.seen_at"
)
# The tasks whose digests differ between `hosts`, or that some of them lack.
_DIVERGENT = (
    f"SELECT {DEFINITION_COLUMNS} FROM task_definitions WHERE host = ANY(%(hosts)s)"
    " AND task IN (SELECT task FROM task_definitions WHERE host = ANY(%(hosts)s) GROUP BY task"
    " HAVING count(DISTINCT digest) > 1 OR count(*) < %(count)s) ORDER BY task, host"
)


class PgDefinitionStore(PgDatabase):
    """The `task_definitions` rows: a serve's write, `status`'s and `check`'s reads."""

    def record_definitions(self, digests: Mapping[str, Digested], *, now: datetime) -> int:
        with self._write() as db:
            stored = dict(
                db.execute(
                    "SELECT task, digest FROM task_definitions WHERE host = %s", (self.host,)
                ).fetchall()
            )
            gone, written = changes(stored, digests)
            if gone:
                db.execute(
                    "DELETE FROM task_definitions WHERE host = %s AND task = ANY(%s)",
                    (self.host, gone),
                )
            if written:
                tasks, found, keys = (list(column) for column in zip(*written, strict=True))
                db.execute(
                    _WRITE,
                    {
                        "host": self.host,
                        "at": to_ms(now),
                        "tasks": tasks,
                        "digests": found,
                        "keys": keys,
                    },
                )
        return len(gone) + len(written)

    def task_definitions(
        self, hosts: Collection[str], *, divergent: bool = False
    ) -> list[TaskDefinition]:
        if not hosts:
            return []
        wanted = sorted(set(hosts))
        if divergent:
            rows = self._read(_DIVERGENT, {"hosts": wanted, "count": len(wanted)})
        else:
            rows = self._read(
                f"SELECT {DEFINITION_COLUMNS} FROM task_definitions WHERE host = ANY(%s)"
                " ORDER BY task, host",
                (wanted,),
            )
        return [definition_from_row(row) for row in rows]
