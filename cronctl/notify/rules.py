"""Which notification a finished run triggers (README.md#when-a-notification-is-sent), as pure
functions.

The rules, in one place (the README documents them):

* Only a *final* run notifies: a failed attempt that a retry follows is silent; the last attempt
  of a trigger decides.
* A *failure streak* counts failed runs, a run being one trigger with its retries (the attempts
  of one trigger count once). Statuses that did not run to a verdict (`skipped`, `missed`,
  `interrupted`, `running`) neither count nor break a streak; a success ends it.
* `failure`: a final run with a failure status (failed, timed_out, killed, abandoned, error).
  With `after_failures = 1` (the default) every such run notifies. With `after_failures = N`
  (N >= 2) the notification is sent once, when the streak reaches N; later failures of the same
  streak are silent until a success resets it.
* `recovery`: the first success after a streak long enough to have notified (at least
  `after_failures` failed runs). With the default that is any success after a failure.
  The rule holds whether or not `failure` is in `on`: recovery means "the problem that
  would have been reported is over".
* `success`: every successful final run. A recovering run sends one notification:
  `recovery` when `on` has it, else `success` when `on` has that.
* `missed`: a run recorded `missed` (a slot that passed while serve was not running).
* `output`: a final run whose job printed anything on stdout or stderr, as cron mails any
  output. A run sends one notification: when `on` lists the run's own event (failure,
  recovery, success) that one, which carries the output too; `output` only when it does not.

An event is sent only when it is listed in `on`.
"""

from __future__ import annotations

from collections.abc import Iterable

from cronctl.model import NotifySettings
from cronctl.records import FAILURE_STATUSES, Run, Status

FAILURE = "failure"
RECOVERY = "recovery"
SUCCESS = "success"
MISSED = "missed"
OUTPUT = "output"
TEST = "test"  # `cronctl notify-test`

# Statuses that neither count towards a failure streak nor end one.
NEUTRAL_STATUSES = frozenset({Status.SKIPPED, Status.MISSED, Status.INTERRUPTED, Status.RUNNING})
# Statuses read from the history to measure a streak (anything else is neutral).
VERDICT_STATUSES = (Status.SUCCEEDED, *FAILURE_STATUSES)


def failure_streak(previous: Iterable[Run], cap: int | None = None) -> int:
    """Return how many failed runs (triggers, retries counted once) precede, newest first.

    `previous` holds the runs before the current trigger, newest first. Counting stops at the
    first success, or at `cap`.
    """
    streak = 0
    for item in previous:
        if item.status in NEUTRAL_STATUSES:
            continue
        if item.status not in FAILURE_STATUSES:
            break
        if item.attempt <= 1:  # a trigger's first attempt: one run of the streak
            streak += 1
            if cap is not None and streak >= cap:
                break
    return streak


def decide(
    settings: NotifySettings,
    status: str,
    *,
    final: bool,
    streak_before: int,
    printed: bool = False,
) -> str | None:
    """Return the event a run with `status` sends under `settings`, or None.

    `streak_before` is the failure streak of the runs before this run's trigger (see
    `failure_streak`). A recovering run sends `recovery` when that is asked for, else
    `success` when that is. `printed`: the job wrote at least one byte on stdout or stderr;
    it sends `output` when `on` asks for that and for none of the run's own events.
    """
    event = event_of(
        status, final=final, streak_before=streak_before, after_failures=settings.after_failures
    )
    if event == RECOVERY and RECOVERY not in settings.on:
        event = SUCCESS
    if event is not None and event in settings.on:
        return event
    if printed and final and OUTPUT in settings.on and status != Status.MISSED:
        return OUTPUT
    return None


def printed_anything(run: Run) -> bool:
    """Whether the job wrote anything on stdout or stderr (bytes dropped from the capture count)."""
    return any(stream is not None and stream.total_bytes > 0 for stream in (run.stdout, run.stderr))


def event_of(
    status: str, *, final: bool, streak_before: int, after_failures: int = 1
) -> str | None:
    """Return the event of a run regardless of `on` (the rules in this module's docstring)."""
    threshold = max(1, after_failures)
    if status == Status.MISSED:
        return MISSED
    if not final:
        return None
    if status in FAILURE_STATUSES:
        streak = streak_before + 1
        if threshold == 1 or streak == threshold:
            return FAILURE
        return None
    if status == Status.SUCCEEDED:
        return RECOVERY if streak_before >= threshold else SUCCESS
    return None


def history_needed(settings: NotifySettings, retries: int) -> int:
    """Return how many verdict rows before a run are enough to decide its event."""
    return (max(1, settings.after_failures) + 1) * (retries + 1) + 1


def before_trigger(history: Iterable[Run], run: Run) -> list[Run]:
    """Return the runs of `history` (newest first) older than `run`'s trigger.

    Drops `run` itself, anything recorded after it, and the earlier attempts of its own
    trigger (attempts 1 .. N-1 of a retried run).
    """
    rows = [r for r in history if r.id < run.id]
    if run.attempt > 1:
        for index, row in enumerate(rows):
            if row.attempt <= 1:
                return rows[index + 1 :]
        return []
    return rows
