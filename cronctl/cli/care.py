"""Looking after the tasks: `ack` (a task's failures are seen)."""

import os
from typing import TYPE_CHECKING, Annotated

import typer

from cronctl import timefmt
from cronctl.cli.common import JsonFlag, command, state
from cronctl.cli.complete import complete_task_names_in

if TYPE_CHECKING:  # imported by the command (start-up: see cli/common.py)
    from cronctl.acks import AckOutcome

ACK_HELP = """\
Acknowledge the tasks' current failures: status is healthy again for them until their next
failure.

Covers the failed runs of the last day and a task failing repeatedly (not an overdue task: it
clears when the task runs). The history is unchanged: history and metrics still count every
failure. A task with no current failure is said so, and nothing is stored (exit 0). Unknown
names exit 2. Who acknowledged ($USER) and the --note show in status and status --json.
"""


@command("ack", help=ACK_HELP)
def ack(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Tasks whose failures to acknowledge.",
            metavar="[NAME]...",
            show_default=False,
            autocompletion=complete_task_names_in,
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every task with a current failure.")
    ] = False,
    note: Annotated[
        str | None, typer.Option("--note", help="Why, for whoever reads status next.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    from cronctl import acks

    app = state(ctx)
    tasks = app.tasks_to_report("acknowledging the tasks of the history")
    who = os.environ.get("USER") or os.environ.get("LOGNAME") or None
    outcomes = acks.acknowledge(
        tasks, app.store(), app.clock.now(), names or [], every=every, by=who, note=note
    )
    if json_output:
        app.renderer.json([acks.outcome_json(o) for o in outcomes])
        return
    if not outcomes:
        app.renderer.note("No task has a failure to acknowledge.")
    for outcome in outcomes:
        app.renderer.note(_said(outcome))


def _said(outcome: "AckOutcome") -> str:
    if outcome.ack is None:
        standing = outcome.previous
        since = f" (acknowledged at {timefmt.iso_seconds(standing.at)})" if standing else ""
        return f"'{outcome.task}' has no failure to acknowledge{since}."
    what = []
    if outcome.failures_last_day:
        what.append(f"{timefmt.counted(outcome.failures_last_day, 'failure')} in the last day")
    if outcome.failing_streak:
        what.append(f"failing {outcome.failing_streak} runs in a row")
    return (
        f"Acknowledged '{outcome.task}': {' and '.join(what)};"
        " status counts its failures again from its next one."
    )
