"""`cronctl serve` wired together: lock, database, tasks, recovery, signals, the loop, shutdown.

Start-up order (README, "serve"): take the serve lock -> open the history database -> load the
task file (invalid: exit 78) -> mark runs a dead serve left `running` as `abandoned` and stop
their leftover jobs (serve/recovery.py) -> heartbeat row -> catch-up and the first slot of
every task planned -> READY=1 -> the loop. Shutdown: STOPPING=1, start nothing new, wait up to
the grace for running jobs, stop the rest, record `serve_stopped`, checkpoint the WAL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import resource
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from cronctl import __version__, taskfile, timefmt
from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.errors import (
    CronctlError,
    DatabaseUnavailableError,
    ExitCode,
    TaskFileError,
    UsageError,
)
from cronctl.history import History, ServeHistory
from cronctl.listeners import EventFanout, RunEvents
from cronctl.locations import MEMORY, Locations, host_name, masked
from cronctl.pipeline import RunPipeline
from cronctl.records import DEFAULT_LEASE, Run
from cronctl.runner.locks import LockFolder, fleet_locks_for
from cronctl.serve import GRACE, KILL_GRACE, NOTIFY_FLUSH_SECONDS
from cronctl.serve import log as serve_log
from cronctl.serve.arenas import bound_arenas, trim_heap
from cronctl.serve.fleet import heartbeat_interval, overlap_across_hosts, task_lookup
from cronctl.serve.lock import ServeLock
from cronctl.serve.loop import Scheduler
from cronctl.serve.outage import Outage
from cronctl.serve.recovery import (
    abandon_leftover_runs,
    remove_leftover_spools,
    stop_leftover_jobs,
)
from cronctl.serve.reload import TaskFileWatcher
from cronctl.serve.renames import RenameFollower
from cronctl.serve.storage import Recorder, SerialStore, open_history
from cronctl.serve.systemd import SystemdNotifier
from cronctl.serve.workers import ThreadLauncher
from cronctl.store.opening import open_store
from cronctl.taskfile import stamp_of

log = logging.getLogger("cronctl.serve")
DEFAULT_KILL_GRACE = KILL_GRACE  # the name importers used before the defaults moved

FDS_PER_JOB = 4  # two pipes, a pidfd, and one spare for the spawn itself
FDS_RESERVED = 64  # the database, the lock, the log, sockets
START_RETRY = (0.5, 1.0, 2.0, 5.0)
"""Seconds between serve's attempts to reach its database at start (docs/reliability.md, "The
database unreachable"): a database restarting is waited for, in the process."""
START_EXTEND = 60.0  # seconds of start-up asked of systemd at each attempt (EXTEND_TIMEOUT_USEC)


# What signal.signal takes and returns: a function, SIG_DFL or SIG_IGN, or None (set from C).
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class TaskFileInvalid(CronctlError):
    """The task file is invalid when serve starts: EX_CONFIG, so systemd does not restart-loop."""

    exit_code = ExitCode.CONFIG


