"""Commands about the machine's health: status, prune, metrics, notify-test."""

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from cronctl import timefmt
from cronctl.cells import exit_text
from cronctl.cli.common import AppState, JsonFlag, command, state
from cronctl.cli.complete import complete_task_names_in
from cronctl.cli.fleet_render import render_divergent
from cronctl.columns import Column
from cronctl.errors import ExitCode, TaskFileError, UsageError
from cronctl.model import MAX_KEEP_RUNS
from cronctl.render import Renderer

if TYPE_CHECKING:  # imported by the commands that use it (start-up: see cli/common.py)
    from datetime import datetime

    from cronctl.failures import FailureGroup
    from cronctl.health import Health, ServeHealth
    from cronctl.taskfile import TaskFile

MAX_KEEP_DAYS = 36500

STATUS_HELP = """\
Whether serve is running and the tasks are healthy; exit 1 when unhealthy.

Shows serve (pid, uptime, last heartbeat), the failures of the last day grouped by task (how
many in the last hour and day, the last one's time, status, exit and error), overdue tasks,
tasks with missed runs in the last day and tasks failing repeatedly.

Unhealthy (exit 1) means any of: serve is not running (never started, stopped, its heartbeat
is more than 60s old, or its process on this host is gone); on a history several hosts share,
another host's serve that has not stopped and is late (two heartbeats missing) or declared
dead; a run of an enabled task of the
task file failed (failed, timed_out, killed, abandoned, error) in the last hour (failures of a
disabled task, or of one no longer in the file, are listed apart and not counted); an enabled
task is overdue (a slot more than 1 minute plus its jitter in the past with no run recorded and
none in progress); an enabled task failed 2 or more runs in a row (retries of one run count
once); the task file is invalid (status then says which version of it serve keeps running);
on a history several hosts share, a task the live hosts define differently or that some of
them lack (the keys that differ and the hosts, by digest: never a value). Missed runs and
older failures are shown but do not make the result unhealthy. Failures that `cronctl ack`
acknowledged are listed as such and not counted, until the task fails again. Exit 0
otherwise.
"""


