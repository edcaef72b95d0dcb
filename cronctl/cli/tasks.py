"""Commands that read and change the task file: add, remove, enable, disable, edit, list, show,
check."""

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cronctl import overview, taskfile, timefmt
from cronctl.cli.common import (
    AppState,
    JsonFlag,
    command,
    note_ignored_tz,
    note_tz_against,
    state,
)
from cronctl.cli.complete import complete_task_names_in
from cronctl.errors import ExitCode, TaskFileError, UsageError
from cronctl.model import TASK_KEY
from cronctl.model.checks import task_warnings
from cronctl.model.limits import LIMIT_HELP
from cronctl.model.notify_keys import NOTIFY_KEY
from cronctl.shapes import run_json, task_json

if TYPE_CHECKING:  # imported by `check` when the history is shared
    from cronctl.cli import fleet_render

TaskName = Annotated[
    str,
    typer.Argument(help="The task's name.", metavar="NAME", autocompletion=complete_task_names_in),
]
TaskNames = Annotated[
    list[str],
    typer.Argument(help="Task names.", metavar="NAME...", autocompletion=complete_task_names_in),
]


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--env {pair!r} is not KEY=VALUE")
        if key in result:
            raise UsageError(f"--env {key} is given twice", hint="give each variable once")
        result[key] = value
    return result


