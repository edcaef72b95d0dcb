"""Commands that fit cronctl into the system: service, import, export, completion."""

import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cronctl import timefmt
from cronctl.cli.common import AppState, JsonFlag, app, command, state
from cronctl.cli.complete import (
    INSTALL_PATHS,
    complete_task_names_in,
    completion_script,
)
from cronctl.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from cronctl.crontab_import import Plan

service_app = typer.Typer(
    help="The systemd user service that runs `cronctl serve`.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(service_app, name="service")


# ---------------------------------------------------------------------------------------------
# service


def _tilde(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return (
        "~" + text[len(home) :] if home not in ("/", "") and text.startswith(home + "/") else text
    )


@command("install", target=service_app)
def service_install(
    ctx: typer.Context,
    now: Annotated[bool, typer.Option("--now", help="Also enable and start the service.")] = False,
) -> None:
    """Write ~/.config/systemd/user/cronctl.service for `cronctl serve` and reload systemd."""
    from cronctl import service_unit as service

    current = state(ctx)
    report = service.install(current.locations, now=now)
    render = current.renderer
    path = _tilde(report.unit_path)
    first = report.steps[0]
    render.note(f"Wrote {path}." if first.action == "wrote" else f"{path} is up to date.")
    if not report.systemctl:
        message = "systemctl not found: the unit is written, but systemd is needed to run it"
        if now:
            raise UsageError(
                message, hint="run `cronctl serve` in a terminal or from your own init system"
            )
        render.note(message + "; run `cronctl serve` yourself instead.")
        return
    failed = report.failed()
    if failed:
        step = failed[-1]
        started = any(s.action == "enable" and s.ok for s in report.steps)
        reason = f"the systemd user manager is not reachable ({step.detail})"
        if now:
            render.error(
                f"could not start the service: {reason}",
                "it is enabled, so it starts with your user manager (at your next login, or at "
                "boot with lingering)"
                if started
                else "log in to a systemd session, then run: "
                "systemctl --user enable --now cronctl.service",
            )
            raise typer.Exit(int(ExitCode.FAILURE))
        render.note(
            f"Not reloaded: {reason}. In a systemd session run: "
            "systemctl --user daemon-reload && systemctl --user enable --now cronctl.service"
        )
    elif now:
        render.note("Enabled and started cronctl.service. Logs: journalctl --user -u cronctl -f")
    else:
        render.note(
            "Start it now and at each login: systemctl --user enable --now cronctl.service "
            "(or cronctl service install --now)"
        )
    if report.linger is False:
        render.note(
            f"Lingering is off: the service stops when you log out. To run it from boot, "
            f"without a login: loginctl enable-linger {report.user}"
        )


@command("uninstall", target=service_app)
def service_uninstall(ctx: typer.Context) -> None:
    """Stop and disable the service and remove its unit file."""
    from cronctl import service_unit as service

    current = state(ctx)
    report = service.uninstall()
    render = current.renderer
    removed = any(s.action == "removed" for s in report.steps)
    for step in report.failed():
        if step.action == "daemon-reload":
            render.note(f"Not reloaded: the systemd user manager is not reachable ({step.detail}).")
        else:
            render.warning(f"systemctl --user {step.action} cronctl.service: {step.detail}")
    if removed:
        render.note(f"Removed {_tilde(report.unit_path)}.")
    else:
        render.note(f"Not installed ({_tilde(report.unit_path)} does not exist).")


@command("status", target=service_app)
def service_status(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Whether the service is installed, up to date, enabled and running."""
    from cronctl import service_unit as service

    current = state(ctx)
    found = service.status(current.locations)
    if json_output:
        current.renderer.json(found.as_json())
        return

    def word(value: object, unknown: str = "unknown") -> str:
        if value is None:
            return unknown
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    rows = [
        ("unit file", _tilde(found.unit_path) + ("" if found.installed else " (not installed)")),
        ("installed", word(found.installed)),
    ]
    if found.installed:
        rows.append(
            (
                "up to date",
                word(found.up_to_date)
                + ("" if found.up_to_date else " (run `cronctl service install` again)"),
            )
        )
    rows.append(("enabled", word(found.enabled)))
    rows.append(("active", word(found.active)))
    rows.append(("lingering", word(found.linger)))
    current.renderer.pairs(rows)
    if found.problem:
        current.renderer.note(f"systemd: {found.problem}")


# ---------------------------------------------------------------------------------------------
# import


def _read_input(source: str | None) -> tuple[str, str]:
    """Return (text, label) of FILE or standard input."""
    from cronctl.crontab_import import read_crontab

    if source in (None, "-"):
        if source is None and sys.stdin.isatty():
            raise UsageError(
                "nothing to import",
                hint="give a FILE, or - for standard input: crontab -l | cronctl import -",
            )
        return read_crontab(sys.stdin.buffer, "standard input"), "-"
    try:
        with Path(source).open("rb") as stream:
            return read_crontab(stream, source), source
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None


@command("import")
def import_crontab(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE", help="Crontab file; - (or nothing, when piped) reads standard input."
        ),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(
            "--prefix",
            metavar="P",
            help="Name the tasks P-1, P-2, ... instead of after their commands.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be imported; change nothing.")
    ] = False,
    system: Annotated[
        bool | None,
        typer.Option(
            "--system/--no-system",
            help="The input has a user field (/etc/crontab, /etc/cron.d) [default: detect].",
            show_default=False,
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Add tasks from crontab lines (crontab -l | cronctl import -); report what it cannot."""
    from cronctl import crontab_import

    current = state(ctx)
    text, label = _read_input(source)
    plan = crontab_import.import_into(
        current.locations.tasks_file,
        text,
        prefix=prefix,
        system=system,
        source=label,
        dry_run=dry_run,
    )
    _report_import(current, plan, dry_run, json_output)
    if plan.problems:
        raise typer.Exit(int(ExitCode.FAILURE))


def _report_import(current: AppState, plan: "Plan", dry_run: bool, json_output: bool) -> None:
    render = current.renderer
    if json_output:
        render.json(
            {
                "dry_run": dry_run,
                "source": plan.source,
                "system_format": plan.system,
                "imported": [
                    {
                        "name": t.name,
                        "line": t.line,
                        "schedule": t.task.schedule,
                        "command": t.task.command,
                        "timezone": t.task.timezone,
                    }
                    for t in plan.tasks
                ],
                "already_present": [
                    {"line": p.line, "text": p.text, "task": p.task} for p in plan.present
                ],
                "skipped": [
                    {"line": p.line, "text": p.text, "reason": p.reason} for p in plan.problems
                ],
                "notes": [{"line": n.line, "message": n.message} for n in plan.notes],
            }
        )
        return
    if plan.tasks:
        render.table(
            ["Name", "Line", "Schedule", "Command"],
            [[t.name, str(t.line), t.task.schedule, t.task.command] for t in plan.tasks],
        )
    for present in plan.present:
        render.note(f"line {present.line} already imported as task '{present.task}'")
    for problem in plan.problems:
        render.warning(f"line {problem.line} not imported: {problem.reason}")
        render.note(f"    {problem.text.strip()}")
    for note in plan.notes:
        render.note(("note: " if note.line is None else f"note: line {note.line}: ") + note.message)
    count = len(plan.tasks)
    tasks = timefmt.counted(count, "task")
    where = current.locations.tasks_file
    if dry_run:
        summary = f"Would import {tasks} into {where} (dry run: nothing written)"
    elif count:
        summary = f"Imported {tasks} into {where}"
    else:
        summary = "Nothing imported"
    if plan.present:
        summary += f"; {timefmt.counted(len(plan.present), 'line')} already in the task file"
    if plan.problems:
        summary += f"; {timefmt.counted(len(plan.problems), 'line')} not imported"
    render.note(summary + ".")


# ---------------------------------------------------------------------------------------------
# export


class ExportFormat(enum.StrEnum):
    crontab = "crontab"
    systemd = "systemd"
    k8s = "k8s"


@command("export")
def export_tasks(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME...",
            help="Tasks to export [default: all].",
            autocompletion=complete_task_names_in,
        ),
    ] = None,
    *,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", help="crontab, systemd or k8s.", case_sensitive=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="DIR",
            help="Write the files into DIR instead of printing them.",
            file_okay=False,
        ),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Container image for k8s (required for k8s).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace for k8s CronJobs.")
    ] = None,
) -> None:
    """Write tasks as crontab lines, systemd timer/service units, or Kubernetes CronJobs."""
    from cronctl.export import crontab as crontab_format
    from cronctl.export import k8s as k8s_format
    from cronctl.export import systemd as systemd_format
    from cronctl.export import write_files

    current = state(ctx)
    render = current.renderer
    loaded = current.tasks()
    tasks = [loaded.get(name) for name in names] if names else list(loaded.tasks.values())
    if fmt is ExportFormat.k8s and not image:
        raise UsageError(
            "--format k8s needs --image IMAGE",
            hint="the container image that has the programs your commands run",
        )
    if fmt is not ExportFormat.k8s and (image or namespace):
        render.warning("--image and --namespace apply to --format k8s only; ignored")
    if fmt is ExportFormat.crontab:
        result = crontab_format.export(tasks, source=str(current.locations.tasks_file))
    elif fmt is ExportFormat.systemd:
        result = systemd_format.export(tasks)
    else:
        result = k8s_format.export(tasks, image=image or "", namespace=namespace)
    for skipped in result.skipped:
        render.warning(f"task {skipped.task} not exported: {skipped.reason}")
    if output is not None:
        write_files(output, result.files)
        written = ", ".join(f.name for f in result.files) or "nothing"
        render.note(f"Wrote {written} to {output}.")
        if fmt is ExportFormat.systemd and result.files:
            timers = " ".join(f.name for f in result.files if f.name.endswith(".timer"))
            render.note(
                f"Install: cp {output}/cronctl-* ~/.config/systemd/user/ && systemctl --user "
                f"daemon-reload && systemctl --user enable --now {timers}"
            )
    elif fmt is ExportFormat.systemd:
        render.write("\n".join(f"# ==> {f.name} <==\n{f.text}" for f in result.files))
    else:
        for item in result.files:
            render.write(item.text)
    if result.skipped:
        raise typer.Exit(int(ExitCode.FAILURE))


# ---------------------------------------------------------------------------------------------
# completion


class Shell(enum.StrEnum):
    """The shells of complete.SHELLS (tests/system/test_cli_system.py keeps the two equal)."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@command("completion")
def completion(
    ctx: typer.Context,
    shell: Annotated[
        Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.", case_sensitive=False)
    ],
) -> None:
    """Print the shell completion script (commands, options and task names complete)."""
    state(ctx).renderer.write(completion_script(shell.value))
    if sys.stdout.isatty():
        # For one user: fish's folder of a user's completions; for bash and zsh, the packaged
        # place (INSTALL_PATHS) under ~/.local.
        where = (
            "~/.config/fish/completions/cronctl.fish"
            if shell.value == "fish"
            else "~/.local/" + INSTALL_PATHS[shell.value]
        )
        sys.stderr.write(f"# save it as {where}\n")
