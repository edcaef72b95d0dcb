"""The `serve` command: the scheduler in the foreground."""

import logging
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cronctl.cli.common import command, state
from cronctl.errors import UsageError
from cronctl.records import DEFAULT_LEASE, MAX_LEASE, MIN_LEASE
from cronctl.serve import GRACE, KILL_GRACE

if TYPE_CHECKING:
    from rich.console import Console


def _terminal_handler(console: "Console") -> logging.Handler | None:
    """Rich log lines on a terminal (never in the journal or a file)."""
    if not sys.stderr.isatty():
        return None
    from cronctl.serve.log import connected_to_journal

    if connected_to_journal(sys.stderr):
        return None
    from rich.highlighter import NullHighlighter
    from rich.logging import RichHandler

    return RichHandler(
        console=console,  # the CLI's stderr console: honours --no-color and NO_COLOR
        show_path=False,
        markup=False,
        highlighter=NullHighlighter(),
        rich_tracebacks=False,
        log_time_format="[%X]",
    )


@command("serve")
def serve(
    ctx: typer.Context,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            help="On SIGTERM/SIGINT, how long running jobs may finish before they are stopped.",
        ),
    ] = GRACE,
    kill_grace: Annotated[
        float,
        typer.Option(
            "--kill-grace",
            metavar="SECONDS",
            help="After SIGTERM to a job's process group, how long until SIGKILL.",
        ),
    ] = KILL_GRACE,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            metavar="SECONDS",
            help="With a history several hosts share: how long the other serves wait for"
            " this one's heartbeat before they declare it dead and abandon its runs.",
        ),
    ] = DEFAULT_LEASE,
) -> None:
    """Run the scheduler in the foreground (for a terminal, a script or a systemd user service)."""
    from cronctl.serve.daemon import serve as run_serve

    if grace < 0 or kill_grace < 0:
        raise UsageError("--grace and --kill-grace must not be negative")
    if not MIN_LEASE <= lease <= MAX_LEASE:  # NaN included
        raise UsageError(
            f"--lease must be from {MIN_LEASE:g} to {MAX_LEASE:g} seconds, not {lease:g}",
            hint="the default, 30, suits most fleets",
        )
    app = state(ctx)
    code = run_serve(
        app.locations,
        grace=grace,
        kill_grace=kill_grace,
        lease=lease,
        clock=app.clock,
        log_handler=_terminal_handler(app.renderer.err),
        log_level=logging.DEBUG if app.debug else logging.INFO,
    )
    raise typer.Exit(code=code)
