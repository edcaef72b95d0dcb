"""cronctl: cron plus run history.

The library under the `cronctl` command: `Schedule` for cron expressions with Vixie cron's
meaning, `HistoryStore` for the run history, `taskfile` for the TOML task file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cronctl.schedule import Schedule as Schedule
    from cronctl.store import HistoryStore as HistoryStore

_LAZY = {"Schedule": "cronctl.schedule", "HistoryStore": "cronctl.store"}


def __getattr__(name: str) -> Any:
    # Imported on first use: `cronctl --version` and completion must not pay for SQLite and
    # the schedule engine.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cronctl' has no attribute {name!r}")


__all__ = ["HistoryStore", "Schedule", "__version__"]
