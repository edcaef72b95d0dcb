"""Commands about runs: run-now, history, logs."""

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from cronctl import timefmt
from cronctl.cli.common import AppState, JsonFlag, command, state
from cronctl.cli.complete import complete_task_names_in
from cronctl.errors import ExitCode, TaskFileError, UnknownTaskError, UsageError
from cronctl.locations import MEMORY
from cronctl.records import FAILURE_STATUSES, Run, Status, Trigger, safe_text
from cronctl.render import to_devnull
from cronctl.shapes import run_json

if TYPE_CHECKING:  # imported when a command needs it (start-up: see cli/common.py)
    from cronctl.taskfile import TaskFile

STATUS_NAMES = [s.value for s in Status]
TRIGGER_NAMES = [t.value for t in Trigger]
MAX_LIMIT = 1_000_000_000
MAX_RUN_ID = 2**63 - 1  # SQLite's largest integer


def exit_code_of(run: Run) -> int:
    """Return `run-now`'s exit status for a run: the job's own, as `timeout` and shells do;
    125 when its `when` condition skipped it (README.md#exit-codes)."""
    if run.status == Status.SUCCEEDED:
        return 0
    if run.status == Status.SKIPPED:  # by its `when` condition: nothing ran
        return int(ExitCode.SKIPPED)
    if run.status == Status.TIMED_OUT:
        return int(ExitCode.TIMEOUT)
    if run.status == Status.INTERRUPTED:
        return int(ExitCode.INTERRUPTED)
    if run.signal is not None:
        return 128 + run.signal
    if run.exit_code is not None:
        return run.exit_code
    return int(ExitCode.FAILURE)


class _Stream:
    """Passes the job's output through as it comes. When the reader goes away
    (`cronctl run-now x | head -1`), that stream falls silent; the job runs on, is recorded in
    full, and run-now still exits with its status."""

    def __init__(self) -> None:
        self.closed: set[str] = set()

    def __call__(self, name: str, chunk: bytes) -> None:
        if name in self.closed:
            return
        target = sys.stdout if name == "stdout" else sys.stderr
        try:
            target.flush()
            target.buffer.write(chunk)
            target.buffer.flush()
        except BrokenPipeError:
            self.closed.add(name)
            to_devnull(target)