class SignalWaker:
    """SIGTERM/SIGINT stop serve (a second one skips the grace), SIGHUP reloads the task file,
    SIGUSR1 logs what serve is doing (each task's next slot, runs going, timers).

    The Python-level handlers do nothing; the C handler writes the signal number to a socket
    (signal.set_wakeup_fd) that a small thread reads and turns into scheduler calls. Setting a
    threading.Event from inside a Python signal handler can deadlock on the Event's own lock.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self.on_signal = on_signal
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._previous: dict[int, SignalHandler] = {}
        self._old_fd = -1
        self._thread = threading.Thread(target=self._run, name="cronctl-signals", daemon=True)

    def install(self) -> None:
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, _ignore)
        self._thread.start()

    def uninstall(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        signal.set_wakeup_fd(self._old_fd)
        try:
            self._writer.send(b"\0")  # wakes the reader thread, which then ends
        except OSError:
            pass
        self._thread.join(1.0)
        self._reader.close()
        self._writer.close()

    def _run(self) -> None:
        while True:
            try:
                data = self._reader.recv(64)
            except OSError:
                return
            for number in data:
                if number == 0:
                    return
                self.on_signal(number)


def _ignore(number: int, frame: FrameType | None) -> None:
    pass


def parallel_limit() -> int:
    """Return how many jobs may run at once within the open-file limit (each costs ~4 fds).

    The soft limit is left as it is: jobs inherit it, and programs that use select(2) break
    with descriptors above 1024. Under systemd, raise it with LimitNOFILE= if needed.
    """
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ValueError, OSError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(8, (soft - FDS_RESERVED) // FDS_PER_JOB)


def load_tasks(locations: Locations) -> taskfile.TaskFile:
    """Load the task file at start; any failure to load it is TaskFileInvalid (exit 78)."""
    try:
        return taskfile.load(locations.tasks_file, regular_only=True)
    except TaskFileError as exc:
        raise TaskFileInvalid(
            exc.message,
            hint=exc.hint or "fix the task file (`cronctl check`), then start serve again",
        ) from None
    except Exception as exc:
        # A loader bug a file found would otherwise be exit 1, which systemd restarts forever.
        raise TaskFileInvalid(
            f"{locations.tasks_file}: cannot be loaded: {exc!r}",
            hint="fix the task file (`cronctl check`), then start serve again",
        ) from None


def serve(
    locations: Locations,
    *,
    grace: float = GRACE,
    kill_grace: float = KILL_GRACE,
    lease: float = DEFAULT_LEASE,
    events: RunEvents | None = None,
    clock: Clock = SYSTEM_CLOCK,
    environ: Mapping[str, str] | None = None,
    log_handler: logging.Handler | None = None,
    log_level: int = logging.INFO,
    install_signals: bool = True,
    on_ready: Callable[[Scheduler], None] | None = None,
    on_reload: Callable[[taskfile.TaskFile], None] | None = None,
) -> int:
    """Run the scheduler until SIGTERM/SIGINT; return the exit status (0).

    `lease`: on a shared history, how long the other serves wait for this one's heartbeat
    before they declare it dead (serve/fleet.py). `events` receives every run's start and
    end (and the `skipped`, `missed` and `abandoned` rows); by default that is the notifier
    of the tasks' `notify` settings. `on_reload` gets each task file that a reload put in
    force.

    Raises LockHeldError (exit 75) when another serve holds the lock, TaskFileInvalid (78)
    when the task file is invalid, StoreError when the database cannot be opened.
    """
    if locations.db == MEMORY:
        raise UsageError("serve needs a history database file, not :memory:")
    serve_log.setup(handler=log_handler, level=log_level, environ=environ)
    bound_arenas(os.environ)  # before the first thread: see serve/arenas.py
    lock = ServeLock(locations.serve_lock)
    lock.acquire()
    systemd = SystemdNotifier(environ)
    with contextlib.ExitStack() as stack:
        stack.callback(lock.release)
        stack.callback(systemd.close)
        # Shutdown, in turn: the jobs a dead serve left get their SIGKILL (if due) and the
        # signal handlers go (a signal during the flush then ends serve at once), the pending
        # notifications get NOTIFY_FLUSH_SECONDS, then the history writes still queued
        # (`serve_stopped`, the checkpoint) are done and the connections closed.
        history = stack.enter_context(contextlib.ExitStack())
        notifications = stack.enter_context(contextlib.ExitStack())
        process = stack.enter_context(contextlib.ExitStack())
        signals = Signals()
        if install_signals:  # early: a SIGTERM during start-up still ends in a clean stop
            waker = SignalWaker(signals.received)
            waker.install()
            process.callback(waker.uninstall)
        max_parallel = parallel_limit()
        store = open_when_reachable(locations, clock, systemd, signals.stopping)
        if store is None:
            log.info("cronctl serve stopped before its history database could be reached")
            return int(ExitCode.OK)
        history.callback(store.close)
        stamp = stamp_of(locations.tasks_file)
        loaded = load_tasks(locations)
        overlap_across_hosts(store, loaded.tasks.values())
        host = host_name(environ)
        outage = Outage(clock, host=host, database=masked(locations.db))
        serial = SerialStore(store, clock, outage)
        runs = RunPipeline(
            serial,
            database=locations.db,
            smtp=loaded.defaults.smtp,
            hidden_variables=loaded.secret_variables,
            clock=clock,
            warn=log.warning,
            listeners=events,
            run_log=serve_log.RunLog(),
            kill_grace=kill_grace,
            # A snapshot of the environment as a plain dict: os.environ decodes every key and
            # value on each read, which cost 0.1 ms a run (a tenth of a spawn) when copied for
            # each job.
            environ=dict(os.environ if environ is None else environ),
            spool_dir=locations.state_dir,
        )
        notifications.callback(runs.close, NOTIFY_FLUSH_SECONDS)
        now = clock.now()
        abandoned = abandon_leftover_runs(store, now, host=host)
        remove_leftover_spools(locations.state_dir)
        leftovers = stop_leftover_jobs(abandoned, kill_grace)
        if leftovers is not None:
            process.callback(leftovers.join, kill_grace + 2.0)
        _report_abandoned(abandoned, loaded, runs.listeners)
        store.serve_started(
            pid=os.getpid(), hostname=host, version=__version__, now=now, lease=lease
        )

        recorder = Recorder(open_store(locations.db), clock, runs.events, outage)
        history.callback(recorder.close)
        recorder.start()
        follower = RenameFollower(open_store(locations.db))
        history.callback(follower.close)
        # The newest slot of every task, read once by `Scheduler.start` on its own connection
        # (the job threads and the notifier use `serial`'s, under its lock).
        slot_reader = stack.enter_context(contextlib.closing(open_store(locations.db)))
        # Shared locks: flocks here, and across hosts on a PostgreSQL history (its own
        # connection, opened at the first run that needs a lock).
        locks = LockFolder(locations.state_dir, fleet=fleet_locks_for(locations.db, clock, "serve"))
        history.callback(locks.close)
        scheduler = Scheduler(
            loaded.tasks,
            clock=clock,
            launcher=ThreadLauncher(runs.executor, say=serial.say),
            store=slot_reader,
            recorder=recorder,
            rng=random.Random(),
            systemd=systemd,
            watcher=TaskFileWatcher(locations.tasks_file, stamp=stamp),
            grace=grace,
            kill_grace=kill_grace,
            max_parallel=max_parallel,
            on_reload=_reloaded(runs, on_reload, store, recorder),
            locks=locks,
            renames=follower,
            outage=outage,
        )
        scheduler.upkeep.heartbeat_interval = heartbeat_interval(lease)
        recorder.task_of = task_lookup(scheduler.states)
        signals.attach(scheduler)
        count = len(loaded.tasks)
        ready = _definitions_once_ready(recorder, loaded, on_ready)
        # The scheduler holds the tasks; the file's text and TOML document (about 90 MB at
        # 100,000 tasks) are not kept for the life of serve.
        del loaded
        _run_until_stopped(scheduler, systemd, locations, count, ready)

        serial.give_up.set()
        recorder.serve_stopped(clock.now())
        log.info("cronctl serve stopped")
        return int(ExitCode.OK)


def open_when_reachable(
    locations: Locations, clock: Clock, systemd: SystemdNotifier, stopping: threading.Event
) -> ServeHistory | None:
    """The history for serve (`open_history`), waited for while its database cannot be
    reached: said once, retried every START_RETRY step, told to systemd (STATUS=, and
    EXTEND_TIMEOUT_USEC so that a Type=notify start does not time out meanwhile; READY=1
    comes once serve can fire). None when serve was stopped meanwhile (SIGTERM, Ctrl-C)."""
    waited_since = clock.monotonic()
    attempt = 0
    while True:
        try:
            store = open_history(locations.db, clock, tasks_file=locations.tasks_file)
        except DatabaseUnavailableError as exc:
            if attempt == 0:
                log.error(
                    "%s; serve waits for it, retrying with back-off (stop it with Ctrl-C or"
                    " SIGTERM)",
                    exc.message,
                )
            delay = START_RETRY[min(attempt, len(START_RETRY) - 1)]
            attempt += 1
            systemd.send(
                "STATUS=waiting for the history database: " + exc.message,
                f"EXTEND_TIMEOUT_USEC={round((delay + START_EXTEND) * 1_000_000)}",
            )
            if clock.sleep(delay, wake=stopping):
                return None
            continue
        if attempt:
            log.info(
                "the history database %s is reachable: starting (waited %s)",
                masked(locations.db),
                timefmt.span(clock.monotonic() - waited_since),
            )
        return store


def _report_abandoned(abandoned: list[Run], loaded: taskfile.TaskFile, events: RunEvents) -> None:
    fanout = EventFanout(events)
    for run in abandoned:
        log.warning(
            "run %s of %s was left running by a serve that stopped unexpectedly: abandoned",
            run.id,
            run.task,
        )
        task = loaded.tasks.get(run.task)
        if task is not None:
            fanout.run_finished(task, run, final=True)


def _run_until_stopped(
    scheduler: Scheduler,
    systemd: SystemdNotifier,
    locations: Locations,
    count: int,
    on_ready: Callable[[Scheduler], None] | None,
) -> None:
    """Start the scheduler (catch-up, every task's first slot), say READY=1, run it until it
    is stopped.

    READY=1 means able to fire (README, "Running serve under systemd"): `systemctl start`
    returns once every task's next slot is known and catch-up is decided, not before (at
    100,000 tasks that planning took longer than the load).
    """
    scheduler.start()
    # The load's garbage is free now; glibc would keep its pages for serve's life.
    trim_heap()
    systemd.ready(timefmt.counted(count, "task") + " loaded")
    log.info(
        "cronctl serve %s started (pid %d): %s from %s, history in %s",
        __version__,
        os.getpid(),
        timefmt.counted(count, "task"),
        locations.tasks_file,
        masked(locations.db),
    )
    if count == 0:
        # A first start has no tasks yet: say what to do next; serve watches the file anyway.
        log.info(
            "no tasks yet: add one with `cronctl add NAME SCHEDULE COMMAND` (or edit %s);"
            " serve picks it up within 2 s",
            locations.tasks_file,
        )
    scheduler.upkeep.tell_status(scheduler.status_line)
    if on_ready is not None:
        on_ready(scheduler)
    scheduler.run()


def _definitions_once_ready(
    recorder: Recorder,
    loaded: taskfile.TaskFile,
    on_ready: Callable[[Scheduler], None] | None,
) -> Callable[[Scheduler], None]:
    """`on_ready`, after the digests of the tasks are handed to the background writer: after
    READY=1, since computing them (0.3 s at 100,000 tasks) would delay it on the same cores;
    held once, so that serve does not keep the first load's tasks past a reload."""
    pending = [tuple(loaded.tasks.values())]

    def ready(scheduler: Scheduler) -> None:
        recorder.task_definitions(pending.pop())
        if on_ready is not None:
            on_ready(scheduler)

    return ready


