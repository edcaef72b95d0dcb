"""Commands that watch the system: upcoming, top (README.md#watching-live)."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from cronctl import timefmt
from cronctl.cli.common import AppState, JsonFlag, command, note_ignored_tz, state
from cronctl.cli.complete import complete_task_names_in
from cronctl.columns import Column
from cronctl.errors import UsageError
from cronctl.render import Renderer

if TYPE_CHECKING:  # imported by the commands that use them (start-up: see cli/__init__.py)
    from cronctl.history import ReadOnlyReader
    from cronctl.model import Task
    from cronctl.taskfile import TaskFile
    from cronctl.upcoming import Fire, Upcoming

MAX_COUNT = 10_000

UPCOMING_HELP = """\
The next fire times of the enabled tasks (or of the tasks named), merged in time order.

Each row: when (in the task's zone, which is named when it is not the machine's; with a
jitter, the window serve starts it in, e.g. 14:00-14:05), in how long, the task, its schedule
in words, its last run and how it ended. Times come from the scheduler's own rules: each
task's zone, daylight saving, @every slots.

Left out: disabled tasks and @reboot tasks (they run when serve starts). A task that also runs
`after` another is listed at its own schedule's times only.

At most --count rows (default 10); with --within, only the fire times in that time from now
(alone: all of them, up to 10000); with both, whichever ends first. Piped: one line a row,
tab-separated, ISO 8601 times first.
"""


def _within(text: str | None) -> timedelta | None:
    from cronctl.durations import parse_duration

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except UsageError as exc:
        raise UsageError(
            f"--within: {exc.message}", hint="e.g. --within 1d or --within 2h30m"
        ) from None
    if seconds <= 0:
        raise UsageError("--within must be longer than 0s", hint="e.g. --within 1d")
    return timedelta(seconds=seconds)


def _chosen_tasks(app: AppState, tasks: "TaskFile", names: list[str]) -> "list[Task]":
    """The tasks named (each must exist), else all; a named task that has nothing upcoming
    gets one note line saying why."""
    from cronctl.upcoming import is_upcoming

    if not names:
        return list(tasks.tasks.values())
    chosen = [tasks.get(name) for name in dict.fromkeys(names)]
    for task in chosen:
        if not is_upcoming(task):
            why = "is disabled" if not task.enabled else "runs only when serve starts (@reboot)"
            app.renderer.note(f"note: task '{task.name}' {why}: it has no upcoming runs")
    return chosen


@command("upcoming", help=UPCOMING_HELP)
def upcoming_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Only these tasks.", metavar="[NAME]...", autocompletion=complete_task_names_in
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            min=1,
            max=MAX_COUNT,
            metavar="N",
            help="At most this many rows (default 10).",
        ),
    ] = None,
    within: Annotated[
        str | None,
        typer.Option(
            "--within",
            metavar="DURATION",
            help="Only fire times within this from now (e.g. 1d, 2h30m).",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    from cronctl.store.opening import open_read_only_store
    from cronctl.upcoming import DEFAULT_COUNT, fire_json, upcoming

    app = state(ctx)
    horizon = _within(within)
    now = app.clock.now()
    tasks = app.tasks()
    chosen = _chosen_tasks(app, tasks, names or [])
    note_ignored_tz(app, tasks, [t.name for t in chosen])
    if count is None and horizon is None:
        count = DEFAULT_COUNT
    with open_read_only_store(app.locations.db) as history:
        found = upcoming(chosen, now, count=count, within=horizon, last_run=history.last_run)
    if json_output:
        app.renderer.json([fire_json(fire) for fire in found.fires])
    else:
        _render_upcoming(app.renderer, found, now)
    if found.cut:
        app.renderer.note(f"note: only the first {len(found.fires)} are shown; narrow --within")


UPCOMING_COLUMNS = [
    Column("When", 1),
    Column("In", 2),
    Column("Task", 0, shrink_to=30),  # a name is cut only when other columns went
    Column("Schedule", 5, shrink_to=10),
    Column("Last run", 4),
    Column("Result", 3),
]
PLAIN_HEADERS = ["At", "Window end", "Task", "Zone", "Schedule", "Means", "Last run", "Status"]


def _render_upcoming(renderer: Renderer, found: "Upcoming", now: datetime) -> None:
    fires = found.fires
    if not renderer.rich:
        renderer.table(PLAIN_HEADERS, [_plain_row(fire) for fire in fires])
        return
    from cronctl.cli.top_render import fire_when
    from cronctl.schedule.zones import machine_timezone

    if not fires:
        renderer.note("No upcoming runs (disabled and @reboot tasks are left out).")
        return
    machine = machine_timezone()
    dash = "–" if _encoding(renderer).lower().startswith("utf") else "-"
    rows: list[list[str | Text]] = []
    for fire in fires:
        last = fire.last
        rows.append(
            [
                fire_when(fire, now, dash, machine),
                timefmt.relative(fire.at, now),
                fire.task.name,
                fire.summary,
                timefmt.relative(last.started_at, now) if last else "-",
                renderer.status_text(last.status) if last else "-",
            ]
        )
    renderer.table(UPCOMING_COLUMNS, rows)


def _plain_row(fire: "Fire") -> list[str | Text]:
    zone, last = fire.timezone, fire.last
    return [
        timefmt.iso_seconds(fire.at, zone),
        timefmt.iso_seconds(fire.window_end, zone),
        fire.task.name,
        zone,
        fire.task.schedule,
        fire.summary,
        timefmt.iso_seconds(last.started_at if last else None, zone),
        last.status if last else "-",
    ]


TOP_HELP = """\
A live view of the whole system, refreshed each second until q or Ctrl-C.