@command("status", help=STATUS_HELP)
def status(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    from cronctl import health

    app = state(ctx)
    tasks = app.tasks_to_report("showing the history only")
    report = health.health(tasks, app.store(), app.clock.now(), health.local_serve_probe)
    app.exit_code = int(ExitCode.OK) if report.healthy else int(ExitCode.FAILURE)
    if json_output:
        app.renderer.json(health.health_json(report))
    else:
        zones = (
            {}
            if isinstance(tasks, health.InvalidTaskFile)
            else {name: task.timezone for name, task in tasks.tasks.items()}
        )
        _render_status(app.renderer, report, zones)
    raise typer.Exit(app.exit_code)


def _serve_line(report: "Health", rich: bool, serve: "ServeHealth | None" = None) -> str:
    serve, now = serve or report.serve, report.now

    def when(moment: "datetime | None") -> str:
        return timefmt.relative(moment, now) if rich else f"at {timefmt.iso_seconds(moment)}"

    if not serve.known:
        return "not running (it has never run with this database)"
    where = f"pid {serve.pid} on {serve.hostname}"
    beat = f"last heartbeat {when(serve.heartbeat_at)}"
    if serve.running and serve.late:
        return f"late: {beat} ({where})"
    if serve.running:
        return f"running ({where}, up {timefmt.span(serve.uptime_seconds or 0)}, {beat})"
    if serve.stopped_at is not None:
        return f"not running (stopped {when(serve.stopped_at)}; was {where})"
    if serve.gone:
        return f"not running: its process is gone, no stop recorded ({beat}; was {where})"
    if serve.declared_dead_at is not None:
        dead = f"declared dead by {serve.declared_dead_by} {when(serve.declared_dead_at)}"
        return f"not running: {dead} ({beat}; was {where})"
    return f"not running: stale heartbeat ({beat}; was {where})"


def _fleet_pairs(report: "Health", rich: bool) -> list[tuple[str, str]]:
    """One line a serve of another host, on a history several hosts share
    (README.md#more-than-one-machine): on one machine, the one serve line it always showed."""
    if len(report.serves) < 2:
        return []
    return [
        (f"  {serve.hostname}", _serve_line(report, rich, serve))
        for serve in report.serves
        if serve.hostname != report.serve.hostname
    ]


FAILURE_COLUMNS = [
    Column("Task", 0, shrink_to=10),
    Column("Last hour", 1),
    Column("Last day", 2),
    Column("Last failure", 3),
    Column("Status", 4),
    Column("Exit", 5),
    Column("Error", 6, shrink_to=12),
]


def _render_status(renderer: Renderer, report: "Health", zones: dict[str, str]) -> None:
    verdict = (
        Text("healthy", style="green") if report.healthy else Text("UNHEALTHY", style="bold red")
    )
    if renderer.rich:
        renderer.out.print(Text("health  ", style="bold") + verdict)
        renderer.pairs([("serve ", _serve_line(report, True)), *_fleet_pairs(report, True)])
    else:
        renderer.pairs(
            [
                ("health", verdict.plain),
                ("serve", _serve_line(report, False)),
                *_fleet_pairs(report, False),
            ]
        )
    for problem in report.problems:
        renderer.line(f"  - {problem}")
    if report.invalid_task_file is not None:
        renderer.line("  (overdue and failing tasks are not judged while the task file is invalid)")
    counted = [g for g in report.failure_groups if g.counted]
    ignored = [g for g in report.failure_groups if not g.counted]
    renderer.line("")
    _render_failures(renderer, report, zones, "failures in the last day", counted)
    seen = [g for g in ignored if g.acknowledged is not None]
    others = [g for g in ignored if g.acknowledged is None]
    if others:
        renderer.line("")
        title = "failures of tasks disabled or not in the task file (not counted)"
        _render_failures(renderer, report, zones, title, others)
    if seen:
        renderer.line("")
        _render_failures(renderer, report, zones, "acknowledged failures (not counted)", seen)
    _render_late(renderer, report, zones)
    render_divergent(renderer, report.divergent)
    _render_acknowledged(renderer, report, zones)


def _render_acknowledged(renderer: Renderer, report: "Health", zones: dict[str, str]) -> None:
    """One line a task whose failures an acknowledgement covers: when, who; its note on the
    next line."""
    from cronctl.failures import acknowledged_because
    from cronctl.records import safe_text

    found = [(g.task, g.acknowledged) for g in report.failure_groups]
    found += [(f.task, f.acknowledged) for f in report.failing]
    acks = {task: ack for task, ack in found if ack is not None}
    if not acks:
        return
    renderer.line("")
    renderer.line("acknowledged (not counted until the task's next failure):")
    for task, ack in sorted(acks.items()):
        when = renderer.moment(ack.at, zones.get(task, "UTC"), report.now, True)
        renderer.line(f"  {task}: {acknowledged_because(ack, when)}")
        if ack.note:
            renderer.line(f"    {safe_text(ack.note.encode())}")


def _render_failures(
    renderer: Renderer,
    report: "Health",
    zones: dict[str, str],
    title: str,
    groups: "list[FailureGroup]",
) -> None:
    """One row a task: its failures in the last hour and day, and the newest one."""
    if not groups:
        renderer.line(f"{title}: none")
        return
    renderer.line(f"{title}:")
    columns = FAILURE_COLUMNS
    if any(not g.counted for g in groups):
        columns = [*columns[:1], Column("Why", 1), *columns[1:]]
    rows: list[list[str | Text]] = []
    for group in groups:
        run = group.last.run
        zone = zones.get(run.task, "UTC")
        cells: list[str | Text] = [
            group.task,
            str(group.last_hour),
            str(group.last_day),
            renderer.moment(run.started_at, zone, report.now, True),
            renderer.status_text(run.status),
            exit_text(run),
            group.last.stderr_first_line or run.reason or "",
        ]
        if not group.counted:
            why = group.ignored_because or ""
            if group.acknowledged is not None:  # said in full below the tables
                at = renderer.moment(group.acknowledged.at, zone, report.now, True)
                why = f"acknowledged {at}"
            cells.insert(1, why)
        rows.append(cells)
    renderer.table(columns, rows)


def _render_late(renderer: Renderer, report: "Health", zones: dict[str, str]) -> None:
    """Overdue tasks, tasks failing repeatedly, missed runs."""
    now = report.now
    if report.overdue:
        renderer.line("")
        renderer.line("overdue:")
        renderer.table(
            ["Task", "Slot", "Late"],
            [
                [
                    o.task,
                    renderer.moment(o.slot, o.timezone, now, True),
                    timefmt.span(o.late_seconds),
                ]
                for o in report.overdue
            ],
        )
    failing = [f for f in report.failing if f.acknowledged is None]
    if failing:
        renderer.line("")
        renderer.line("failing repeatedly:")
        renderer.table(
            ["Task", "Failed in a row", "Last run", "Status"],
            [
                [
                    f.task,
                    str(f.consecutive),
                    renderer.moment(f.last_run.started_at, zones.get(f.task, "UTC"), now, True),
                    renderer.status_text(f.last_run.status),
                ]
                for f in failing
            ],
        )
    if report.missed:
        renderer.line("")
        renderer.line("missed runs in the last day:")
        renderer.table(
            ["Task", "Missed", "Latest slot"],
            [
                [
                    m.task,
                    str(m.count),
                    renderer.moment(m.latest_slot, zones.get(m.task, "UTC"), now, True),
                ]
                for m in report.missed
            ],
        )


# An invalid task file leaves each task's keep_runs unknown: `prune` then refuses (the
# loader's error), unless --keep-runs says the limit for every task (README.md, "Health").
_WITHOUT_THE_FILE = "pruning with --keep-runs for every task"


def _tasks_for_prune(app: AppState) -> "TaskFile":
    try:
        return app.tasks()
    except TaskFileError as exc:
        raise UsageError(
            exc.message,
            hint="each task's keep_runs is in the task file: fix it, or give --keep-runs N"
            " (serve keeps pruning with the last valid tasks)",
        ) from None


@command("prune")
def prune(
    ctx: typer.Context,
    keep_days: Annotated[
        int | None,
        typer.Option(
            "--keep-days",
            min=0,
            max=MAX_KEEP_DAYS,
            help="Delete runs older than this many days [default: 90]; 0: every finished run.",
        ),
    ] = None,
    keep_runs: Annotated[
        int | None,
        typer.Option(
            "--keep-runs",
            min=1,
            max=MAX_KEEP_RUNS,
            help="Keep this many runs per task [default: each task's keep_runs, else 1000].",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be deleted.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Delete old history: runs older than --keep-days or beyond each task's newest --keep-runs.

    Runs in progress are never deleted. serve applies the same retention by itself.
    """
    from cronctl import pruning

    app = state(ctx)
    loaded = app.tasks_beside_history(_WITHOUT_THE_FILE) if keep_runs else _tasks_for_prune(app)
    report = pruning.prune(
        None if isinstance(loaded, TaskFileError) else loaded,
        app.store(),
        app.clock.now(),
        keep_days=keep_days,
        keep_runs=keep_runs,
        dry_run=dry_run,
    )
    if json_output:
        app.renderer.json(pruning.prune_json(report))
        return
    verb = "would remove" if dry_run else "removed"
    if report.removed:
        app.renderer.table(
            ["Task", verb.capitalize()], [[task, str(n)] for task, n in report.removed.items()]
        )
    # --keep-days 0 keeps no day, as `journalctl --vacuum-time=1s` keeps no journal: every
    # finished run goes (runs in progress stay). A person who typed it gets told just that.
    older = f"older than {report.keep_days} days" if report.keep_days else "every finished run"
    app.renderer.note(
        f"{'Would remove' if dry_run else 'Removed'} {timefmt.counted(report.total, 'run')} "
        f"({older}, or beyond the newest "
        f"{keep_runs if keep_runs is not None else 'keep_runs'} of a task)."
    )


@command("metrics")
def metrics(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file, atomically (for node_exporter's textfile collector).",
        ),
    ] = None,
) -> None:
    """Print metrics in the Prometheus text format (one series per task, and serve_up).

    For node_exporter's textfile collector, e.g. from a cronctl task or a timer:
    cronctl metrics -o /var/lib/node_exporter/textfile_collector/cronctl.prom
    """
    from cronctl.health import local_serve_probe
    from cronctl.metrics import metrics as exposition

    app = state(ctx)
    loaded = app.tasks_beside_history("exporting the history only")
    tasks = None if isinstance(loaded, TaskFileError) else loaded
    text = exposition(tasks, app.store(), app.clock.now(), local_serve_probe)
    if output is None:
        app.renderer.write(text)
        return
    _write_atomically(output, text)


def _write_atomically(path: Path, text: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)  # the collector runs as another user
        os.replace(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


@command("notify-test")
def notify_test(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The task whose notifications to try.",
            metavar="NAME",
            autocompletion=complete_task_names_in,
        ),
    ],
    json_output: JsonFlag = False,
) -> None:
    """Send a sample failure of a task through each of its notification channels, now.

    Reports each channel's result; exit 1 if any failed. healthchecks gets a /log ping, which
    does not change the check's state. Nothing is recorded in the history.
    """
    from cronctl.notify.notifier import Notifier

    app = state(ctx)
    tasks = app.tasks()
    task = tasks.get(name)
    if task.notify is None or not task.notify.has_channels:
        raise UsageError(
            f"task '{name}' has no notification channel",
            hint=f"add command, webhook, healthchecks or email to [tasks.{name}.notify]",
        )
    notifier = Notifier(
        None, smtp=tasks.defaults.smtp, clock=app.clock, synchronous=True, log=app.renderer.note
    )
    results = notifier.test(task)
    ok = all(r.ok for r in results)
    app.exit_code = int(ExitCode.OK) if ok else int(ExitCode.FAILURE)
    if json_output:
        channels = [{"channel": r.channel, "ok": r.ok, "detail": r.detail} for r in results]
        app.renderer.json({"task": name, "ok": ok, "channels": channels})
    else:
        app.renderer.table(
            ["Channel", "Result", "Detail"],
            [
                [
                    r.channel,
                    Text("ok", style="green") if r.ok else Text("failed", style="bold red"),
                    r.detail,
                ]
                for r in results
            ],
        )
    raise typer.Exit(app.exit_code)
