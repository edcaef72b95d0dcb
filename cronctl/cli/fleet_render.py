"""Task files that differ between hosts, as `status` and `check` show them
(README.md#task-files-that-differ): a table of `status`, findings and a note of `check`.

Only digests and key names are shown, never a value: the history holds none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cronctl import timefmt
from cronctl.columns import Column
from cronctl.divergence import Divergence, divergence_json, variants_text
from cronctl.render import Renderer

if TYPE_CHECKING:
    from cronctl.fleet_check import FleetComparison

DIVERGENT_COLUMNS = [
    Column("Task", 0, shrink_to=10),
    Column("Differs in", 1, shrink_to=10),
    Column("Definitions", 2, shrink_to=16),
    Column("Missing on", 3, shrink_to=10),
]


def render_divergent(renderer: Renderer, divergent: Sequence[Divergence]) -> None:
    """`status`: one row a task the live hosts do not agree on: the keys that differ, the
    hosts grouped by the digest of their definition, the hosts without it."""
    if not divergent:
        return
    renderer.line("")
    renderer.line("task definitions that differ between hosts:")
    renderer.table(
        DIVERGENT_COLUMNS,
        [
            [
                d.task,
                ", ".join(d.keys) or ("defaults" if d.differs else "-"),
                variants_text(d),
                ", ".join(d.missing_on) or "-",
            ]
            for d in divergent
        ],
    )


class FleetFindings:
    """`check`'s part about the other hosts: a warning a divergent task (`warnings`: task,
    message), one note line, and the keys of `check --json`."""

    def __init__(self, comparison: FleetComparison, host: str) -> None:
        self.comparison = comparison
        self.warnings = [(d.task, finding_message(d, host)) for d in comparison.divergent]

    @property
    def line(self) -> str | None:
        """What was compared, or why nothing was."""
        found = self.comparison
        if found.note is not None:
            return f"note: {found.note}"
        if not found.compared_with:
            return None
        count = len(found.divergent)
        differ = (
            f"{timefmt.counted(count, 'task')} {'differs' if count == 1 else 'differ'}"
            if count
            else "no task differs"
        )
        return f"compared with the serves of {', '.join(found.compared_with)}: {differ}."

    def json(self) -> dict[str, Any]:
        found = self.comparison
        return {
            "compared_with": None if found.compared_with is None else list(found.compared_with),
            "divergent": [divergence_json(d) for d in found.divergent],
            "comparison_note": found.note,
        }


def finding_message(divergence: Divergence, host: str) -> str:
    """A divergent task as `check` warns of it, from this host's side: this file against the
    other hosts' serves."""
    mine = [v for v in divergence.variants if host in v.hosts]
    if not mine:
        runs = _hosts(h for v in divergence.variants for h in v.hosts)
        return f"not in this task file, but the serve of {runs} runs it"
    parts = []
    others = [h for v in divergence.variants if v is not mine[0] for h in v.hosts]
    if others:
        keys = ", ".join(divergence.keys) or "a default of another cronctl version"
        parts.append(f"defined differently by the serve of {_hosts(others)} (differs in: {keys})")
    if divergence.missing_on:
        parts.append(f"not run by the serve of {_hosts(divergence.missing_on)}")
    return "; ".join(parts)


def _hosts(hosts: Iterable[str]) -> str:
    return ", ".join(sorted(set(hosts)))