# An explicit parameter a key (Typer reads them for --help and completion), each with the help
# of its key in the table of task keys (cronctl.model.keys); tests/test_task_keys.py fails when a
# key has no option here.
@command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new task's name.", metavar="NAME")],
    schedule: Annotated[str, typer.Argument(help=TASK_KEY["schedule"].help)],
    task_command: Annotated[str, typer.Argument(metavar="COMMAND", help=TASK_KEY["command"].help)],
    description: Annotated[str | None, typer.Option(help=TASK_KEY["description"].help)] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help=TASK_KEY["enabled"].help)] = False,
    timezone: Annotated[
        str | None, typer.Option("--timezone", "--tz", help=TASK_KEY["timezone"].help)
    ] = None,
    timeout: Annotated[str | None, typer.Option(help=TASK_KEY["timeout"].help)] = None,
    retries: Annotated[int | None, typer.Option(help=TASK_KEY["retries"].help)] = None,
    retry_delay: Annotated[str | None, typer.Option(help=TASK_KEY["retry_delay"].help)] = None,
    overlap: Annotated[str | None, typer.Option(help=TASK_KEY["overlap"].help)] = None,
    catch_up: Annotated[str | None, typer.Option(help=TASK_KEY["catch_up"].help)] = None,
    jitter: Annotated[str | None, typer.Option(help=TASK_KEY["jitter"].help)] = None,
    working_dir: Annotated[str | None, typer.Option(help=TASK_KEY["working_dir"].help)] = None,
    shell: Annotated[str | None, typer.Option(help=TASK_KEY["shell"].help)] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help=TASK_KEY["env"].help)] = None,
    env_file: Annotated[
        list[str] | None, typer.Option("--env-file", help=TASK_KEY["env_file"].help)
    ] = None,
    when: Annotated[str | None, typer.Option(help=TASK_KEY["when"].help)] = None,
    after: Annotated[list[str] | None, typer.Option("--after", help=TASK_KEY["after"].help)] = None,
    keep_runs: Annotated[int | None, typer.Option(help=TASK_KEY["keep_runs"].help)] = None,
    lock: Annotated[list[str] | None, typer.Option("--lock", help=TASK_KEY["lock"].help)] = None,
    nice: Annotated[int | None, typer.Option(help=TASK_KEY["nice"].help)] = None,
    limit_memory: Annotated[str | None, typer.Option(help=LIMIT_HELP["memory"])] = None,
    limit_cpu: Annotated[str | None, typer.Option(help=LIMIT_HELP["cpu"])] = None,
    limit_open_files: Annotated[int | None, typer.Option(help=LIMIT_HELP["open_files"])] = None,
    limit_processes: Annotated[int | None, typer.Option(help=LIMIT_HELP["processes"])] = None,
    notify_on: Annotated[
        list[str] | None, typer.Option("--notify-on", help=NOTIFY_KEY["on"].help)
    ] = None,
    notify_after_failures: Annotated[
        int | None, typer.Option(help=NOTIFY_KEY["after_failures"].help)
    ] = None,
    notify_command: Annotated[str | None, typer.Option(help=NOTIFY_KEY["command"].help)] = None,
    notify_webhook: Annotated[str | None, typer.Option(help=NOTIFY_KEY["webhook"].help)] = None,
    notify_format: Annotated[str | None, typer.Option(help=NOTIFY_KEY["format"].help)] = None,
    notify_webhook_secret_env: Annotated[
        str | None, typer.Option(help=NOTIFY_KEY["webhook_secret_env"].help)
    ] = None,
    notify_healthchecks: Annotated[
        str | None, typer.Option(help=NOTIFY_KEY["healthchecks"].help)
    ] = None,
    notify_email: Annotated[
        list[str] | None, typer.Option("--notify-email", help=NOTIFY_KEY["email"].help)
    ] = None,
    notify_timeout: Annotated[str | None, typer.Option(help=NOTIFY_KEY["timeout"].help)] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a task of the same name.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Add a task and show its next 3 fire times."""
    app = state(ctx)
    table: dict[str, Any] = {"schedule": schedule, "command": task_command}
    options = {
        "description": description,
        "timezone": timezone,
        "timeout": timeout,
        "retries": retries,
        "retry_delay": retry_delay,
        "overlap": overlap,
        "catch_up": catch_up,
        "jitter": jitter,
        "working_dir": working_dir,
        "shell": shell,
        "when": when,
        "keep_runs": keep_runs,
        "nice": nice,
    }
    table.update({k: v for k, v in options.items() if v is not None})
    if disabled:
        table["enabled"] = False
    if env:
        table["env"] = _env_pairs(env)
    if env_file:
        table["env_file"] = env_file[0] if len(env_file) == 1 else list(env_file)
    if lock:
        table["lock"] = lock[0] if len(lock) == 1 else list(lock)
    if after:
        table["after"] = list(after)
    limit_options = {
        "memory": limit_memory,
        "cpu": limit_cpu,
        "open_files": limit_open_files,
        "processes": limit_processes,
    }
    limits = {k: v for k, v in limit_options.items() if v is not None}
    if limits:
        table["limits"] = limits
    notify_options = {
        "on": notify_on,
        "after_failures": notify_after_failures,
        "command": notify_command,
        "webhook": notify_webhook,
        "format": notify_format,
        "webhook_secret_env": notify_webhook_secret_env,
        "healthchecks": notify_healthchecks,
        "email": notify_email,
        "timeout": notify_timeout,
    }
    notify = {k: v for k, v in notify_options.items() if v is not None and v != []}
    if notify:
        table["notify"] = notify
    task, replaced = taskfile.add_task(
        app.locations.tasks_file, name, table, replace=replace, warn=app.renderer.warning
    )
    now = app.clock.now()
    if "timezone" not in table:
        _note_ignored_tz_of(app, task.timezone)
    # What `check` would warn about this task; the task is written all the same.
    smtp = app.tasks().defaults.smtp if task.notify and task.notify.email else None
    for warning in task_warnings(task, now, os.environ, smtp):
        app.renderer.warning(warning)
    upcoming = task.parsed_schedule().upcoming(now, 3)
    if json_output:
        app.renderer.json(
            {
                **task_json(task, upcoming[0] if upcoming else None),
                "next": [m.isoformat() for m in upcoming],
            }
        )
    else:
        app.renderer.task_added(task, upcoming, replaced, now)


def _note_ignored_tz_of(app: AppState, zone: str) -> None:
    """The TZ note for a task added without --tz, from the zone it was given (not by reading
    the task file again: that costs a parse of every task, 0.3 s for 10,000)."""
    from cronctl.schedule.zones import DEFAULTS_SOURCE, DefaultZone, default_zone

    system = default_zone(None)
    used = system if zone == system.zone else DefaultZone(zone, DEFAULTS_SOURCE)
    note_tz_against(app, used)


@command("remove")
def remove(
    ctx: typer.Context,
    names: TaskNames,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the tasks' history.")] = False,
) -> None:
    """Remove tasks (their history is kept unless --purge)."""
    app = state(ctx)
    taskfile.remove_tasks(app.locations.tasks_file, names)
    for name in names:
        dropped = app.store().delete_task_runs(name) if purge else 0
        app.renderer.note(
            f"Removed task '{name}'"
            + (f" and {timefmt.counted(dropped, 'run')} of history." if purge else ".")
        )


@command("rename")
def rename(
    ctx: typer.Context,
    old: Annotated[
        str,
        typer.Argument(
            help="The task's name now.", metavar="OLD", autocompletion=complete_task_names_in
        ),
    ],
    new: Annotated[str, typer.Argument(help="Its new name.", metavar="NEW")],
) -> None:
    """Rename a task in the task file (comments kept, `after` lists updated) and in its
    history, in one step: both happen or neither does. A running serve carries the task on
    under its new name. Refuses a NEW that is a task, or has history of its own (exit 2)."""
    from cronctl.renaming import rename_task

    app = state(ctx)
    done = rename_task(app.locations.tasks_file, app.store(), old, new, app.clock.now())
    also = f"; `after` of {', '.join(done.referrers)} updated" if done.referrers else ""
    app.renderer.note(
        f"Renamed '{old}' to '{new}': the task file and {done.runs:,}"
        f" run{'' if done.runs == 1 else 's'} of history{also}."
    )


@command("enable")
def enable(ctx: typer.Context, names: TaskNames) -> None:
    """Enable tasks."""
    _set_enabled(ctx, names, True)


@command("disable")
def disable(ctx: typer.Context, names: TaskNames) -> None:
    """Disable tasks (serve stops starting them; history is kept)."""
    _set_enabled(ctx, names, False)


def _set_enabled(ctx: typer.Context, names: list[str], enabled: bool) -> None:
    app = state(ctx)
    changed = taskfile.set_enabled(app.locations.tasks_file, names, enabled)
    word = "enabled" if enabled else "disabled"
    for name in names:
        app.renderer.note(
            f"Task '{name}' {word}." if name in changed else f"Task '{name}' was already {word}."
        )


@command("edit")
def edit(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Edit only this task.", metavar="[NAME]", autocompletion=complete_task_names_in
        ),
    ] = None,
) -> None:
    """Edit the task file (or one task) in $VISUAL or $EDITOR; invalid edits are never saved,
    and an edit not saved is kept in a file whose path is printed."""
    from cronctl import editing
    from cronctl.runner.editor import open_editor

    app = state(ctx)

    def ask(question: str) -> bool:
        try:
            return typer.confirm(question, default=True, err=True)
        except typer.Abort:  # Ctrl-C or end of input at the prompt
            raise KeyboardInterrupt from None

    def retry(error: TaskFileError) -> bool:
        app.renderer.error(error.message, error.hint)
        return editing.interactive() and ask("Edit again?")

    def leaving(names: list[str]) -> bool:
        # As `remove` does, the history of a task that leaves the file is kept, under its name;
        # at a terminal, edit asks before saving (a rename is easy to make by mistake there).
        with_history = _runs_in_history(app, names)
        for task, runs in with_history.items():
            app.renderer.warning(
                f"task '{task}' has {timefmt.counted(runs, 'run')} in the history;"
                f" they stay under the name '{task}'"
            )
        return not with_history or not editing.interactive() or ask("Save?")

    dialogue = editing.Dialogue(
        open_editor=open_editor,
        retry=retry,
        leaving=leaving,
        again=lambda: editing.interactive() and ask("Edit again?"),
    )
    edited = editing.edit(app.locations.tasks_file, name, dialogue)
    if edited.outcome == editing.Outcome.UNCHANGED:
        app.renderer.note("No changes.")
    elif edited.outcome == editing.Outcome.SAVED:
        app.renderer.note(f"Saved {app.locations.tasks_file}.")
    else:
        app.renderer.error(
            "the edit was not saved; the task file is unchanged;"
            f" your edit is kept in {edited.kept}"
        )
        raise typer.Exit(int(ExitCode.USAGE))


def _runs_in_history(app: AppState, names: list[str]) -> dict[str, int]:
    """How many runs the history holds of each of `names` (those with any); no history file,
    none (edit does not create one)."""
    if app.locations.db_is_file and not os.path.exists(app.locations.db):
        return {}
    counts = app.store().run_counts()
    return {name: counts[name][0] for name in names if counts.get(name, (0, 0))[0]}


@command("list")
def list_tasks(
    ctx: typer.Context,
    patterns: Annotated[
        list[str] | None,
        typer.Argument(
            help="Only the tasks whose names match: a name, or a shell-style pattern"
            " ('backup-*', 'db-?'; quote it).",
            metavar="[PATTERN]...",
            autocompletion=complete_task_names_in,
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            metavar="N",
            help="At most N tasks (in the file's order); a note on stderr says how many"
            " more matched.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """One row a task: schedule, next run, last run, success rate."""
    app = state(ctx)
    now = app.clock.now()
    tasks = app.tasks()
    listed = overview.task_rows(tasks, app.store(), now, patterns=patterns or (), limit=limit)
    rows = listed.rows
    note_ignored_tz(app, tasks, [row.task.name for row in rows])
    # Rows by the hundred thousand, none of them garbage: see taskfile.collector_paused.
    with taskfile.collector_paused():
        if json_output:
            app.renderer.json(
                [{**task_json(r.task, r.next_run, r.stats), "summary": r.summary} for r in rows]
            )
        elif rows or not patterns or not app.renderer.rich:
            app.renderer.tasks(rows, now)  # piped: the header line even when nothing matched
    if not rows and patterns:
        app.renderer.note(f"No task matches {' or '.join(repr(p) for p in patterns)}.")
    if listed.left_out:
        more = timefmt.counted(listed.left_out, "more task")
        app.renderer.note(f"note: {more} not shown (--limit {limit}).")


@command("show")
def show(ctx: typer.Context, name: TaskName, json_output: JsonFlag = False) -> None:
    """A task's settings, next 5 fire times, last 10 runs and health."""
    app = state(ctx)
    now = app.clock.now()
    task = app.tasks().get(name)
    detail = overview.task_detail(task, app.store(), now)
    if json_output:
        app.renderer.json(
            {
                **task_json(task, detail.row.next_run, detail.row.stats),
                "description_of_schedule": detail.description,
                "next": [m.isoformat() for m in detail.upcoming],
                "recent_statuses": list(detail.row.stats.recent),
                "runs": [run_json(r) for r in detail.runs],
            }
        )
    else:
        app.renderer.task_detail(detail, now)


