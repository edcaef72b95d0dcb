"""The runner: the only part of cronctl that starts processes."""

from cronctl.runner.capture import BoundedCapture, CapturedOutput, safe_text
from cronctl.runner.process import ProcessOutcome, run_process, stop_process_group

__all__ = [
    "BoundedCapture",
    "CapturedOutput",
    "ProcessOutcome",
    "run_process",
    "safe_text",
    "stop_process_group",
]
