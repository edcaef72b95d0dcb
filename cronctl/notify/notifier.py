"""The Notifier: a RunEvents listener that sends notifications off the caller's thread.

`run_started` and `run_finished` only queue a job and return: they never block and never
raise. Jobs wait in one lane per task, and a small pool of worker threads (WORKERS) serves
the lanes in turn, one job at a time: a task's notifications go out in order (its
healthchecks /start ping before its end ping), while a task whose endpoint hangs holds one
worker, not everyone's notifications. A worker decides the event from the history
(`cronctl.notify.rules`) and sends each channel in its own thread under a hard deadline of
the task's `notify.timeout` (plus a small grace). A channel that fails or hangs is logged and
recorded on the run (`notify_error`); it never fails the run or stops serve. At most
`queue_size` jobs wait, at most `lane_size` of one task; past that, new ones are dropped with
a log line. The lanes and their workers are `cronctl.notify.lanes`.

The workers read and write the history through the notifier's own connection to the
database, opened from its path on first use (a HistoryStore is one sqlite3 connection: they
take turns). A failure can instead be recorded through the caller's writer (`record_error`).
Both are `cronctl.notify.history_link`.

Missed runs are coalesced: while a `missed` notification of a task waits in its lane,
further missed runs of that task are counted into it instead of queued (serve can record up
to 100 missed slots at start-up; that is one or two messages, not a hundred).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.errors import CronctlError
from cronctl.locations import host_name
from cronctl.model import NotifySettings, SmtpSettings, Task
from cronctl.notify import rules
from cronctl.notify.channels import (
    SENDERS,
    ChannelContext,
    ChannelError,
    channels_for,
    find_sendmail,
)
from cronctl.notify.history_link import HistoryLink
from cronctl.notify.lanes import Lanes, Outcome
from cronctl.notify.message import Delivery
from cronctl.records import FAILURE_STATUSES, Output, Run, Status, Trigger
from cronctl.timefmt import counted

DEFAULT_QUEUE_SIZE = 1000
# Jobs one task may have waiting: a task that fires faster than its notifications go out (a
# slow endpoint, retries) drops its own newest ones, and cannot fill the queue for everyone.
DEFAULT_LANE_SIZE = 100
# Tasks whose notifications are sent at the same time. Each send is bounded by its timeout, so
# a few hanging endpoints delay the others by at most that, and only when WORKERS of them hang.
WORKERS = 4
# Seconds a channel may overrun its timeout (a process being killed, a socket closing)
# before the worker gives up on it and moves on.
DEADLINE_GRACE = 2.0
_REMEMBERED_START_ERRORS = 1000
HISTORY_ROWS = 200  # latest runs read to measure a failure streak
FIND_SENDMAIL = "find"


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    ok: bool
    detail: str


@dataclass
class _Job:
    task: Task
    run: Run
    phase: str  # "start" or "finish"
    final: bool
    missed_count: int = 1


def _stderr_log(message: str) -> None:

    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class Notifier:
    """Sends the notifications of runs (README, "Notifications"). See the module's docstring.

    `database`: the path of the history database, which the workers open on first use to
    read failure streaks and record failures; None reads and records nothing (notify-test).
    `smtp`: [defaults.smtp] (`taskfile.defaults.smtp`), None without one: then sendmail (serve
    reassigns `smtp` on reload). `log`: where failures are reported, one line each (default:
    stderr). `synchronous`: do the work on the caller's thread (tests, notify-test). `sendmail`: the
    program, None for none (default: looked up on PATH). `environ`: for the notify command's
    environment and the SMTP password variable (default: os.environ). `record_error(run_id,
    message)`: how to record a failure on the run (default: `record_notify_error` through the
    worker's own connection); serve can route it through its own writer.
    """

    def __init__(
        self,
        database: str | os.PathLike[str] | None = None,
        *,
        smtp: SmtpSettings | None = None,
        log: Callable[[str], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        synchronous: bool = False,
        hostname: str | None = None,
        sendmail: str | None = FIND_SENDMAIL,
        environ: Mapping[str, str] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        lane_size: int = DEFAULT_LANE_SIZE,
        record_error: Callable[[int, str], None] | None = None,
    ) -> None:
        self.smtp = smtp  # serve may replace it when the task file is reloaded
        self.log = log if log is not None else _stderr_log
        self.clock = clock
        self.synchronous = synchronous
        self.environ = os.environ if environ is None else environ
        # The host this cronctl stands for in a shared history (CRONCTL_HOST, else the node
        # name), as its run rows say: README.md#notifications.
        self.hostname = hostname or host_name(self.environ)
        self._sendmail = find_sendmail(self.environ) if sendmail == FIND_SENDMAIL else sendmail
        self._history = HistoryLink(database, record_error)
        self._lanes: Lanes[_Job] = Lanes(  # one lane per task name
            self._handle_safely,
            workers=WORKERS,
            queue_size=queue_size,
            lane_size=lane_size,
            clock=clock,
            thread_name="cronctl-notifier",
        )
        self._start_errors: OrderedDict[int, str] = OrderedDict()
        self._start_errors_lock = threading.Lock()  # workers of other lanes use them too

    # -- RunEvents ---------------------------------------------------------------------------

    def run_started(self, task: Task, run: Run) -> None:
        try:
            if task.notify is not None and task.notify.healthchecks:
                self._submit(_Job(task, run, "start", final=False))
        except Exception as exc:  # a listener never raises
            self._log(f"notify: task '{task.name}': cannot queue the start ping: {exc}")

    def run_finished(self, task: Task, run: Run, *, final: bool) -> None:
        try:
            if task.notify is not None and task.notify.has_channels:
                self._submit(_Job(task, run, "finish", final=final))
        except Exception as exc:
            self._log(f"notify: task '{task.name}': cannot queue the notification: {exc}")

    # -- life cycle ----------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> bool:
        """Send what is queued (waiting up to `timeout` seconds), then stop the workers.

        Returns False when notifications were still pending at the deadline (they are logged
        as lost). Later events are dropped with a log line.
        """
        flushed = self._lanes.close(timeout)
        if not flushed:
            pending = self._lanes.pending
            self._log(
                f"notify: gave up waiting at shutdown; {counted(pending, 'notification')} not sent"
            )
        else:
            self._history.close()
        return flushed

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------

    def deliver(self, delivery: Delivery, channels: Sequence[str]) -> list[ChannelResult]:
        """Send `delivery` through `channels` at once, each in its own thread; wait at most
        the task's notify timeout (+ grace) and return one result per channel, in order."""
        settings = delivery.task.notify or NotifySettings()
        context = ChannelContext(
            smtp=self.smtp, sendmail=self._sendmail, environ=self.environ, clock=self.clock
        )
        results: dict[str, ChannelResult] = {}

        def send(name: str) -> None:
            try:
                detail = SENDERS[name](delivery, settings, context)
                results[name] = ChannelResult(name, True, detail)
            except ChannelError as exc:
                results[name] = ChannelResult(name, False, str(exc))
            except Exception as exc:  # a bug or an odd library error: still one line
                results[name] = ChannelResult(name, False, f"{type(exc).__name__}: {exc}")

        threads = []
        for name in channels:
            thread = threading.Thread(
                target=send, args=(name,), name=f"cronctl-notify-{name}", daemon=True
            )
            thread.start()
            threads.append((name, thread))
        deadline = self.clock.monotonic() + settings.timeout + DEADLINE_GRACE
        for _name, thread in threads:
            thread.join(max(0.0, deadline - self.clock.monotonic()))
        return [
            results.get(name)
            or ChannelResult(name, False, f"no answer within {settings.timeout}s; abandoned")
            for name, _thread in threads
        ]

    def test(self, task: Task) -> list[ChannelResult]:
        """Send a sample failure of `task` through every channel it has, now; `[]` if none.

        healthchecks gets a `/log` ping, which records the test without changing the check.
        Nothing is written to the history.
        """
        settings = task.notify
        if settings is None or not settings.has_channels:
            return []
        delivery = Delivery(
            task=task,
            run=sample_run(task, self.clock),
            phase="finish",
            event=rules.TEST,
            final=True,
            hostname=self.hostname,
        )
        names = [name for name in SENDERS if getattr(settings, name)]
        return self.deliver(delivery, names)

    # -- internals -----------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        try:
            self.log(message)
        except Exception:
            pass

    def _submit(self, job: _Job) -> None:
        if self.synchronous and not self._lanes.closed:
            self._handle_safely(job)
            return
        name = job.task.name
        missed = job.phase == "finish" and job.run.status == Status.MISSED
        submitted = self._lanes.submit(name, job, _count_missed if missed else None)
        if submitted.outcome == Outcome.CLOSED:
            self._log(f"notify: task '{name}' run {job.run.id}: notifier closed; not sent")
        elif submitted.outcome == Outcome.QUEUE_FULL:
            self._log(
                f"notify: queue full; dropped the notification of task '{name}' run {job.run.id}"
            )
        elif submitted.outcome == Outcome.LANE_FULL:
            self._log(
                f"notify: task '{name}' has {counted(submitted.waiting, 'notification')} waiting;"
                f" dropped the one of run {job.run.id}"
            )

    def _handle_safely(self, job: _Job) -> None:
        try:
            self._handle(job)
        except Exception as exc:  # never let the worker die
            self._log(
                f"notify: task '{job.task.name}' run {job.run.id}: {type(exc).__name__}: {exc}"
            )

    def _handle(self, job: _Job) -> None:
        settings = job.task.notify
        if settings is None:
            return
        event = self._event(job, settings) if job.phase == "finish" else None
        delivery = Delivery(
            task=job.task,
            run=job.run,
            phase=job.phase,
            event=event,
            final=job.final,
            hostname=job.run.host or self.hostname,
            missed_count=job.missed_count,
            reported_by=self.hostname if job.run.host not in (None, self.hostname) else None,
        )
        names = channels_for(delivery, settings)
        if not names:
            return
        failures = [r for r in self.deliver(delivery, names) if not r.ok]
        for failure in failures:
            what = f"{event} notification" if event else f"{job.phase} ping"
            self._log(
                f"notify: task '{job.task.name}' run {job.run.id}: {what}"
                f" by {failure.channel} failed: {failure.detail}"
            )
        message = "; ".join(f"{f.channel}: {f.detail}" for f in failures)
        with self._start_errors_lock:
            if job.phase == "start":
                if message:
                    self._start_errors[job.run.id] = message
                    while len(self._start_errors) > _REMEMBERED_START_ERRORS:
                        self._start_errors.popitem(last=False)
                return
            earlier = self._start_errors.pop(job.run.id, None)
        message = "; ".join(m for m in (earlier, message) if m)
        if message:
            self._record(job.run.id, message)

    def _event(self, job: _Job, settings: NotifySettings) -> str | None:
        run = job.run
        streak = 0
        needs_history = job.final and (
            (run.status in FAILURE_STATUSES and settings.after_failures > 1)
            or (run.status == Status.SUCCEEDED and "recovery" in settings.on)
        )
        if needs_history:
            try:
                streak = self._streak_before(job.task, run, settings)
            except CronctlError as exc:
                self._log(
                    f"notify: task '{job.task.name}': cannot read the history ({exc});"
                    " assuming a failure reaches the streak (it notifies) and a success ends none"
                )
                streak = settings.after_failures - 1 if run.status in FAILURE_STATUSES else 0
        return rules.decide(
            settings,
            run.status,
            final=job.final,
            streak_before=streak,
            printed=rules.printed_anything(run),
        )

    def _streak_before(self, task: Task, run: Run, settings: NotifySettings) -> int:
        # The task's latest rows whatever their status (skipped and missed rows between the
        # verdicts are skipped in Python): a bounded index range, never a long filtered walk.
        limit = max(HISTORY_ROWS, 4 * rules.history_needed(settings, task.retries))
        rows = self._history.runs(task.name, limit)
        if rows is None:
            return 0
        return rules.failure_streak(
            rules.before_trigger(rows, run), cap=max(1, settings.after_failures)
        )

    def _record(self, run_id: int, message: str) -> None:
        if run_id <= 0:
            return
        try:
            self._history.record_error(run_id, message[:2000])
        except CronctlError as exc:
            self._log(f"notify: cannot record the notification error of run {run_id}: {exc}")


def _count_missed(pending: _Job, job: _Job) -> None:
    """Count the missed run of `job` into the missed notification still waiting, which then
    names the latest slot."""
    pending.missed_count += 1
    if _later_slot(job.run, pending.run):
        pending.run, pending.task = job.run, job.task


def _later_slot(new: Run, old: Run) -> bool:
    if new.scheduled_at is None or old.scheduled_at is None:
        return new.id > old.id
    return new.scheduled_at >= old.scheduled_at


def sample_run(task: Task, clock: Clock = SYSTEM_CLOCK) -> Run:
    """A made-up failed run of `task` for `cronctl notify-test` (id 0: not in the history)."""
    now = clock.now()
    return Run(
        id=0,
        task=task.name,
        trigger=Trigger.MANUAL,
        attempt=1,
        scheduled_at=None,
        started_at=now - timedelta(seconds=1.5),
        finished_at=now,
        duration_ms=1500,
        status=Status.FAILED,
        exit_code=1,
        signal=None,
        pid=None,
        reason="a test notification from `cronctl notify-test`; the task did not run",
        stdout=Output(b"sample output\n", 14),
        stderr=Output(b"sample error: nothing is wrong, this is a test\n", 47),
    )
