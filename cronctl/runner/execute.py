"""One truthful record per attempt: the layer between a task and `run_process`.

Whoever starts a run (serve, `run-now`), it goes through `execute`: the run row is written as
`running` before the job starts and finished with its status, exit code or signal, duration
and output. Retry decisions live here too, so serve and `run-now` agree on them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.durations import format_duration
from cronctl.errors import excerpt
from cronctl.history import RunRecorder
from cronctl.listeners import NoEvents, RunEvents
from cronctl.model import Task
from cronctl.records import CONDITION_SKIP_PREFIX, Run, RunningElsewhere, Status
from cronctl.runner.capture import spooled_output
from cronctl.runner.early import (
    BatchClaims,
    BatchFinish,
    BatchPids,
    EarlyStart,
    Finish,
    Prepared,
    Spawned,
)
from cronctl.runner.envfile import EnvFileError
from cronctl.runner.environment import inherited_environment, job_environment
from cronctl.runner.process import (
    ProcessOutcome,
    StartedJob,
    Supervision,
    run_process,
    start_process,
    supervised,
)
from cronctl.runner.requests import RunRequest, retry_request, should_retry
from cronctl.runner.status import join_reasons, status_of
from cronctl.spool import SpoolWriter

DEFAULT_KILL_GRACE = 10.0
# A `when` condition is a quick test; one that hangs must not hold the task forever.
WHEN_TIMEOUT = 60.0


class Executor:
    """Runs attempts of tasks and records them through `store` (a RunRecorder: the history
    itself for `run-now`, serve's shared connection for serve)."""

    def __init__(
        self,
        store: RunRecorder,
        *,
        clock: Clock = SYSTEM_CLOCK,
        kill_grace: float = DEFAULT_KILL_GRACE,
        environ: Mapping[str, str] | None = None,
        on_output: Callable[[str, bytes], None] | None = None,
        events: RunEvents | None = None,
        hidden_variables: frozenset[str] = frozenset(),
        spool_dir: Path | None = None,
    ) -> None:
        self.events = events or NoEvents()
        # The state folder where each running job's output is spooled for other readers
        # (cronctl/spool.py); None: not spooled (a history in memory has no other reader).
        self.spool_dir = spool_dir
        self.store = store
        self.clock = clock
        self.kill_grace = kill_grace
        self.environ = environ
        self.on_output = on_output
        # Secret variables of the task file, kept from every job and `when` condition; serve
        # replaces the set when a reload changes them.
        self.hidden_variables = hidden_variables
        self._inherited_cache: tuple[Mapping[str, str], frozenset[str], dict[str, str]] | None = (
            None
        )

    def _inherited(self) -> Mapping[str, str] | None:
        """The given environment filtered once for every job (not each run: 43 µs a run,
        measured for issue 18), again only when the hidden variables change; None when jobs
        inherit this process's own environment, which may change."""
        if self.environ is None:
            return None
        cached = self._inherited_cache
        if (
            cached is None
            or cached[0] is not self.environ
            or cached[1] is not self.hidden_variables
        ):
            filtered = inherited_environment(self.environ, self.hidden_variables)
            cached = (self.environ, self.hidden_variables, filtered)
            self._inherited_cache = cached
        return cached[2]

    def begin(self, request: RunRequest) -> int:
        """Write the `running` row; for a scheduled slot this is the exactly-once claim."""
        return self.store.start_run(
            request.task.name,
            request.trigger,
            attempt=request.attempt,
            scheduled_at=request.scheduled_at,
            started_at=self.starts_at([request]),
        )

    @property
    def claims_in_batches(self) -> bool:
        """Whether `begin_many` can claim several runs in one transaction."""
        return isinstance(self.store, BatchClaims)

    def begin_many(self, requests: Sequence[RunRequest]) -> Sequence[int | RunningElsewhere | None]:
        """Write the `running` rows of several runs in one transaction (when
        `claims_in_batches`): their ids in order, None for a slot that already has a run,
        RunningElsewhere for a claim left to the host where the task runs (a PostgreSQL
        history's `queue` and `replace` tasks).
        Raises StoreError when none could be written."""
        assert isinstance(self.store, BatchClaims)
        return self.store.start_runs(
            [
                (request.task.name, request.trigger, request.attempt, request.scheduled_at)
                for request in requests
            ],
            started_at=self.starts_at(requests),
        )

    def starts_at(self, requests: Sequence[RunRequest]) -> datetime:
        """The start the claims of `requests` record: now, or the latest of their slots when
        serve claims them before their instant (the end records the spawn's own time)."""
        return max([self.clock.now(), *(r.scheduled_at for r in requests if r.scheduled_at)])

    def prepare_early(self, request: RunRequest, run_id: int) -> Prepared | None:
        """The claimed run `run_id`'s environment and spool, for `start_prepared`; None when
        its job starts in `execute` as before: a `when` condition runs first, or the env_file
        cannot be read (the error is recorded there)."""
        if request.check_when and request.task.when:
            return None
        try:
            env = self._environment(request, run_id)
        except EnvFileError:
            return None
        return env, self._spool(run_id)

    def start_prepared(self, request: RunRequest, prepared: Prepared) -> Spawned:
        """Spawn the job `prepare_early` prepared; its `early()` is for `execute(...,
        early=...)` to watch on another thread."""
        env, spool = prepared
        return Spawned(env, spool, self._spawn(request, env, spool))

    def record_pids(self, spawned: Sequence[tuple[int, EarlyStart]]) -> None:
        """Record the pids of the jobs `start_prepared` started, `(run_id, early)` each, in one
        transaction where the store can (`BatchPids`); their threads then skip `set_pid`.

        Measured for issue 18 (docs/performance.md, "Serve's hot path after issue 18", round
        3): written by each job's thread, every pid was a turn of the group commit: its lock,
        its queue and a share of a transaction, ~20 µs of CPU a run."""
        if not isinstance(self.store, BatchPids):
            return
        pids = [
            (run_id, early.job.proc.pid)
            for run_id, early in spawned
            if isinstance(early.job, Supervision)
        ]
        if not pids:
            return
        self.store.set_pids(pids)
        for _, early in spawned:
            early.pid_recorded = isinstance(early.job, Supervision)

    def execute(
        self, request: RunRequest, run_id: int | None = None, early: EarlyStart | None = None
    ) -> Run:
        """Run one attempt (after its `when` condition) and return the finished record;
        with `early`, watch the job `start_prepared` started for the claimed `run_id`."""
        if run_id is None:
            run_id = self.begin(request)
        try:
            return self._attempt(request, run_id, early)
        except BaseException as exc:
            # Whatever stops us (a listener, the output stream, Ctrl-C in a bad moment), the
            # row must not stay `running` for ever: that would read as a job still going.
            self._close_unfinished(run_id, exc)
            raise

    def _close_unfinished(self, run_id: int, exc: BaseException) -> None:
        try:
            if self.store.get_run(run_id).status == Status.RUNNING:
                self.store.finish_run(
                    run_id,
                    status=Status.INTERRUPTED,
                    finished_at=self.clock.now(),
                    reason=f"cronctl stopped recording this run: {type(exc).__name__}: {exc}",
                )
        except Exception:
            pass  # the original error is the one worth raising

    def _environment(self, request: RunRequest, run_id: int) -> dict[str, str]:
        return job_environment(
            request.task,
            run_id=run_id,
            trigger=request.trigger,
            attempt=request.attempt,
            scheduled_at=request.scheduled_at,
            last_success_at=self.store.last_success_at(request.task.name),
            base=self.environ,
            hidden=self.hidden_variables,
            inherited=self._inherited(),
        )

    def _spool(self, run_id: int) -> SpoolWriter | None:
        return None if self.spool_dir is None else SpoolWriter(self.spool_dir, run_id)

    def _attempt(self, request: RunRequest, run_id: int, early: EarlyStart | None) -> Run:
        if early is None:
            prepared = self._prepare(request, run_id)
            if isinstance(prepared, Run):
                return prepared
            env, spool = prepared
            job = None
        else:
            env, spool, job = early.env, early.spool, early.job
        try:
            return self._run_job(
                request,
                run_id,
                env,
                spool,
                job,
                pid_recorded=early is not None and early.pid_recorded,
            )
        finally:
            # The output is recorded (or the row closed by _close_unfinished): a spool would
            # only repeat it. Nothing was written to disk for a job that printed nothing.
            if spool is not None:
                spool.close()

    def _prepare(
        self, request: RunRequest, run_id: int
    ) -> Run | tuple[dict[str, str], SpoolWriter | None]:
        """The job's environment and spool, or the run's record when it ends before its job
        (an unreadable env_file, a `when` condition that says skip)."""
        task = request.task
        try:
            env = self._environment(request, run_id)
        except EnvFileError as exc:
            unusable = self.store.finish_run(
                run_id, status=Status.ERROR, finished_at=self.clock.now(), reason=str(exc)
            )
            return self._finished(request, unusable)
        if request.check_when and task.when:
            skip_reason = self._when_says_skip(task, env, request.stop)
            if skip_reason:
                skipped = self.store.finish_run(
                    run_id, status=Status.SKIPPED, finished_at=self.clock.now(), reason=skip_reason
                )
                return self._finished(request, skipped)
        return env, self._spool(run_id)

    def _spawn(
        self, request: RunRequest, env: dict[str, str], spool: SpoolWriter | None
    ) -> StartedJob | ProcessOutcome:
        task = request.task
        on_output = self.on_output
        if spool is not None:
            on_output = spooled_output(spool, on_output)
        return start_process(
            task.command,
            shell=task.shell,
            cwd=task.cwd,
            env=env,
            timeout=task.timeout,
            kill_grace=self.kill_grace,
            stop=request.stop,
            on_output=on_output,
            clock=self.clock,
            nice=task.nice,
            limits=task.limits,
            pass_fds=request.inherit_fds,
        )

    def _run_job(
        self,
        request: RunRequest,
        run_id: int,
        env: dict[str, str],
        spool: SpoolWriter | None,
        job: Supervision | ProcessOutcome | None,
        *,
        pid_recorded: bool = False,
    ) -> Run:
        task = request.task
        told = False

        def started(pid: int | None) -> None:
            # The listeners (serve's `run started` line, the notifier) hear of the start once
            # the process exists, from what we know, not from a read of the row: before the
            # spawn every millisecond is lateness (docs/performance.md, issue 18).
            nonlocal told
            told = True
            self.events.run_started(task, _started_run(request, run_id, self.clock.now(), pid))

        def spawned(pid: int) -> None:
            if not pid_recorded:
                self.store.set_pid(run_id, pid)
            started(pid)

        if job is None:
            job = supervised(self._spawn(request, env, spool))
        outcome = job if isinstance(job, ProcessOutcome) else job.run(spawned)
        if not told:  # the job never started: its start is said all the same, then its end
            started(None)
        return self._record_outcome(request, run_id, outcome)

    def _record_outcome(self, request: RunRequest, run_id: int, outcome: ProcessOutcome) -> Run:
        end = self._end_of(request, run_id, outcome)
        fields = end._asdict()
        del fields["run_id"]
        return self._finished(request, self.store.finish_run(run_id, **fields))

    def _end_of(self, request: RunRequest, run_id: int, outcome: ProcessOutcome) -> Finish:
        """The end to record for an attempt that ended with `outcome`."""
        task = request.task
        status, reason = status_of(outcome, task.limits)
        if status == Status.TIMED_OUT:
            reason = f"timed out after {format_duration(task.timeout or 0)}"
        elif status == Status.INTERRUPTED:
            # run_process reports `stopped` only for a stop event it was given: request.stop.
            assert request.stop is not None
            reason = request.stop.reason
        return Finish(
            run_id,
            status,
            outcome.finished_at,
            round(outcome.duration * 1000),
            outcome.exit_code,
            outcome.signal,
            join_reasons(reason, outcome.note),
            outcome.stdout,
            outcome.stderr,
            outcome.started_at,
        )

    # -- a job watched by serve's supervising thread (runner/supervisor.py) ----------------

    def tell_started(self, request: RunRequest, run_id: int, pid: int) -> None:
        """Tell the listeners of the start of a job `start_prepared` started, whose pid is
        recorded, and which serve's supervising thread watches."""
        self.events.run_started(request.task, _started_run(request, run_id, self.clock.now(), pid))

    def finish_watched(
        self, ends: Sequence[tuple[RunRequest, int, EarlyStart, ProcessOutcome]]
    ) -> list[Run | Exception]:
        """Record how the watched jobs of `ends` (`(request, run_id, early, outcome)` each)
        ended, in one transaction where the store can (`BatchFinish`), and tell the listeners
        as `execute` does: each finished record, or the error that stopped it (its row then
        closed as `execute` closes it)."""
        records = [self._end_of(request, run_id, outcome) for request, run_id, _, outcome in ends]
        written: list[Run | Exception]
        if isinstance(self.store, BatchFinish):
            written = self.store.finish_runs(records)
        else:
            written = [_finish_one(self.store, end) for end in records]
        results: list[Run | Exception] = []
        for (request, run_id, early, _), run in zip(ends, written, strict=True):
            if early.spool is not None:
                early.spool.close()
            try:
                if isinstance(run, Exception):
                    raise run
                results.append(self._finished(request, run))
            except Exception as exc:
                self._close_unfinished(run_id, exc)
                results.append(exc)
        return results

    def abandon_watched(self, run_id: int, early: EarlyStart, exc: BaseException) -> None:
        """The watch of `early`'s job failed in cronctl (a callback raised; the job is killed
        and reaped): close its spool and its row, as `execute` does when it raises."""
        if early.spool is not None:
            early.spool.close()
        self._close_unfinished(run_id, exc)

    def _finished(self, request: RunRequest, run: Run) -> Run:
        final = not should_retry(run, request.retry_limit) or bool(
            request.stop and request.stop.is_set()
        )
        self.events.run_finished(request.task, run, final=final)
        return run

    def _when_says_skip(
        self, task: Task, env: Mapping[str, str], stop: threading.Event | None
    ) -> str | None:
        outcome = run_process(
            task.when or "true",
            shell=task.shell,
            cwd=task.cwd,
            env=env,
            timeout=WHEN_TIMEOUT,
            kill_grace=1.0,
            stop=stop,
            clock=self.clock,
        )
        # The reason names the condition: `run-now` prints it as it is ("skipped: ..."), and
        # `history` shows it beside the skipped run.
        condition = f"{CONDITION_SKIP_PREFIX}`{excerpt(task.when or 'true')}`"
        if outcome.start_error:
            return f"{condition} could not start: {outcome.start_error}"
        if outcome.timed_out:
            return f"{condition} did not finish within {WHEN_TIMEOUT:.0f}s"
        if outcome.exit_code != 0:
            if outcome.exit_code is not None:
                return f"{condition} exited {outcome.exit_code}"
            return f"{condition} was killed by signal {outcome.signal}"
        return None

    def run_with_retries(self, request: RunRequest) -> list[Run]:
        """Run the attempts of one trigger in the foreground: the first, then retries after
        `retry_delay` doubling each time. Returns every attempt's record."""
        runs = [self.execute(request)]
        while should_retry(runs[-1], request.retry_limit):
            attempt = runs[-1].attempt + 1
            delay = request.task.retry_delay_for(attempt)
            if self.clock.sleep(delay, wake=request.stop) or (
                request.stop and request.stop.is_set()
            ):
                break
            # The caller holds the run's locks across its attempts: each job inherits them.
            retry = dataclasses.replace(
                retry_request(request, attempt), inherit_fds=request.inherit_fds
            )
            runs.append(self.execute(retry))
        return runs


def _finish_one(store: RunRecorder, end: Finish) -> Run | Exception:
    fields = end._asdict()
    del fields["run_id"]
    try:
        return store.finish_run(end.run_id, **fields)
    except Exception as exc:
        return exc


def _started_run(request: RunRequest, run_id: int, now: datetime, pid: int | None) -> Run:
    """The record of a run just started, as the listeners hear of it."""
    return Run(
        id=run_id,
        task=request.task.name,
        trigger=request.trigger,
        attempt=request.attempt,
        scheduled_at=request.scheduled_at,
        started_at=now,
        finished_at=None,
        duration_ms=None,
        status=Status.RUNNING,
        exit_code=None,
        signal=None,
        pid=pid,
        reason=None,
    )
