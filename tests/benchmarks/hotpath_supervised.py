"""bench_hotpath.py's `--only supervised`: the step marks of serve's supervised path (issue 18).

Since round 4 serve's jobs no longer go through `Executor.begin` and a thread a job: the
claimer claims a batch in one transaction (`ThreadLauncher._claim_chunk` →
`Executor.begin_many`), prepares each claimed job (`_prepare` → `Executor.prepare_early`:
environment, spool), spawns each at its slot's instant (`_spawn_early` →
`Executor.start_prepared`: `start_process` → `posix_spawned` → `os.posix_spawn`; since round 7
the loop fires slots up to `FIRE_AHEAD` early), writes the batch's pids in one transaction
(`_record_pids`), tells the listeners (`Executor.tell_started`) and registers each job with
the supervising thread (`Supervisor.add`); the supervisor reaps it and hands its end (`_End`)
to the finisher, which writes the ends waiting together in one transaction
(`Executor.finish_watched` → `SerialStore.finish_runs`) and hands each back to the loop
(`Inbox.done`).

The real serve runs in this process (bench_hotpath.run_serve_in_process) from the home folder
(where serve under systemd runs and its tasks run by default, so that its jobs take the plain
spawn), every step above wrapped: its wall time and the calling thread's CPU per call, and
marks on each run (wall clock, by run id) give its timeline from the slot to the process and
from the exit to the row. The wrappers' own cost (~2 µs a call) is not subtracted.
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench_hotpath import run_serve_in_process, scratch_home, thread_cpu
from bench_serve import percentile, task_block
from hotpath_steps import Timings, print_paths

START_PATH = [
    ("slot", "loop woke", "slot instant → the loop wakes"),
    ("loop woke", "handed to the claimer", "loop: fire the slots due, hand them to the claimer"),
    ("handed to the claimer", "chunk begins", "claimer wakes, reaches its chunk"),
    ("chunk begins", "claimed", "claim transaction (INSERT … RETURNING × chunk, commit)"),
    ("claimed", "environment built", "environments built before it (prepare_early)"),
    ("environment built", "spawn begins", "rest of the chunk prepared, instant, spawns before"),
    ("spawn begins", "posix_spawned begins", "spawn arguments (start_process)"),
    ("posix_spawned begins", "posix_spawn begins", "pipes (os.pipe × 2)"),
    ("posix_spawn begins", "process exists", "os.posix_spawn itself (until the child's exec)"),
    ("process exists", "spawned", "pipe objects (its watch: after the batch)"),
    ("slot", "process exists", "total: slot → process exists"),
    ("spawned", "pids written", "the rest of the batch spawned, pids written (one tx)"),
    ("pids written", "told started", "listeners told (run started line, notifier)"),
    ("told started", "registered", "registered with the supervisor"),
    ("registered", "supervisor took it", "supervisor takes it (epoll register, pidfd)"),
]
END_PATH = [
    ("reaped", "watch over", "reaped → its watch over (pipes at EOF)"),
    ("watch over", "handed to the finisher", "concluded (outcome), handed to the finisher"),
    ("handed to the finisher", "finish begins", "finisher wakes, takes its batch"),
    ("finish begins", "row written", "ends of the batch written (one tx)"),
    ("reaped", "row written", "total: process reaped → row written"),
    ("row written", "handed to the loop", "listeners (run finished line, notifier)"),
    ("handed to the loop", "loop done with it", "loop drains it"),
]


def timed_marks(timings: Timings, owner: Any, name: str, step: str, run_of: Any) -> None:
    """Wrap `owner.name` as Timings.wrap does, and mark `step` and `step end` on the run that
    `run_of(args)` names (None: no mark)."""
    original = getattr(owner, name)
    durations, cpu, marks = timings.durations[step], timings.cpu[step], timings.marks

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        wall = time.time_ns()
        began, cpu_began = time.perf_counter_ns(), time.thread_time_ns()
        try:
            return original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter_ns() - began)
            cpu.append(time.thread_time_ns() - cpu_began)
            run_id = run_of(args)
            if run_id is not None:
                marks[run_id].setdefault(step, wall)
                marks[run_id].setdefault(step + " end", time.time_ns())

    setattr(owner, name, timed)


def instrument(timings: Timings) -> None:
    """Wrap each step of the supervised path (classes and modules patched: serve's own objects
    are)."""
    from cronctl.notify import notifier
    from cronctl.runner import execute, pipes, process, supervision, supervisor
    from cronctl.serve import heaps, inbox, loop, plan, starts, storage, workers
    from cronctl.serve import log as serve_log

    local = timings.local
    by_pid: dict[int, int] = {}  # a job's pid -> run id

    def current(_: Any) -> int | None:
        return getattr(local, "run_id", None)

    def run_arg(args: Any) -> int | None:
        return args[2] if len(args) > 2 else None  # (self, request, run_id, ...)

    def of_supervision(args: Any) -> int | None:
        return by_pid.get(args[0].proc.pid)

    w = timings.wrap
    # The loop.
    w(loop.Scheduler, "_fire_slots", "loop: fire the slots due (all of a wake)")
    w(loop.Scheduler, "_fire", "loop: fire one slot (request, jitter, overlap, handle)")
    w(starts.Starts, "flush", "loop: hand the wake's runs to the claimer (Starts.flush)")
    w(plan, "overdue", "loop: … next slot (plan.overdue)")
    w(heaps.SlotHeap, "schedule", "loop: … heap update (SlotHeap.schedule)")
    w(loop, "run_request", "loop: … the run's request (run_request)")
    w(starts.Starts, "start", "loop: … overlap, locks, the handle (Starts.start)")
    w(loop.Scheduler, "_completed", "loop: one completion (overlap, retry, after)")
    # The claimer: the claim, then each job's spawn.
    w(workers.ThreadLauncher, "_claim_chunk", "claimer: a chunk's claims (_claim_chunk)")
    w(storage.SerialStore, "start_runs", "claimer: … of which the transaction (start_runs)")
    w(execute.Executor, "_environment", "claimer: environment (Executor._environment)")
    w(storage.SerialStore, "last_success_at", "claimer: … of which last_success_at")
    w(execute, "job_environment", "claimer: … of which job_environment")
    w(execute.Executor, "_spool", "claimer: spool writer (Executor._spool)")
    w(process, "before_exec", "claimer: spawn arguments: before_exec")
    w(process, "takes_plain_spawn", "claimer: spawn arguments: takes_plain_spawn")
    timed_marks(timings, process, "posix_spawned", "posix_spawned", current)
    timed_marks(timings, os, "posix_spawn", "posix_spawn", current)
    timed_marks(timings, execute.Executor, "_spawn", "start_process", current)
    w(supervision.Supervision, "__init__", "claimer: Supervision built")
    w(pipes.JobPipes, "__init__", "claimer: JobPipes built")
    w(workers.ThreadLauncher, "_record_pids", "claimer: the batch's pids (_record_pids)")
    w(serve_log.RunLog, "run_started", "claimer: run started line (RunLog)")
    w(notifier.Notifier, "run_started", "claimer: notifier's start decision")
    timed_marks(timings, execute.Executor, "tell_started", "told", run_arg)
    w(workers.ThreadLauncher, "_watch", "claimer: hand one job on (_watch, all of it)")
    w(supervisor.Supervisor, "add", "claimer: Supervisor.add")
    # The supervisor.
    timed_marks(timings, supervision.Supervision, "begin", "supervisor took it", of_supervision)
    w(supervision.Supervision, "handle", "supervisor: a ready descriptor (Supervision.handle)")
    timed_marks(timings, supervision.Supervision, "_reap", "reap", of_supervision)
    w(supervision.Supervision, "advance", "supervisor: a turn (Supervision.advance)")
    timed_marks(timings, supervision.Supervision, "conclude", "conclude", of_supervision)
    w(supervision.Supervision, "_outcome", "supervisor: … of which the outcome")
    # The finisher.
    w(workers.ThreadLauncher, "_finish", "finisher: a batch of ends (_finish)")
    w(execute.Executor, "_end_of", "finisher: one end's record (_end_of)")
    w(storage.SerialStore, "finish_runs", "finisher: … the transaction (finish_runs)")
    w(serve_log.RunLog, "run_finished", "finisher: run finished line (RunLog)")
    w(notifier.Notifier, "run_finished", "finisher: notifier's end decision")
    w(inbox.Inbox, "done", "finisher: hand one back to the loop (Inbox.done)")
    mark_start(timings, by_pid)
    mark_end(timings)


def mark_start(timings: Timings, by_pid: dict[int, int]) -> None:
    """The marks that are not a step's own, from the slot to the supervisor: the loop's wake,
    the hand-over, the claim's commit, the spawn's end, the pids, the registration."""
    from cronctl.runner import execute, supervisor
    from cronctl.serve import loop, workers

    marks, local = timings.marks, timings.local

    original_step = loop.Scheduler.step

    def step_marked(self: Any) -> float:
        timings.woke_at = time.time_ns()
        return original_step(self)

    original_launch = workers.ThreadLauncher.launch

    def launch_marked(self: Any, handles: list[Any], done: Any) -> None:
        now = time.time_ns()
        for handle in handles:
            handle.handed_at, handle.woke_at = now, timings.woke_at
        original_launch(self, handles, done)

    original_chunk = workers.ThreadLauncher._claim_chunk

    def chunk_marked(self: Any, chunk: list[Any]) -> Any:
        began = time.time_ns()
        claimed = original_chunk(self, chunk)
        committed = time.time_ns()
        for handle, _ in claimed:
            run = marks[handle.run_id]
            run["handed to the claimer"] = getattr(handle, "handed_at", 0)
            run["loop woke"] = getattr(handle, "woke_at", 0)
            run["chunk begins"], run["claimed"] = began, committed
            if handle.request.scheduled_at is not None:
                run["slot"] = int(handle.request.scheduled_at.timestamp() * 1e9)
        return claimed

    original_spawn_early = workers.ThreadLauncher._spawn_early

    def spawn_early_marked(self: Any, handle: Any, prepared: Any) -> Any:
        local.run_id = handle.run_id
        timings.mark(handle.run_id, "spawn begins")
        try:
            early = original_spawn_early(self, handle, prepared)
        finally:
            local.run_id = None
        timings.mark(handle.run_id, "spawned")
        if early is not None:
            if hasattr(early.job, "proc"):
                by_pid[early.job.proc.pid] = handle.run_id
        return early

    original_environment = execute.Executor._environment

    def environment_marked(self: Any, request: Any, run_id: int) -> Any:
        env = original_environment(self, request, run_id)
        timings.mark(run_id, "environment built")
        return env

    original_record = workers.ThreadLauncher._record_pids

    def record_marked(self: Any, spawned: list[Any]) -> None:
        original_record(self, spawned)
        now = time.time_ns()
        for handle, _, _ in spawned:
            if handle.run_id is not None:
                marks[handle.run_id]["pids written"] = now

    original_add = supervisor.Supervisor.add

    def add_marked(self: Any, job: Any, ended: Any) -> None:
        original_add(self, job, ended)
        timings.mark(by_pid.get(job.proc.pid), "registered")

    loop.Scheduler.step = step_marked  # type: ignore[method-assign]
    workers.ThreadLauncher.launch = launch_marked  # type: ignore[method-assign]
    workers.ThreadLauncher._claim_chunk = chunk_marked  # type: ignore[method-assign]
    workers.ThreadLauncher._spawn_early = spawn_early_marked  # type: ignore[method-assign]
    execute.Executor._environment = environment_marked  # type: ignore[method-assign]
    workers.ThreadLauncher._record_pids = record_marked  # type: ignore[method-assign]
    supervisor.Supervisor.add = add_marked  # type: ignore[method-assign]


def mark_end(timings: Timings) -> None:
    """The marks from the job's end to the loop: the finisher's batch, the row, the loop."""
    from cronctl.runner import execute
    from cronctl.serve import inbox, loop, workers

    marks = timings.marks
    original_ended = workers.ThreadLauncher._ended

    def ended_marked(self: Any, end: Any) -> None:
        timings.mark(end.handle.run_id, "handed to the finisher")
        original_ended(self, end)

    original_finish = workers.ThreadLauncher._finish

    def finish_marked(self: Any, batch: list[Any]) -> None:
        began = time.time_ns()
        for end in batch:
            marks[end.handle.run_id]["finish begins"] = began
        original_finish(self, batch)

    original_finish_watched = execute.Executor.finish_watched

    def finish_watched_marked(self: Any, ends: Any) -> Any:
        original_written = self.store.finish_runs

        def finish_runs(records: Any) -> Any:
            written = original_written(records)
            now = time.time_ns()
            for record in records:
                marks[record.run_id]["row written"] = now
            return written

        self.store.finish_runs = finish_runs
        try:
            return original_finish_watched(self, ends)
        finally:
            del self.store.finish_runs

    original_done = inbox.Inbox.done

    def done_marked(self: Any, completion: Any) -> None:
        timings.mark(completion.handle.run_id, "handed to the loop")
        original_done(self, completion)

    original_completed = loop.Scheduler._completed

    def completed_marked(self: Any, completion: Any) -> None:
        original_completed(self, completion)
        timings.mark(completion.handle.run_id, "loop done with it")

    workers.ThreadLauncher._ended = ended_marked  # type: ignore[method-assign]
    workers.ThreadLauncher._finish = finish_marked  # type: ignore[method-assign]
    execute.Executor.finish_watched = finish_watched_marked  # type: ignore[method-assign]
    inbox.Inbox.done = done_marked  # type: ignore[method-assign]
    loop.Scheduler._completed = completed_marked  # type: ignore[method-assign]


RENAMED = {
    "posix_spawned": "posix_spawned begins",
    "posix_spawn": "posix_spawn begins",
    "posix_spawn end": "process exists",
    "told end": "told started",
    "reap end": "reaped",
    "conclude": "watch over",
}


def supervised(seconds: float, tasks: str | None = None) -> dict[str, Any]:
    """Serve in process for `seconds`, every step of the supervised path timed and marked;
    prints the steps and the two paths, returns them."""
    timings = Timings()
    instrument(timings)
    home = scratch_home()
    threads: list[dict[str, float]] = []
    names: dict[int, str] = {}

    def thread_times(_: Any) -> None:
        import threading

        for pause in (2.0, seconds - 3.0):
            time.sleep(pause)
            names.update({t.native_id or 0: t.name for t in threading.enumerate()})
            found = thread_cpu(os.getpid())
            threads.append({names.get(tid, f"thread {tid}"): used for tid, used in found.items()})
            threads[-1]["(runs)"] = float(len(timings.marks))

    here = Path.cwd()
    os.chdir(Path.home())  # the plain spawn: jobs run in serve's own folder (the home folder)
    try:
        run_serve_in_process(home, seconds, during=thread_times, tasks=tasks)
    finally:
        os.chdir(here)
        shutil.rmtree(home, ignore_errors=True)
    for run in timings.marks.values():
        for old, new in RENAMED.items():
            if old in run:
                run[new] = run[old]
    table = {}
    import cronctl

    source = Path(cronctl.__file__).parent.parent
    print(f"\nsupervised path ({source}): {len(timings.marks)} runs in {seconds:g} s")
    print(
        f"{'step':<66} {'calls':>6} {'median µs':>10} {'p99 µs':>9} {'max µs':>9}"
        f" {'CPU med µs':>10}"
    )
    for step, values in sorted(timings.durations.items()):
        if values:
            us = [v / 1000 for v in values]
            cpu_us = [v / 1000 for v in timings.cpu[step]]
            row = (len(us), statistics.median(us), percentile(us, 0.99), max(us))
            table[step] = (*row, statistics.median(cpu_us))
            print(
                f"{step:<66} {row[0]:>6} {row[1]:>10.1f} {row[2]:>9.1f} {row[3]:>9.1f}"
                f" {table[step][4]:>10.1f}"
            )
    paths = print_paths(
        timings, (("slot → process exists", START_PATH), ("exit → row", END_PATH)), 60
    )
    if len(threads) == 2:
        runs = max(1.0, threads[1]["(runs)"] - threads[0]["(runs)"])
        print(f"\nCPU a run by thread over {runs:.0f} runs (µs, the wrappers included):")
        for name in sorted(set(threads[1]) - {"(runs)"}):
            used = (threads[1][name] - threads[0].get(name, 0.0)) / runs * 1e6
            print(f"  {name:<40} {used:8.1f}")
    return {"steps": table, "paths": paths}


def supervised_burst(seconds: float) -> dict[str, Any]:
    """`supervised` with 500 tasks `@every 10s` (a burst every 10 s) instead of 20 `@every 1s`."""
    tasks = "".join(task_block(f"b{i}", "@every 10s") for i in range(500))
    return supervised(max(seconds, 12.0), tasks)
