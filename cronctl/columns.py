"""How a terminal table fits its width: which columns stay, and how wide
(README.md#a-five-minute-tour).

One line a row: a cell never wraps. A column is shortened with an ellipsis, or left out,
by its rank; the renderer (cronctl/render.py) draws what this decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A column of a terminal table: its header, its rank (0 is kept longest; the highest rank
    is dropped first when the table is too wide) and the width it may be shortened to with an
    ellipsis (None: never shortened; dropped whole)."""

    header: str
    rank: int
    shrink_to: int | None = None


# Between two columns: a space, the rule, a space (no edges: show_edge and pad_edge are off).
COLUMN_GAP = 3


def fit_columns(columns: Sequence[Column], natural: Sequence[int], width: int) -> dict[int, int]:
    """Return {column index: width} for a one-line-a-row table in `width` cells.

    Every column at its natural width when they fit; else the shortenable ones give up width,
    the one of the highest rank first, each down to its `shrink_to`; when that is not enough,
    the column of the highest rank is dropped and the rest tried again at their natural widths.
    Narrower than the last column left, that column is cut to the width.
    """
    kept = list(range(len(columns)))
    while kept:
        widths = {i: natural[i] for i in kept}
        excess = sum(widths.values()) + COLUMN_GAP * (len(kept) - 1) - width
        while excess > 0:
            shrinkable = [
                i
                for i in kept
                if columns[i].shrink_to is not None and widths[i] > (columns[i].shrink_to or 0)
            ]
            if not shrinkable:
                break
            # The least important column gives up a cell first: a task's name stays whole
            # while its description in words can still shorten.
            giver = max(shrinkable, key=lambda i: (columns[i].rank, widths[i]))
            widths[giver] -= 1
            excess -= 1
        if excess <= 0:
            return widths
        if len(kept) == 1:  # narrower than one column: it is cut (Rich adds the ellipsis)
            return {kept[0]: max(1, width)}
        kept.remove(max(kept, key=lambda i: (columns[i].rank, i)))
    return {}
