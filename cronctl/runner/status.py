"""A run's status and reason from how its process ended (`status_of`): the one place that
reads a `ProcessOutcome` as the history records it, for serve and `run-now` alike."""

from __future__ import annotations

import signal as signals

from cronctl.model.limits import Limits
from cronctl.records import Status
from cronctl.runner.limits import reached
from cronctl.runner.outcome import ProcessOutcome


def status_of(outcome: ProcessOutcome, limits: Limits | None = None) -> tuple[Status, str | None]:
    """Return the run status and a reason for an attempt's outcome; a job ended by one of
    its `limits` is `killed` with the limit named."""
    if outcome.start_error:
        return Status.ERROR, outcome.start_error
    if outcome.limit_reached:
        return Status.KILLED, outcome.limit_reached
    if limits is not None and limits.cpu is not None and _ended_by_sigxcpu(outcome):
        return Status.KILLED, reached("cpu", limits)
    if outcome.timed_out:
        return Status.TIMED_OUT, None
    if outcome.stopped:
        return Status.INTERRUPTED, None
    if outcome.signal is not None:
        return Status.KILLED, f"killed by signal {outcome.signal} ({_signal_name(outcome.signal)})"
    if outcome.exit_code == 0:
        return Status.SUCCEEDED, None
    if outcome.exit_code == 127:
        return (
            Status.FAILED,
            "exit status 127: the shell could not find the command"
            " (or the interpreter on its #! line)",
        )
    if outcome.exit_code == 126:
        return (
            Status.FAILED,
            "exit status 126: the shell could not execute the command"
            " (permission denied, or not a program)",
        )
    return Status.FAILED, f"exit status {outcome.exit_code}"


def _ended_by_sigxcpu(outcome: ProcessOutcome) -> bool:
    """SIGXCPU ended the job, or the command the shell ran (the shell then exits 128 + 24)."""
    sigxcpu = int(signals.SIGXCPU)
    return outcome.signal == sigxcpu or outcome.exit_code == 128 + sigxcpu


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def join_reasons(*parts: str | None) -> str | None:
    """The reasons given, in order, joined by "; " (None: none)."""
    text = "; ".join(p for p in parts if p)
    return text or None