@command("check")
def check(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Validate the task file (every error, with its line) and warn about crowded minutes,
    silent schedules, cycles and, on a shared history, tasks defined differently by the
    other hosts' serves."""
    app = state(ctx)
    path = app.locations.tasks_file
    tasks, errors = taskfile.check_all(path)
    findings = overview.check(tasks, app.clock.now())
    defined = tasks.raw.get("tasks", {}) if isinstance(tasks.raw.get("tasks"), dict) else {}
    readable = bool(tasks.raw) or not errors  # a file that is not TOML holds no task to compare
    fleet = _compare_with_fleet(app, tasks, set(defined) - set(tasks.tasks)) if readable else None
    if fleet is not None:
        findings += [overview.Finding("warning", task, message) for task, message in fleet.warnings]
    warnings = [f for f in findings if f.level == "warning"]
    if errors:
        app.exit_code = int(ExitCode.USAGE)
    if json_output:
        app.renderer.json(
            {
                "valid": not errors,
                "file": str(path),
                "tasks": len(defined),
                "valid_tasks": list(tasks.tasks),
                "errors": [overview.error_json(exc) for exc in errors],
                "warnings": [{"task": f.task, "message": f.message} for f in warnings],
                **(fleet.json() if fleet is not None else _NOT_COMPARED),
            }
        )
        raise typer.Exit(app.exit_code)
    for exc in errors:
        app.renderer.error(exc.message, exc.hint)
    app.renderer.findings(findings)
    if fleet is not None and fleet.line:
        app.renderer.note(fleet.line)
    if readable:
        # A file that cannot be read or is not TOML is its one error, as for every command.
        app.renderer.note(overview.check_summary(path, len(defined), tasks, errors, findings))
    raise typer.Exit(app.exit_code)


_NOT_COMPARED: dict[str, Any] = {"compared_with": None, "divergent": [], "comparison_note": None}


def _compare_with_fleet(
    app: AppState, tasks: taskfile.TaskFile, unchecked: set[str]
) -> "fleet_render.FleetFindings | None":
    """On a history at a URL, the file against the other hosts' live serves (fleet_check.py);
    None on a SQLite file (one host: nothing to compare, nothing said)."""
    from cronctl.locations import host_name, is_url

    if not is_url(app.locations.db):
        return None
    from cronctl.cli import fleet_render
    from cronctl.fleet_check import compare_with_fleet

    host = host_name()
    comparison = compare_with_fleet(
        tasks.tasks.values(),
        app.store,
        database=app.locations.db,
        host=host,
        now=app.clock.now(),
        unchecked=unchecked,
    )
    return fleet_render.FleetFindings(comparison, host)
