"""The runner: the only part of cronctl that starts processes.

Its names are loaded on first use: `cronctl status` shows a line of a job's output
(`safe_text`) and should not pay for loading the process machinery.
"""

import importlib
from typing import Any

_HOMES = {
    "BoundedCapture": "capture",
    "CapturedOutput": "capture",
    "safe_text": "capture",
    "ProcessOutcome": "process",
    "run_process": "process",
    "stop_process_group": "process",
}
__all__ = [
    "BoundedCapture",
    "CapturedOutput",
    "ProcessOutcome",
    "run_process",
    "safe_text",
    "stop_process_group",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cronctl.runner' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cronctl.runner.{home}"), name)
