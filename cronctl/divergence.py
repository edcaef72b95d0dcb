"""Task files that differ between the hosts of a shared history, as data
(README.md#task-files-that-differ): what `status` and `check` report of them.

Each serve records a digest of each task it runs (cronctl/model/digest.py; the rows of
`TaskDefinitions`). Among the live hosts (their serves running: not stopped, not declared
dead, heartbeat fresh), a task is divergent when its digests differ, or when some of them do
not have it. The report names the task, groups the hosts by digest, and says which keys
differ (a key a row leaves out is at its default); it never holds a value, since the history
holds none.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronctl import timefmt
from cronctl.history import Digested, TaskDefinitions
from cronctl.records import TaskDefinition

# Tasks named in a problem line; the rest are counted (the table below it lists them all).
NAMED_IN_LINE = 5


@dataclass(frozen=True)
class Variant:
    """One definition of a task, and the hosts that run it so."""

    digest: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Divergence:
    """A task the live hosts do not agree on."""

    task: str
    variants: tuple[Variant, ...]  # by host name of each one's first host
    keys: tuple[str, ...]  # the keys whose digests differ between the variants, sorted
    missing_on: tuple[str, ...]  # the live hosts without the task

    @property
    def differs(self) -> bool:
        """Whether the hosts that have the task have different definitions of it."""
        return len(self.variants) > 1


def differing_keys(definitions: Sequence[TaskDefinition]) -> tuple[str, ...]:
    """The keys whose digests are not the same in every one of `definitions`."""
    names = {name for definition in definitions for name in definition.keys}
    return tuple(
        sorted(
            name
            for name in names
            if len({definition.keys.get(name) for definition in definitions}) > 1
        )
    )


def divergences(rows: Iterable[TaskDefinition], hosts: Collection[str]) -> list[Divergence]:
    """The divergent tasks among the rows of `hosts` (the live hosts), by task name."""
    by_task: dict[str, list[TaskDefinition]] = {}
    for row in rows:
        if row.host in hosts:
            by_task.setdefault(row.task, []).append(row)
    found = []
    for task, definitions in sorted(by_task.items()):
        by_digest: dict[str, list[str]] = {}
        for definition in definitions:
            by_digest.setdefault(definition.digest, []).append(definition.host)
        variants = tuple(
            sorted((Variant(d, tuple(sorted(h))) for d, h in by_digest.items()), key=_first_host)
        )
        missing = tuple(sorted(set(hosts) - {definition.host for definition in definitions}))
        if len(variants) > 1 or missing:
            keys = differing_keys(definitions) if len(variants) > 1 else ()
            found.append(Divergence(task, variants, keys, missing))
    return found


def _first_host(variant: Variant) -> str:
    return variant.hosts[0]


def fleet_divergences(store: TaskDefinitions, live_hosts: Sequence[str]) -> list[Divergence]:
    """`status`: the divergent tasks of the live hosts, as the history holds them (nothing to
    compare on one host: no read)."""
    hosts = sorted(set(live_hosts))
    if len(hosts) < 2:
        return []
    return divergences(store.task_definitions(hosts, divergent=True), hosts)


def problem_lines(found: Sequence[Divergence]) -> list[str]:
    """`status`'s problem lines: the tasks defined differently, the tasks some hosts lack."""
    lines = []
    different = [d for d in found if d.differs]
    if different:
        lines.append(
            f"{timefmt.counted(len(different), 'task')} defined differently on the hosts:"
            f" {_named(different, _with_keys)}"
        )
    partial = [d for d in found if d.missing_on]
    if partial:
        lines.append(
            f"{timefmt.counted(len(partial), 'task')} not on every host:"
            f" {_named(partial, _with_missing)}"
        )
    return lines


def _named(found: Sequence[Divergence], describe: Callable[[Divergence], str]) -> str:
    shown = ", ".join(describe(d) for d in found[:NAMED_IN_LINE])
    more = len(found) - NAMED_IN_LINE
    return shown + (f" and {more} more" if more > 0 else "")


def _with_keys(divergence: Divergence) -> str:
    return f"{divergence.task} ({', '.join(divergence.keys) or 'defaults'})"


def _with_missing(divergence: Divergence) -> str:
    return f"{divergence.task} (not on {', '.join(divergence.missing_on)})"


def short_digest(digest: str) -> str:
    """A digest as tables show it: its first 8 hex digits, as `git log` shortens a hash."""
    return digest[:8]


def variants_text(divergence: Divergence) -> str:
    """The hosts grouped by definition: `host-a, host-c: 1a2b3c4d; host-b: 9f8e7d6c`."""
    return "; ".join(f"{', '.join(v.hosts)}: {short_digest(v.digest)}" for v in divergence.variants)


def divergence_json(divergence: Divergence) -> dict[str, Any]:
    return {
        "task": divergence.task,
        "keys": list(divergence.keys),
        "definitions": [{"digest": v.digest, "hosts": list(v.hosts)} for v in divergence.variants],
        "missing_on": list(divergence.missing_on),
    }


def digest_rows(
    host: str, digests: Mapping[str, Digested], seen_at: datetime
) -> list[TaskDefinition]:
    """A host's digests (task: its `TaskDigest`) as the rows its serve would record."""
    return [
        TaskDefinition(host, task, found.digest, found.keys, seen_at)
        for task, found in digests.items()
    ]