def _reloaded(
    runs: RunPipeline,
    on_reload: Callable[[taskfile.TaskFile], None] | None,
    store: History,
    recorder: Recorder,
) -> Callable[[taskfile.TaskFile], None]:
    """Return the reload hook: the notifier follows the new [defaults.smtp], the claims the
    new overlap policies, the history the tasks' digests, then `on_reload`."""

    def hook(loaded: taskfile.TaskFile) -> None:
        runs.reload(loaded.defaults.smtp, loaded.secret_variables)
        overlap_across_hosts(store, loaded.tasks.values())
        recorder.task_definitions(loaded.tasks.values())
        if on_reload is not None:
            on_reload(loaded)

    return hook


class Signals:
    """Turns signal numbers into scheduler requests; remembers those that came before the
    scheduler existed (during start-up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scheduler: Scheduler | None = None
        self._early: list[int] = []
        self.stopping = threading.Event()  # SIGTERM or SIGINT before the scheduler existed

    def attach(self, scheduler: Scheduler) -> None:
        with self._lock:
            self._scheduler = scheduler
            early, self._early = self._early, []
        for number in early:
            self._apply(scheduler, number)

    def received(self, number: int) -> None:
        with self._lock:
            scheduler = self._scheduler
            if scheduler is None:
                self._early.append(number)
                if number in (signal.SIGTERM, signal.SIGINT):
                    self.stopping.set()
                return
        self._apply(scheduler, number)

    @staticmethod
    def _apply(scheduler: Scheduler, number: int) -> None:
        if number == signal.SIGHUP:
            log.info("SIGHUP: reloading the task file")
            scheduler.request_reload()
        elif number == signal.SIGUSR1:
            scheduler.request_report()
        elif number in (signal.SIGTERM, signal.SIGINT):
            name = signal.Signals(number).name
            if scheduler.stop_requested:
                log.warning("%s again: stopping running jobs now", name)
            else:
                log.info("%s: shutting down", name)
            scheduler.request_stop()