Shows serve (pid, uptime, heartbeat age; "not running" when it is not), the jobs running now
(task, elapsed time, the last line of output), the failures of the last day by task, the next
runs, and each task's recent outcomes (a mark a run: succeeded, failed, running, skipped; ASCII
marks when the terminal is not UTF-8) and durations (a sparkline). When the terminal is too
small, the sections shrink in this order of priority: serve, running, failures, next runs,
recent outcomes; a line is cut, never wrapped.

--once prints one frame and exits, as does top when stdout is not a terminal (then as plain
text: a header line per section, tab-separated rows, ISO 8601 times). top only reads the task
file and the database; it never creates the database.
"""


def _encoding(renderer: Renderer) -> str:
    return str(getattr(renderer.stdout, "encoding", None) or "ascii")


class _History:
    """The history read-only, opened again once a database that did not exist appears."""

    def __init__(self, app: AppState) -> None:
        self.path = app.locations.db
        self.store = self._open()

    def _open(self) -> "ReadOnlyReader":
        from cronctl.store.opening import open_read_only_store

        return open_read_only_store(self.path)

    def current(self) -> "ReadOnlyReader":
        if self.store.appeared():
            self.store.close()
            self.store = self._open()
        return self.store


@command("top", help=TOP_HELP)
def top_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    import functools
    import sys

    from cronctl import spool, top
    from cronctl.cli import top_render
    from cronctl.health import local_serve_probe
    from cronctl.schedule.zones import machine_timezone

    app = state(ctx)
    source = top.TaskFileSource(app.locations.tasks_file)
    history = _History(app)
    probe = local_serve_probe
    # The last line a running job printed, from its spool (README "Watching a run live").
    state_dir = app.locations.state_dir
    last_line = functools.partial(spool.last_line, state_dir)
    builder = top.FrameBuilder(last_line, probe)
    machine = machine_timezone()
    renderer = app.renderer
    encoding = _encoding(renderer)
    try:
        if not renderer.rich:
            frame = top.build_frame(
                history.current(), source.current(), app.clock.now(), last_line, probe
            )
            renderer.write(top_render.plain_text(frame, encoding))
            return

        def draw(width: int, height: int) -> Text:
            frame = builder.frame(history.current(), source.current(), app.clock.now())
            lines = top_render.terminal_lines(frame, width, height, encoding, machine)
            return Text("\n").join(lines)

        if once:
            size = renderer.out.size
            renderer.out.print(draw(size.width, size.height), soft_wrap=True)
            return
        from cronctl.cli.top_live import run_live

        run_live(renderer.out, draw, app.clock, sys.stdin)
    finally:
        history.store.close()
