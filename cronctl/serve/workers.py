"""Runs started by the scheduler, through the runner's Executor.

A claimer thread claims each run (Executor.begin writes the `running` row: for a scheduled
slot this insert is the exactly-once guarantee, enforced by a unique index) and, once the
claim is committed, spawns its job; one supervising thread (runner/supervisor.py) watches
every job, and one finisher thread records their ends and hands each finished record back to
the loop through `done`. A run whose job is not spawned ahead (a `when` condition, an env
file that cannot be read) or whose pid was not recorded with its batch runs on a thread of its
own, as before. The loop itself never waits for a job or for the database.
"""

from __future__ import annotations

import _thread
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cronctl.errors import DatabaseUnavailableError, SlotTakenError, StoreError
from cronctl.records import Run, RunningElsewhere, Status
from cronctl.runner.early import EarlyStart, Prepared, Spawned
from cronctl.runner.execute import Executor
from cronctl.runner.locks import HeldLocks
from cronctl.runner.outcome import ProcessOutcome
from cronctl.runner.process import Supervision
from cronctl.runner.requests import RunRequest
from cronctl.runner.supervisor import Supervisor

log = logging.getLogger("cronctl.serve")

SHUTDOWN_REASON = "serve was stopped"
CLAIM_CHUNK = 32
"""Runs claimed in a row before their threads start (see ThreadLauncher)."""
REPLACED_REASON = "replaced by a newer run"


@dataclass(eq=False)
class Handle:
    """One run the scheduler decided to start."""

    request: RunRequest
    chain: frozenset[str] = frozenset()  # tasks of the `after` chain that led here (no cycles)
    run_id: int | None = None  # known once the worker claimed the run
    locks: HeldLocks = field(default_factory=HeldLocks)  # the shared locks held for it
    # The host where a run of the task went on when this one was claimed (a PostgreSQL
    # history's `queue` and `replace` tasks): nothing was written, the claim is tried again.
    elsewhere: str | None = None

    @property
    def task_name(self) -> str:
        return self.request.task.name

    def stop(self, reason: str) -> None:
        """Ask the job to end (the runner stops its process group; Executor records
        `interrupted` with `reason`)."""
        if self.request.stop is not None:
            self.request.stop.stop(reason)


@dataclass
class Completion:
    handle: Handle
    run: Run | None  # None: not run (slot already taken, or could not be recorded)


Done = Callable[[Completion], None]