@command("run-now")
def run_now(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The task to run.", metavar="NAME", autocompletion=complete_task_names_in
        ),
    ],
    no_retries: Annotated[bool, typer.Option("--no-retries", help="Run one attempt only.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run even when the `when` condition says no.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for the task's locks instead of refusing (exit 75)."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a task now in the foreground, stream its output, record it, exit with its status
    (125 when its `when` condition skips it, 75 when another run holds its lock)."""
    from cronctl.pipeline import RunPipeline
    from cronctl.runner.locks import LockFolder, fleet_locks_for, hold_for_manual_run
    from cronctl.runner.requests import RunRequest, StopSignal

    app = state(ctx)
    tasks = app.tasks()
    task = tasks.get(name)
    if not task.enabled:
        app.renderer.note(f"Task '{name}' is disabled; running it anyway because you asked.")
    stop = StopSignal("interrupted by Ctrl-C")
    fleet = fleet_locks_for(app.locations.db, app.clock, "run-now", name) if task.lock else None
    with _signals_stop(stop):
        locks = hold_for_manual_run(
            LockFolder(app.locations.state_dir, fleet=fleet),
            name,
            task.lock,
            wait=wait,
            clock=app.clock,
            stop=stop,
            on_wait=lambda taken: app.renderer.note(f"waiting: {taken.reason}"),
        )
    if locks is None:
        app.renderer.note("interrupted while waiting for the lock; not run")
        raise typer.Exit(130)
    # A manual run is a run like any other: its failure reaches the task's channels too.
    pipeline = RunPipeline(
        app.store(),
        database=app.locations.db,
        smtp=tasks.defaults.smtp,
        hidden_variables=tasks.secret_variables,
        clock=app.clock,
        warn=app.renderer.warning,
        on_output=None if json_output else _Stream(),
        spool_dir=None if app.locations.db == MEMORY else app.locations.state_dir,
    )
    request = RunRequest(
        task,
        Trigger.MANUAL,
        stop=stop,
        check_when=not force,
        retries=0 if no_retries else None,
        inherit_fds=locks.fds,
    )
    try:
        with _signals_stop(stop):
            runs = pipeline.executor.run_with_retries(request)
    finally:
        locks.release()
        pipeline.close(timeout=task.notify.timeout + 2 if task.notify else 2)
    last = runs[-1]
    app.exit_code = exit_code_of(last)
    if json_output:
        app.renderer.json(run_json(last, output=True) | {"attempts": [run_json(r) for r in runs]})
    elif last.status == Status.SKIPPED and len(runs) == 1:
        app.renderer.note(f"skipped: {last.reason} (--force runs it anyway)")
    else:
        for run in runs:
            detail = f": {run.reason}" if run.reason else ""
            app.renderer.note(f"run {run.id} (attempt {run.attempt}) {run.status}{detail}")
    raise typer.Exit(app.exit_code)


@contextlib.contextmanager
def _signals_stop(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the job's process group (it is in its own group, so the terminal's
    SIGINT does not reach it); the run is then recorded `interrupted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@command("history")
def history(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Only this task.", metavar="[NAME]", autocompletion=complete_task_names_in
        ),
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failures.")] = False,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only this status; repeatable.")
    ] = None,
    trigger: Annotated[
        list[str] | None,
        typer.Option(
            "--trigger",
            help=f"Only runs started this way ({', '.join(TRIGGER_NAMES)}); repeatable.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only runs started at or after this time: 2026-12-05, 2026-12-05T14:00,"
            " 2h (ago), today, yesterday.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only runs started before this time (as --since)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many runs.")
    ] = 50,
    json_output: JsonFlag = False,
) -> None:
    """Recent runs, newest first."""
    app = state(ctx)
    statuses = _statuses(status, failed)
    triggers = _choices("trigger", trigger, TRIGGER_NAMES, Trigger)
    now = app.clock.now()
    window = _window(since, until, now)
    loaded = app.tasks_beside_history("showing the history only")
    tasks = {} if isinstance(loaded, TaskFileError) else loaded.tasks
    store = app.store()
    if name is not None and name not in tasks and name not in store.task_names():
        raise _unknown(name, loaded)
    runs = store.runs(
        name, statuses=statuses, triggers=triggers, since=window[0], until=window[1], limit=limit
    )
    if json_output:
        app.renderer.json([run_json(r) for r in runs])
        return

    if not runs and app.renderer.rich:
        app.renderer.note("No runs match.")
        return
    app.renderer.runs(runs, now, tasks.get)


Choice = TypeVar("Choice", Status, Trigger)


def _choices(
    noun: str, given: list[str] | None, names: list[str], kind: Callable[[str], Choice]
) -> list[Choice] | None:
    """The values of a repeatable option of fixed choices; None when it is not given."""
    if not given:
        return None
    for value in given:
        if value not in names:
            raise UsageError(f"unknown {noun} {value!r}", hint=f"one of: {', '.join(names)}")
    return [kind(value) for value in given]


def _statuses(status: list[str] | None, failed: bool) -> list[Status] | None:
    """The statuses `--status` and `--failed` ask for. `--failed` with a status that is no
    failure could only ever answer nothing: a usage error, not an empty list."""
    statuses = _choices("status", status, STATUS_NAMES, Status)
    if not failed:
        return statuses
    if statuses is None:
        return list(FAILURE_STATUSES)
    others = [s.value for s in statuses if s not in FAILURE_STATUSES]
    if others:
        failures = ", ".join(s.value for s in FAILURE_STATUSES)
        raise UsageError(
            f"--failed and --status {others[0]} contradict: {others[0]} is not a failure"
            f" ({failures})"
        )
    return statuses


def _window(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The start times `--since` and `--until` leave (README.md#commands); a window that holds
    no instant is a usage error."""
    from cronctl import model
    from cronctl.timespec import parse_moment

    bounds: list[datetime | None] = []
    for option, text in (("--since", since), ("--until", until)):
        if text is None:
            bounds.append(None)
            continue
        try:
            bounds.append(parse_moment(text, now, model.machine_timezone))
        except UsageError as exc:
            raise UsageError(f"{option} {exc.message}", hint=exc.hint) from None
    start, end = bounds
    if start is not None and end is not None and start >= end:
        raise UsageError(
            f"--since {since} ({start.isoformat(timespec='seconds')}) is not before"
            f" --until {until} ({end.isoformat(timespec='seconds')}): no run can match"
        )
    return start, end


def _unknown(name: str, loaded: "TaskFile | TaskFileError") -> UsageError:
    """A task that is neither in the history nor in the task file (when that one loads)."""
    from cronctl.taskfile import unknown_task

    if isinstance(loaded, TaskFileError):
        return UnknownTaskError(f"no task named '{name}' in the history")
    return unknown_task(name, loaded.tasks)


@command("logs")
def logs(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            help="A run id, or a task name with --last.",
            metavar="RUN_ID|NAME",
            autocompletion=complete_task_names_in,
        ),
    ],
    last: Annotated[bool, typer.Option("--last", help="The task's latest run.")] = False,
    stdout_only: Annotated[bool, typer.Option("--stdout", help="Only standard output.")] = False,
    stderr_only: Annotated[bool, typer.Option("--stderr", help="Only standard error.")] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print new output as the job writes it, until the run ends; exit 0 if it"
            " succeeded, 1 otherwise.",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="With --last --follow: when the task is not running, wait for its next run.",
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Print the captured output of one run (escape sequences are shown escaped); of a run
    still going, what it has printed so far."""
    from cronctl.cli.logs_view import run_so_far, still_running

    app = state(ctx)
    _check_follow_options(follow, wait, last, json_output)
    store = app.store()
    found = _logs_target(app, target, last, allow_none=wait, running_first=follow)
    streams = _streams_asked(stdout_only, stderr_only)
    if follow:
        _follow(app, found, target if wait else None, streams)
    assert found is not None  # only --wait (handled by _follow) goes on without a run
    run = run_so_far(store.get_run(found.id), app.locations.state_dir)
    if json_output:
        app.renderer.json(run_json(run, output=True))
        return
    for stream_name in streams:
        stream = run.stdout if stream_name == "stdout" else run.stderr
        text = safe_text(stream.data) if stream else ""
        if len(streams) > 1:
            size = timefmt.counted(stream.total_bytes if stream else 0, "byte")
            app.renderer.note(f"--- {stream_name} ({size}) ---")
        if text:
            app.renderer.write(text if text.endswith("\n") else text + "\n")
    if run.status == Status.RUNNING:
        from cronctl import model

        app.renderer.note(still_running(run, model.machine_timezone()))


def _check_follow_options(follow: bool, wait: bool, last: bool, json_output: bool) -> None:
    if wait and not (follow and last):
        raise UsageError(
            "--wait waits for a task's next run to follow it: it goes with --last --follow",
            hint="cronctl logs NAME --last --follow --wait",
        )
    if follow and json_output:
        raise UsageError(
            "--follow prints the output as it comes, --json one finished record: choose one"
        )


def _streams_asked(stdout_only: bool, stderr_only: bool) -> tuple[str, ...]:
    if stdout_only == stderr_only:  # neither, or both
        return ("stdout", "stderr")
    return ("stdout",) if stdout_only else ("stderr",)


def _logs_target(
    app: AppState, target: str, last: bool, *, allow_none: bool, running_first: bool = False
) -> Run | None:
    """The run `logs` is about: by id, or the task's latest with --last (None: the task has
    no run yet and `allow_none`). `running_first` (--follow): the task's newest run still
    going, when it has one: the slots it made serve skip meanwhile are newer rows, and
    following one of them would print nothing and end at once."""
    store = app.store()
    if not last:
        if not (target.isascii() and target.isdigit()):
            raise UsageError(
                f"{target!r} is not a run id", hint="give a run id, or a task name with --last"
            )
        return store.get_run(min(int(target), MAX_RUN_ID))
    found = store.last_run(target, statuses=[Status.RUNNING]) if running_first else None
    found = found or store.last_run(target)
    if found is None:
        if target not in store.task_names():
            loaded = app.tasks_beside_history("showing the history only")
            if isinstance(loaded, TaskFileError) or target not in loaded.tasks:
                raise _unknown(target, loaded)
        if not allow_none:
            raise UsageError(f"task '{target}' has no runs yet")
    return found


def _follow(
    app: AppState, found: Run | None, wait_task: str | None, streams: tuple[str, ...]
) -> NoReturn:
    """`logs --follow`: the output as it comes, then how the run ended (README.md#runs)."""
    from cronctl.cli.logs_view import OutputPrinter, ending
    from cronctl.follow import follow_run, wait_for_next_run

    store = app.store()
    printer = OutputPrinter(app.renderer, streams)
    try:
        run_id = None if found is None else found.id
        if wait_task is not None and (found is None or found.status != Status.RUNNING):
            app.renderer.note(f"waiting for the next run of {wait_task} (Ctrl-C to stop)")
            run_id = wait_for_next_run(store, wait_task, run_id, clock=app.clock)
        assert run_id is not None
        followed = follow_run(store, app.locations.state_dir, run_id, clock=app.clock, emit=printer)
        printer.finish()
    except KeyboardInterrupt:
        # Ctrl-C is how following ends by hand: quietly, with the status of an interrupt.
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    succeeded = followed.run.status == Status.SUCCEEDED and not followed.orphaned
    app.exit_code = int(ExitCode.OK if succeeded else ExitCode.FAILURE)
    app.renderer.note(ending(followed.run, followed.orphaned))
    raise typer.Exit(app.exit_code)
