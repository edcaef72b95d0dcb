"""`check` against the other hosts: the local task file's digests compared with what the live
serves of the other hosts of a shared history recorded (README.md#task-files-that-differ).

Only a history at a URL is shared: on a SQLite file there is one host and nothing to compare,
and nothing is said. What is found is a warning, as `check`'s other findings about a valid
file are (exit 0): the file may be right and another host's wrong, and `status` is where a
fleet's health fails (exit 1). A history that cannot be read (unreachable, refused) is a note,
never an error: `check` judges the file's own correctness whatever the database does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cronctl.divergence import Divergence, digest_rows, divergences
from cronctl.errors import CronctlError
from cronctl.health import serve_health
from cronctl.history import ServeStateRecorder, TaskDefinitions
from cronctl.locations import is_url
from cronctl.model import Task
from cronctl.model.digest import task_digests


class FleetHistory(ServeStateRecorder, TaskDefinitions, Protocol):
    """What the comparison reads: the serves, and the task definitions of the live ones."""


@dataclass(frozen=True)
class FleetComparison:
    """The hosts compared with (None: not compared) and what differs; `note` says why a
    history that is shared could not be compared with."""

    compared_with: tuple[str, ...] | None
    divergent: list[Divergence] = field(default_factory=list)
    note: str | None = None


def compare_with_fleet(
    tasks: Collection[Task],
    open_history: Callable[[], FleetHistory],
    *,
    database: str,
    host: str,
    now: datetime,
    unchecked: Collection[str] = (),
) -> FleetComparison:
    """Compare `tasks` (the valid tasks of the file, run on `host`) with the definitions the
    other hosts' live serves recorded. `unchecked`: tasks of the file that are invalid (not
    compared: whatever the others have of them, the file has an error to fix first)."""
    if not is_url(database):
        return FleetComparison(None)
    try:
        store = open_history()
        others = tuple(
            sorted(
                state.hostname
                for state in store.serves()
                if state.hostname != host and serve_health(state, now).running
            )
        )
        rows = store.task_definitions(others) if others else []
    except CronctlError as exc:
        return FleetComparison(None, note=f"not compared with the other hosts: {exc.message}")
    local = digest_rows(host, task_digests(tasks), now)
    found = divergences([*local, *rows], {host, *others})
    return FleetComparison(others, [d for d in found if d.task not in unchecked])
