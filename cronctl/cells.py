"""How one value reads in a table cell: a run's status (its style, its mark in a strip of
recent outcomes), its exit, a rate, durations as a sparkline. Read by the renderer
(cronctl/render.py), `top` (cli/top_render.py) and `status` (cli/health.py)."""

from __future__ import annotations

from collections.abc import Sequence

from cronctl.records import FAILURE_STATUSES, Run

STATUS_STYLES = {
    "succeeded": "green",
    "running": "cyan",
    "skipped": "yellow",
    "missed": "yellow",
    "interrupted": "magenta",
}
STATUS_MARKS = {"succeeded": "✓", "skipped": "-", "missed": "·", "running": "…", "interrupted": "!"}
SPARK = "▁▂▃▄▅▆▇█"


def status_style(status: str) -> str:
    return "bold red" if status in FAILURE_STATUSES else STATUS_STYLES.get(status, "")


def status_strip(statuses: Sequence[str]) -> str:
    """Return recent outcomes oldest to newest, one mark each (✓ success, ✗ failure)."""
    return "".join(
        "✗" if s in FAILURE_STATUSES else STATUS_MARKS.get(s, "?") for s in reversed(statuses)
    )


def sparkline(values: Sequence[int]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    step = (high - low) or 1
    return "".join(
        SPARK[min(len(SPARK) - 1, int((v - low) / step * (len(SPARK) - 1)))] for v in values
    )


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def exit_text(run: Run) -> str:
    """A run's exit status as a cell: its code, `signal N`, or `-`."""
    if run.exit_code is not None:
        return str(run.exit_code)
    return f"signal {run.signal}" if run.signal else "-"