class ThreadLauncher:
    """Claims runs on one thread, in order, spawns their jobs, then watches them all on one
    supervising thread and records their ends on one finisher thread.

    Measured for issue 18, round 4 (docs/performance.md, "Round 4: one supervising thread"):
    a thread per job cost its start, the interpreter lock handed between 20 and more threads
    on 2 cores, and a poll of its own; one thread for all of them cut serve's CPU a run by a
    fifth. `shared_supervisor=False` keeps a thread per run (the way every run went before).

    Measured on 2 CPUs: with a thousand job threads each claiming its own row (a burst of
    1,000 runs due at once), they queue on the database and the interpreter lock, and the last
    job started ~40 % later than with one claimer thread. The claimer writes up to CLAIM_CHUNK
    claims in a row and then starts their threads: claims interleaved with running threads
    took ~0.5 ms each instead of ~0.08 ms, which put the median of 20 simultaneous starts at
    14 ms instead of 9 ms.
    Job threads are started with `_thread` directly: `threading.Thread.start` waits until the
    new thread runs (an interpreter-lock hand-over per job, ~0.8 ms each under load), which the
    claimer must not pay.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        say: Callable[..., None] | None = None,
        shared_supervisor: bool = True,
    ) -> None:
        self.executor = executor
        self.say = say
        self._pending: deque[tuple[Handle, Done]] = deque()
        self._cond = threading.Condition()
        self._claimer: threading.Thread | None = None
        self._supervisor = Supervisor(executor.clock) if shared_supervisor else None
        self._ends: deque[_End] = deque()
        self._ends_cond = threading.Condition()
        self._finisher: threading.Thread | None = None

    def launch(self, handles: list[Handle], done: Done) -> None:
        with self._cond:
            self._pending.extend((handle, done) for handle in handles)
            self._cond.notify()
            if self._claimer is None:
                self._claimer = threading.Thread(
                    target=self._claim_loop, name="cronctl-claimer", daemon=True
                )
                self._claimer.start()

    def _claim_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch = list(self._pending)
                self._pending.clear()
            spawned: list[tuple[Handle, Done, EarlyStart | None]] = []
            ready: list[tuple[Handle, Done, Prepared | None]] = []  # claimed, not spawned
            for start in range(0, len(batch), CLAIM_CHUNK):
                if ready and not self._ahead_of(ready[0][0]):
                    spawned.extend(self._spawn_ready(ready))
                    ready = []
                chunk = batch[start : start + CLAIM_CHUNK]
                # A chunk's claims are written before its jobs are spawned.
                if self.executor.claims_in_batches:
                    claimed = self._claim_chunk(chunk)
                else:
                    claimed = [item for item in chunk if self._claim(*item)]
                ready.extend((handle, done, self._prepare(handle)) for handle, done in claimed)
            spawned.extend(self._spawn_ready(ready))
            self._record_pids(spawned)
            for handle, done, early in spawned:
                if (
                    self._supervisor is not None
                    and early is not None
                    and early.pid_recorded
                    and isinstance(early.job, Supervision)
                ):
                    self._watch(handle, done, early, early.job, self._supervisor)
                else:
                    self._start(handle, done, early)

    def _record_pids(self, spawned: list[tuple[Handle, Done, EarlyStart | None]]) -> None:
        """The pids of the batch's jobs, in one transaction, before their threads start."""
        started = [
            (handle.run_id, early)
            for handle, _, early in spawned
            if early is not None and handle.run_id is not None
        ]
        try:
            self.executor.record_pids(started)
        except Exception:  # each thread records its own pid then, as without this
            log.debug("the pids of %d runs not recorded together", len(started), exc_info=True)

    def _start(self, handle: Handle, done: Done, early: EarlyStart | None) -> None:
        """Start the thread that watches the job spawned for `handle` (or spawns it)."""
        try:
            _thread.start_new_thread(self._execute, (handle, done, early))
        except RuntimeError as exc:  # "can't start new thread": resource limits
            log.error(
                "run %s of %s: cannot start a thread for it: %s",
                handle.run_id,
                handle.task_name,
                exc,
            )
            if early is not None:
                early.kill()
            self._abandon(handle, exc)
            done(Completion(handle, None))

    def _ahead_of(self, handle: Handle) -> bool:
        """Whether `handle`'s slot is still to come: the loop fired it ahead (FIRE_AHEAD)."""
        at = handle.request.scheduled_at
        return at is not None and at > self.executor.clock.now()

    def _prepare(self, handle: Handle) -> Prepared | None:
        """The claimed run's environment and spool, made before its instant when it was
        fired ahead; None: its job starts on its own thread (which records what fails)."""
        assert handle.run_id is not None
        try:
            return self.executor.prepare_early(handle.request, handle.run_id)
        except Exception:
            log.debug("run %s: not prepared early", handle.run_id, exc_info=True)
            return None

    def _spawn_ready(
        self, ready: list[tuple[Handle, Done, Prepared | None]]
    ) -> list[tuple[Handle, Done, EarlyStart | None]]:
        """Spawn the claimed runs' jobs in slot order, none before its slot's instant."""
        spawned: list[tuple[Handle, Done, Spawned | None]] = []
        clock = self.executor.clock
        for handle, done, prepared in ready:
            at = handle.request.scheduled_at
            if at is not None and (wait := (at - clock.now()).total_seconds()) > 0:
                clock.sleep(wait, wake=handle.request.stop)  # stopped: recorded, not spawned
            spawned.append((handle, done, self._spawn_early(handle, prepared)))
        # Their watches (pipe objects, captures, `Supervision`) after the last spawn.
        return [(h, d, None if s is None else s.early()) for h, d, s in spawned]

    def _spawn_early(self, handle: Handle, prepared: Prepared | None) -> Spawned | None:
        """Spawn the claimed run's job on the claimer, in slot order.

        Measured for issue 18 (docs/performance.md, "Serve's hot path after issue 18"): with
        each job thread spawning its own process, 500 threads starting at once on 2 CPUs
        interleaved their spawns with each other's start-up work; spawned here while those
        threads already ran, each spawn waited for the interpreter lock behind them and the
        last of the burst started later still. The jobs of one batch are all spawned before
        the first of their threads starts."""
        if prepared is None:
            return None
        try:
            return self.executor.start_prepared(handle.request, prepared)
        except Exception:  # prepared again on the job's thread, which records what fails
            log.debug("run %s: not spawned early", handle.run_id, exc_info=True)
            return None

    def _claim_chunk(self, chunk: list[tuple[Handle, Done]]) -> list[tuple[Handle, Done]]:
        """Claim the runs of `chunk` in one transaction; return those claimed, in order.

        Measured for issue 18: a claim a transaction cost 75 µs of the claimer's CPU each,
        1.5 ms a tick of 20 runs, while the runs behind it waited. No job starts before the
        transaction that holds its claim is committed."""
        live: list[tuple[Handle, Done]] = []
        for handle, done in chunk:
            if handle.request.stop is not None and handle.request.stop.is_set():
                done(Completion(handle, None))
            else:
                live.append((handle, done))
        if not live:
            return []
        try:
            run_ids = self.executor.begin_many([handle.request for handle, _ in live])
        except StoreError as exc:
            for handle, done in live:
                self._not_recorded(handle, exc)
                done(Completion(handle, None))
            return []
        except Exception:
            log.exception("%d runs not started", len(live))
            for handle, done in live:
                done(Completion(handle, None))
            return []
        claimed: list[tuple[Handle, Done]] = []
        for (handle, done), run_id in zip(live, run_ids, strict=True):
            if run_id is None:
                self._slot_taken(handle)
                done(Completion(handle, None))
            elif isinstance(run_id, RunningElsewhere):
                handle.elsewhere = run_id.host
                done(Completion(handle, None))
            else:
                handle.run_id = run_id
                claimed.append((handle, done))
        return claimed

    def _slot_taken(self, handle: Handle) -> None:
        log.debug(
            "task %s: slot %s already has a run; not run again",
            handle.task_name,
            handle.request.scheduled_at,
        )

    def _not_recorded(self, handle: Handle, exc: StoreError) -> None:
        # Without the row there is no exactly-once claim: the slot is not run. The database
        # out of reach is said once an outage, by serve/outage.py, which keeps the slot.
        if isinstance(exc, DatabaseUnavailableError):
            log.debug("task %s: not started: %s", handle.task_name, exc.message)
            return
        message = "task %s: not started (%s), the run cannot be recorded: %s"
        args = (handle.task_name, handle.request.trigger, exc.message)
        if self.say is not None:
            self.say("claim", logging.ERROR, message, *args)
        else:
            log.error(message, *args)

    def _claim(self, handle: Handle, done: Done) -> bool:
        request = handle.request
        if request.stop is not None and request.stop.is_set():
            done(Completion(handle, None))
            return False
        try:
            handle.run_id = self.executor.begin(request)
        except SlotTakenError:
            self._slot_taken(handle)
            done(Completion(handle, None))
            return False
        except StoreError as exc:
            self._not_recorded(handle, exc)
            done(Completion(handle, None))
            return False
        except Exception:
            log.exception("task %s: not started", handle.task_name)
            done(Completion(handle, None))
            return False
        return True

    def _abandon(self, handle: Handle, exc: BaseException) -> None:
        """Close the run's row after cronctl itself failed around it (best effort: a row left
        `running` is marked `abandoned` at the next start anyway)."""
        run_id = handle.run_id
        if run_id is None:
            return  # never claimed: there is no row to close
        try:
            if self.executor.store.get_run(run_id).status != Status.RUNNING:
                return  # the Executor recorded its end before the failure
            self.executor.store.finish_run(
                run_id,
                status=Status.ERROR,
                finished_at=self.executor.clock.now(),
                reason=f"cronctl failed around the run: {exc}",
            )
        except Exception:  # the database itself is the trouble: said elsewhere
            pass

    def _execute(self, handle: Handle, done: Done, early: EarlyStart | None) -> None:
        try:
            run = self.executor.execute(handle.request, handle.run_id, early)
        except StoreError as exc:
            log.error("run %s of %s: %s", handle.run_id, handle.task_name, exc.message)
            self._abandon(handle, exc)
            done(Completion(handle, None))
            return
        except BaseException as exc:
            log.exception("run %s of %s failed inside cronctl", handle.run_id, handle.task_name)
            self._abandon(handle, exc)
            done(Completion(handle, None))
            return
        done(Completion(handle, run))

    # -- the shared supervisor and the finisher ------------------------------------------------

    def _watch(
        self,
        handle: Handle,
        done: Done,
        early: EarlyStart,
        job: Supervision,
        supervisor: Supervisor,
    ) -> None:
        """Hand the job spawned for `handle` to the supervising thread; its end comes back
        to the finisher thread."""
        assert handle.run_id is not None
        try:
            supervisor.start()
            self._start_finisher()
        except RuntimeError as exc:  # "can't start new thread": resource limits
            log.error("run %s of %s: cannot watch it: %s", handle.run_id, handle.task_name, exc)
            early.kill()
            self._abandon(handle, exc)
            done(Completion(handle, None))
            return
        try:
            self.executor.tell_started(handle.request, handle.run_id, job.proc.pid)
        except BaseException as exc:  # a listener failed: as a job thread would, end the run
            log.exception("run %s of %s failed inside cronctl", handle.run_id, handle.task_name)
            early.kill()
            self.executor.abandon_watched(handle.run_id, early, exc)
            self._abandon(handle, exc)
            done(Completion(handle, None))
            return
        supervisor.add(job, _End(self, handle, done, early))

    def _start_finisher(self) -> None:
        """Start the finisher thread unless it runs (RuntimeError when it cannot start)."""
        with self._ends_cond:
            if self._finisher is None:
                finisher = threading.Thread(
                    target=self._finish_loop, name="cronctl-finisher", daemon=True
                )
                finisher.start()
                self._finisher = finisher

    def _ended(self, end: _End) -> None:
        with self._ends_cond:
            self._ends.append(end)
            self._ends_cond.notify()

    def _finish_loop(self) -> None:
        ends = self._ends
        while True:
            with self._ends_cond:
                while not ends:
                    self._ends_cond.wait()
                batch = list(ends)
                ends.clear()
            try:
                self._finish(batch)
            except Exception:  # `done` failed: said; the finisher goes on with later ends
                log.exception("the ends of %d runs not all handed back", len(batch))

    def _finish(self, batch: list[_End]) -> None:
        """Record the ends of `batch` together (one transaction where the store can: the
        ends that wait together are committed together, as the job threads' were by the
        group commit) and hand each back to the loop."""
        watched: list[tuple[_End, ProcessOutcome]] = []
        for end in batch:
            if isinstance(end.outcome, ProcessOutcome):
                watched.append((end, end.outcome))
            else:
                self._failed_watch(end)
        if not watched:
            return
        results = self.executor.finish_watched(
            [(e.handle.request, e.run_id, e.early, outcome) for e, outcome in watched]
        )
        for (end, _), run in zip(watched, results, strict=True):
            handle = end.handle
            if isinstance(run, Run):
                end.done(Completion(handle, run))
                continue
            if isinstance(run, StoreError):
                log.error("run %s of %s: %s", handle.run_id, handle.task_name, run.message)
            else:
                log.error(
                    "run %s of %s failed inside cronctl",
                    handle.run_id,
                    handle.task_name,
                    exc_info=run,
                )
            self._abandon(handle, run)
            end.done(Completion(handle, None))

    def _failed_watch(self, end: _End) -> None:
        """The watch of a job failed (a callback raised; the job is killed and reaped)."""
        handle, error = end.handle, end.outcome
        assert isinstance(error, BaseException)
        log.error(
            "run %s of %s failed inside cronctl", handle.run_id, handle.task_name, exc_info=error
        )
        self.executor.abandon_watched(end.run_id, end.early, error)
        self._abandon(handle, error)
        end.done(Completion(handle, None))


class _End:
    """A watched job's end on its way to the finisher: called by the supervisor (an `Ended`)."""

    __slots__ = ("done", "early", "handle", "launcher", "outcome")

    def __init__(self, launcher: ThreadLauncher, handle: Handle, done: Done, early: EarlyStart):
        self.launcher = launcher
        self.handle = handle
        self.done = done
        self.early = early
        self.outcome: ProcessOutcome | BaseException | None = None

    @property
    def run_id(self) -> int:
        assert self.handle.run_id is not None
        return self.handle.run_id

    def __call__(self, outcome: ProcessOutcome | BaseException) -> None:
        self.outcome = outcome
        self.launcher._ended(self)
