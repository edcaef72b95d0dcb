"""The Typer application, its global options, and the one place where errors become exit codes."""

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cronctl import __version__
from cronctl.cli.usage import CronctlGroup
from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.errors import CronctlError, ExitCode
from cronctl.locations import Locations, resolve
from cronctl.render import Renderer, to_devnull

if TYPE_CHECKING:
    from cronctl.errors import TaskFileError
    from cronctl.health import InvalidTaskFile
    from cronctl.history import History
    from cronctl.schedule.zones import DefaultZone
    from cronctl.taskfile import TaskFile

app = typer.Typer(
    name="cronctl",
    cls=CronctlGroup,
    help="cron plus run history: tasks in one TOML file, every run recorded.",
    epilog="Global options may also follow the command: cronctl list --no-color.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass
class AppState:
    locations: Locations
    renderer: Renderer
    debug: bool = False
    clock: Clock = SYSTEM_CLOCK
    _store: "History | None" = field(default=None, repr=False)
    # The exit status a command has decided before it renders its result: when the reader of
    # its output goes away (`cronctl status | head -1`), this is still the status, not 0
    # (README.md#exit-codes: a closed pipe never turns a meaningful status into success).
    exit_code: int = int(ExitCode.OK)

    def store(self) -> "History":
        """The history, opened once per command (on first use: see `tasks`)."""
        if self._store is None:
            from cronctl.store.opening import open_store

            self._store = open_store(self.locations.db, tasks_file=self.locations.tasks_file)
        return self._store

    def tasks(self) -> "TaskFile":
        """The task file, read on each call.

        The store's and the task file's modules are imported here, when a command first
        needs them, not at the top: a command that never opens the database does not import
        SQLite (tests/cli/test_lazy_commands.py checks what piped `list`, `status` and
        `history` load)."""
        from cronctl import taskfile

        return taskfile.load(self.locations.tasks_file)

    def tasks_beside_history(self, consequence: str) -> "TaskFile | TaskFileError":
        """The task file for a command that reads the history (history, logs, status, metrics,
        prune): those work from the database whatever state the file is in. When it is invalid,
        one warning line (the loader's error, then `consequence`) and the error is returned."""
        from cronctl.errors import TaskFileError

        try:
            return self.tasks()
        except TaskFileError as exc:
            _tell(self.renderer.warning, f"{exc.message}; {consequence}")
            return exc

    def tasks_to_report(self, consequence: str) -> "TaskFile | InvalidTaskFile":
        """`tasks_beside_history` for a report of the tasks' health (`status`, `ack`): an
        invalid file is reported as such, beside the history."""
        from cronctl.errors import TaskFileError
        from cronctl.health import InvalidTaskFile

        loaded = self.tasks_beside_history(consequence)
        if isinstance(loaded, TaskFileError):
            return InvalidTaskFile(self.locations.tasks_file, loaded.message)
        return loaded

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def state(ctx: typer.Context) -> AppState:
    current: AppState | None = ctx.find_root().obj
    if current is None:  # a command invoked without the callback (tests of one command)
        current = ctx.find_root().obj = AppState(resolve(), Renderer())
    return current


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cronctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    tasks_file: Annotated[
        Path | None,
        typer.Option(
            "--tasks-file", envvar="CRONCTL_TASKS", help="The task file.", show_envvar=True
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="CRONCTL_DB",
            help="The history database: a SQLite file, or postgresql://USER@HOST/DB.",
            show_envvar=True,
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """cron plus run history: tasks in one TOML file, every run recorded in SQLite."""
    no_color = no_color or bool(os.environ.get("NO_COLOR"))
    ctx.obj = AppState(resolve(tasks_file, db), Renderer(no_color=no_color), debug=debug)
    ctx.call_on_close(ctx.obj.close)


F = TypeVar("F", bound=Callable[..., Any])


def command(
    name: str | None = None, *, target: typer.Typer | None = None, **settings: Any
) -> Callable[[F], F]:
    """Register a command whose CronctlErrors become one line on stderr and their exit code.

    `target` is the Typer to register on (a sub-command group such as `service`); default `app`.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = _context_of(args, kwargs)
            current = state(ctx)
            try:
                return func(*args, **kwargs)
            except CronctlError as exc:
                if current.debug:
                    raise
                _tell(current.renderer.error, exc.message, exc.hint)
                raise typer.Exit(code=int(exc.exit_code)) from None
            except KeyboardInterrupt:
                if current.debug:
                    raise
                _tell(current.renderer.error, "interrupted")
                raise typer.Exit(code=int(ExitCode.INTERRUPTED)) from None
            except BrokenPipeError:
                # The reader went away (`cronctl list | head -1`): not an error worth a word,
                # and no reason to change the status the command had decided.
                to_devnull(current.renderer.stdout)
                raise typer.Exit(code=current.exit_code) from None

        (app if target is None else target).command(name, **settings)(wrapper)
        return func

    return decorate


def _context_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> typer.Context:
    """Return the command's Context: every command takes a `ctx: typer.Context` parameter
    (Typer passes it by name). Typer below 0.29, as pinned, has no public get_current_context:
    its Click is vendored privately (typer._click), and cronctl never imports click."""
    try:
        ctx: typer.Context = kwargs["ctx"]
        return ctx
    except KeyError:
        raise TypeError("a cronctl command must take a `ctx: typer.Context` parameter") from None


def note_ignored_tz(app: AppState, tasks: "TaskFile", names: Iterable[str]) -> None:
    """When $TZ differs from the zone the tasks `names` run in without a `timezone` of their
    own, say so in one note line on stderr: TZ is not read (README.md#time-zones), and a user
    who set it would otherwise believe it moved the tasks."""
    from cronctl.schedule.zones import default_zone

    own = tasks.raw.get("tasks", {})
    if not all("timezone" in own.get(name, {}) for name in names):
        note_tz_against(app, default_zone(tasks.defaults.values.get("timezone")))


def note_tz_against(app: AppState, used: "DefaultZone") -> None:
    """The note of `note_ignored_tz` for the zone `used`, when $TZ names another."""
    from cronctl.schedule.zones import ignored_tz_note

    note = ignored_tz_note(used)
    if note is not None:
        _tell(app.renderer.note, note)


def _tell(say: Callable[..., None], *args: Any) -> None:
    """Print an error; when stderr is a closed pipe, the exit code still tells."""
    try:
        say(*args)
    except BrokenPipeError:
        pass
