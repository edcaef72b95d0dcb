"""The event decision table: which notification a finished run sends (cronctl.notify.rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronctl.model import NotifySettings
from cronctl.notify.rules import before_trigger, decide, failure_streak
from cronctl.records import Run

# previous runs, newest first (STATUS#ATTEMPT) | this run | final | on | after_failures | event sent
TABLE = """
-                              | failed       | final | failure                  | 1 | failure
-                              | failed       | retry | failure                  | 1 | -
failed                         | failed       | retry | failure                  | 1 | -
failed                         | failed       | final | failure                  | 1 | failure
failed,failed,failed           | failed       | final | failure                  | 1 | failure
-                              | timed_out    | final | failure                  | 1 | failure
-                              | killed       | final | failure                  | 1 | failure
-                              | abandoned    | final | failure                  | 1 | failure
-                              | error        | final | failure                  | 1 | failure
-                              | failed       | final | success,recovery         | 1 | -
-                              | succeeded    | final | failure                  | 1 | -
-                              | succeeded    | final | success                  | 1 | success
succeeded                      | succeeded    | final | success,recovery         | 1 | success
failed                         | succeeded    | final | failure,recovery         | 1 | recovery
failed                         | succeeded    | final | success,recovery         | 1 | recovery
failed                         | succeeded    | final | success                  | 1 | success
failed                         | succeeded    | final | failure                  | 1 | -
succeeded,failed               | succeeded    | final | recovery                 | 1 | -
skipped,missed,failed          | succeeded    | final | recovery                 | 1 | recovery
interrupted,failed             | succeeded    | final | recovery                 | 1 | recovery
-                              | failed       | final | failure                  | 3 | -
failed                         | failed       | final | failure                  | 3 | -
failed,failed                  | failed       | final | failure                  | 3 | failure
failed,failed,failed           | failed       | final | failure                  | 3 | -
failed,failed,failed,failed    | failed       | final | failure                  | 3 | -
failed,succeeded,failed,failed | failed       | final | failure                  | 3 | -
failed,failed,succeeded        | failed       | final | failure                  | 3 | failure
failed,failed                  | succeeded    | final | failure,recovery         | 3 | -
failed,failed,failed           | succeeded    | final | failure,recovery         | 3 | recovery
failed,skipped,failed,failed   | succeeded    | final | recovery                 | 3 | recovery
failed#2,failed#1              | failed       | final | failure                  | 2 | failure
failed#1                       | failed#2     | final | failure                  | 2 | -
failed#2,failed#1              | failed#3     | final | failure                  | 2 | -
failed#1,failed#2,failed#1     | failed#2     | final | failure                  | 2 | failure
failed#1                       | succeeded#2  | final | failure,recovery,success | 1 | success
failed#1,failed                | succeeded#2  | final | recovery                 | 1 | recovery
-                              | missed       | final | missed                   | 1 | missed
failed                         | missed       | final | failure,recovery         | 1 | -
-                              | skipped      | final | failure,success,missed   | 1 | -
-                              | interrupted  | final | failure,success          | 1 | -
-                              | running      | final | failure,success          | 1 | -
"""

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_run(run_id: int, spec: str) -> Run:
    status, _, attempt = spec.partition("#")
    return Run(
        run_id, "t", "schedule", int(attempt or 1), T0, T0, T0, 10, status, None, None, None, None
    )


def cases():
    for line in TABLE.strip().splitlines():
        previous, this, final, on, after, expected = (cell.strip() for cell in line.split("|"))
        yield pytest.param(
            previous, this, final, on, int(after), expected, id=" | ".join(line.split())
        )


@pytest.mark.parametrize("previous, this, final, on, after, expected", list(cases()))
def test_decision_table(previous, this, final, on, after, expected):
    specs = [] if previous == "-" else previous.split(",")
    history = [
        make_run(len(specs) - index, spec) for index, spec in enumerate(specs)
    ]  # newest first
    run = make_run(len(specs) + 1, this)
    settings = NotifySettings(on=tuple(on.split(",")), after_failures=after)
    streak = failure_streak(before_trigger([run, *history], run), cap=after)
    event = decide(settings, run.status, final=final == "final", streak_before=streak)
    assert (event or "-") == expected


def test_streak_counts_a_retried_run_once_and_stops_at_a_success():
    runs = [
        make_run(9 - i, s)
        for i, s in enumerate(["failed#3", "failed#2", "failed#1", "failed", "succeeded", "failed"])
    ]
    assert failure_streak(runs) == 2
    assert failure_streak(runs, cap=1) == 1


def test_runs_recorded_after_this_one_are_ignored():
    run = make_run(5, "succeeded")
    later = make_run(6, "failed")
    older = make_run(4, "failed")
    assert [r.id for r in before_trigger([later, run, older], run)] == [4]


# this run | printed | final | on | after_failures | event sent
OUTPUT_TABLE = """
succeeded | printed | final | output                 | 1 | output
succeeded | silent  | final | output                 | 1 | -
succeeded | printed | retry | output                 | 1 | -
failed    | printed | final | output                 | 1 | output
failed    | printed | final | output,failure         | 1 | failure
failed    | silent  | final | output,failure         | 1 | failure
failed    | printed | final | output,failure         | 3 | output
failed    | silent  | final | output,failure         | 3 | -
succeeded | printed | final | output,success         | 1 | success
timed_out | printed | final | output                 | 1 | output
missed    | silent  | final | output                 | 1 | -
skipped   | silent  | final | output                 | 1 | -
succeeded | printed | final | failure                | 1 | -
"""


@pytest.mark.parametrize(
    "line",
    [pytest.param(line, id=" ".join(line.split())) for line in OUTPUT_TABLE.split("\n")[1:-1]],
)
def test_j4_output_event_table(line):
    """`output` is cron's mail: a final run that printed anything; a run whose own event is
    listed sends that one (its message carries the output), never two messages."""
    status, printed, final, on, after, expected = (cell.strip() for cell in line.split("|"))
    settings = NotifySettings(on=tuple(on.split(",")), after_failures=int(after))
    event = decide(
        settings, status, final=final == "final", streak_before=0, printed=printed == "printed"
    )
    assert (event or "-") == expected
