"""bench_hotpath.py's `--only steps`: the real serve (`cronctl.serve.daemon.serve`, its
Scheduler, ThreadLauncher and Executor against a real SQLite file) run in this process, with a
timing wrapper around each step of the hot path; every step's median and p99 in microseconds,
and each run's timeline from its slot to its process and from the job's exit to its row.
`Timings` is also hotpath_supervised.py's."""

from __future__ import annotations

import _thread
import functools
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench_hotpath import run_serve_in_process, scratch_home, thread_cpu
from bench_serve import percentile

from cronctl.store import HistoryStore

# ------------------------------------------------------------------------------ steps


class Timings:
    """Durations per step (ns) and per-run marks (wall clock, ns), appended from any thread."""

    def __init__(self) -> None:
        self.durations: dict[str, list[int]] = defaultdict(list)
        self.cpu: dict[str, list[int]] = defaultdict(list)  # the calling thread's CPU (ns)
        self.marks: dict[int, dict[str, int]] = defaultdict(dict)  # run id -> mark -> time_ns
        self.local = threading.local()  # the run id of a job thread
        self.woke_at = 0  # when the loop's current step began

    def wrap(self, owner: Any, name: str, step: str, mark: bool = False) -> None:
        original = getattr(owner, name)
        durations, cpu = self.durations[step], self.cpu[step]
        local = self.local
        marks = self.marks

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began, cpu_began = time.perf_counter_ns(), time.thread_time_ns()
            wall = time.time_ns() if mark else 0
            try:
                return original(*args, **kwargs)
            finally:
                durations.append(time.perf_counter_ns() - began)
                cpu.append(time.thread_time_ns() - cpu_began)
                run_id = getattr(local, "run_id", None)
                if mark and run_id is not None:
                    marks[run_id][step] = wall
                    marks[run_id][step + " end"] = time.time_ns()

        setattr(owner, name, timed)

    def mark(self, run_id: int | None, name: str) -> None:
        if run_id is not None:
            self.marks[run_id][name] = time.time_ns()


def instrument(timings: Timings) -> None:
    """Wrap each step of the hot path (the classes are patched, so serve's own objects are)."""
    from cronctl import spool
    from cronctl.notify import notifier
    from cronctl.runner import execute, pipes, process
    from cronctl.serve import heaps, loop, plan, starts, storage, upkeep, workers
    from cronctl.serve import log as serve_log
    from cronctl.store import runs

    w = timings.wrap
    # The loop: a wake, the slots due, each start decision, the heap, the hand-over.
    w(loop.Scheduler, "step", "loop: step (a whole wake)")
    w(loop.Scheduler, "_drain_completions", "loop: drain completions")
    w(loop.Scheduler, "_fire_slots", "loop: fire slots due (all of a wake)")
    w(loop.Scheduler, "_fire", "loop: fire one slot (request, jitter, overlap, handle)")
    w(heaps.SlotHeap, "schedule", "loop: heap update (push next slot)")
    w(plan, "overdue", "loop: next slot (plan.overdue)")
    w(starts.Starts, "flush", "loop: flush to the launcher")
    w(loop.Scheduler, "_completed", "loop: one completion (overlap, retry, after)")
    w(upkeep.Upkeep, "chores", "loop: upkeep chores")
    w(upkeep.Upkeep, "poll_task_file", "loop: task file poll")
    # The claimer thread.
    w(storage.SerialStore, "start_run", "claim: INSERT running row (SerialStore.start_run)")
    if hasattr(storage.SerialStore, "start_runs"):
        w(
            storage.SerialStore,
            "start_runs",
            "claim: INSERT a batch's rows (SerialStore.start_runs)",
        )
    # The job thread.
    w(storage.SerialStore, "last_success_at", "job: last_success_at (SELECT)")
    w(execute, "job_environment", "job: environment (job_environment)")
    w(execute.Executor, "_when_says_skip", "job: when condition")
    w(serve_log.RunLog, "run_started", "job: run_started log line")
    w(notifier.Notifier, "run_started", "job: notify decision at start")
    w(spool.SpoolWriter, "__init__", "job: spool writer setup")
    w(process, "before_exec", "job: preexec_fn setup (before_exec)")
    w(subprocess, "Popen", "job: spawn (subprocess.Popen)", mark=True)
    w(pipes.JobPipes, "__init__", "job: capture setup (JobPipes)")
    w(pipes.JobPipes, "watch", "job: capture watch (register pipes, pidfd_open)")
    w(storage.SerialStore, "set_pid", "job: UPDATE pid (set_pid)")
    w(process.Supervision, "_reap", "end: reap (waitpid)")
    w(pipes.JobPipes, "close", "end: close pipes")
    w(process.Supervision, "_outcome", "end: outcome (output, times)")
    w(execute, "status_of", "end: status_of")
    w(storage.SerialStore, "finish_run", "end: UPDATE finished row (+ output)")
    w(serve_log.RunLog, "run_finished", "end: run_finished log line")
    w(notifier.Notifier, "run_finished", "end: notify decision at end")
    w(spool.SpoolWriter, "close", "end: spool close")
    w(workers.ThreadLauncher, "_claim", "claim: one claim (incl. INSERT)")
    if hasattr(workers.ThreadLauncher, "_spawn_early"):
        w(workers.ThreadLauncher, "_spawn_early", "claim: spawn a claimed job (start_prepared)")
    w(workers.ThreadLauncher, "_execute", "job: whole job thread")
    w(storage.SerialStore, "get_run", "other: get_run")
    # The same writes inside SerialStore's lock: the difference is the wait for the lock.
    w(runs.RunStore, "start_run", "db: start_run inside the lock")
    w(runs.RunStore, "last_success_at", "db: last_success_at inside the lock")
    w(runs.RunStore, "set_pid", "db: set_pid inside the lock")
    w(runs.RunStore, "finish_run", "db: finish_run inside the lock")

    mark_runs(timings)


def mark_runs(timings: Timings) -> None:
    """Mark each run's way from its slot to its process, and from its exit to its row."""
    from cronctl.runner import execute, pipes
    from cronctl.serve import inbox, loop, storage, workers

    original_execute = workers.ThreadLauncher._execute
    original_start_thread = _thread.start_new_thread
    original_pump = pipes.JobPipes.pump
    original_done = inbox.Inbox.done
    original_completed = loop.Scheduler._completed
    original_begin = execute.Executor.begin
    original_set_pid = storage.SerialStore.set_pid
    original_finish = storage.SerialStore.finish_run

    class _StartThread:
        @staticmethod
        def start_new_thread(function: Any, args: Any) -> Any:
            handle = args[0]
            timings.mark(handle.run_id, "thread start asked")
            step = "claim: start job thread (_thread.start_new_thread)"
            began, cpu_began = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return original_start_thread(function, args)
            finally:
                timings.durations[step].append(time.perf_counter_ns() - began)
                timings.cpu[step].append(time.thread_time_ns() - cpu_began)

    setattr(workers, "_thread", _StartThread)  # noqa: B010 (the module workers calls through)

    def execute_marked(self: Any, handle: Any, done: Any, *early: Any) -> Any:
        # `early` (issue 18, round 2): the job the claimer spawned; absent before round 2.
        timings.local.run_id = handle.run_id
        timings.mark(handle.run_id, "thread running")
        return original_execute(self, handle, done, *early)

    def begin_marked(self: Any, request: Any) -> int:
        claim_began = time.time_ns()
        run_id = original_begin(self, request)
        timings.marks[run_id]["claim begin"] = claim_began
        timings.mark(run_id, "claimed")
        if request.scheduled_at is not None:
            timings.marks[run_id]["slot"] = int(request.scheduled_at.timestamp() * 1e9)
        return run_id

    def pump_marked(self: Any, wait: Any) -> Any:
        seen = original_pump(self, wait)
        if seen:
            timings.mark(getattr(timings.local, "run_id", None), "exit seen")
        return seen

    def set_pid_marked(self: Any, run_id: int, pid: int) -> None:
        timings.mark(run_id, "process exists (pid known)")
        original_set_pid(self, run_id, pid)
        timings.mark(run_id, "pid written")

    def finish_marked(self: Any, run_id: int, **kwargs: Any) -> Any:
        timings.mark(run_id, "finish begin")
        try:
            return original_finish(self, run_id, **kwargs)
        finally:
            timings.mark(run_id, "row written")

    def done_marked(self: Any, completion: Any) -> None:
        timings.mark(completion.handle.run_id, "handed to the loop")
        original_done(self, completion)

    def completed_marked(self: Any, completion: Any) -> None:
        original_completed(self, completion)
        timings.mark(completion.handle.run_id, "loop done with it")

    execute_marked.__wrapped__ = original_execute  # type: ignore[attr-defined]
    workers.ThreadLauncher._execute = execute_marked  # type: ignore[method-assign]
    execute.Executor.begin = begin_marked  # type: ignore[method-assign]
    mark_batched_claims(timings)
    pipes.JobPipes.pump = pump_marked  # type: ignore[method-assign]
    storage.SerialStore.set_pid = set_pid_marked  # type: ignore[method-assign]
    storage.SerialStore.finish_run = finish_marked  # type: ignore[method-assign]
    inbox.Inbox.done = done_marked  # type: ignore[method-assign]
    loop.Scheduler._completed = completed_marked  # type: ignore[method-assign]

    mark_handover(timings)


def mark_batched_claims(timings: Timings) -> None:
    """The claims of a batch in one transaction (issue 18): each run is marked as begun when
    its batch began and claimed when the batch committed (a cronctl without `begin_many`,
    such as 18b71a1, has nothing to mark here)."""
    from cronctl.runner import execute

    original_begin_many = getattr(execute.Executor, "begin_many", None)
    if original_begin_many is None:
        return

    def begin_many_marked(self: Any, requests: Any) -> Any:
        # The claims of a batch in one transaction (issue 18): each run is marked as begun
        # when the batch began and claimed when it committed.
        claim_began = time.time_ns()
        run_ids = original_begin_many(self, requests)  # type: ignore[misc]
        for request, run_id in zip(requests, run_ids, strict=True):
            if run_id is None:
                continue
            timings.marks[run_id]["claim begin"] = claim_began
            timings.mark(run_id, "claimed")
            if request.scheduled_at is not None:
                timings.marks[run_id]["slot"] = int(request.scheduled_at.timestamp() * 1e9)
        return run_ids

    execute.Executor.begin_many = begin_many_marked  # type: ignore[method-assign]


def mark_handover(timings: Timings) -> None:
    """Mark the loop's wake and its hand-over of each run to the claimer."""
    from cronctl.serve import loop, workers

    # The loop's wake: mark it on each run of the wake's flush (the runs are known by handle).
    original_launch = workers.ThreadLauncher.launch

    def launch_marked(self: Any, handles: list[Any], done: Any) -> None:
        now = time.time_ns()
        for handle in handles:
            handle.handed_at = now
            handle.woke_at = timings.woke_at
        original_launch(self, handles, done)

    original_step = loop.Scheduler.step

    def step_marked(self: Any) -> float:
        timings.woke_at = time.time_ns()
        return original_step(self)

    loop.Scheduler.step = step_marked  # type: ignore[method-assign]

    workers.ThreadLauncher.launch = launch_marked  # type: ignore[method-assign]
    original_claim = workers.ThreadLauncher._claim

    def claim_marked(self: Any, handle: Any, done: Any) -> bool:
        picked = time.time_ns()
        ok = original_claim(self, handle, done)
        if handle.run_id is not None:
            timings.marks[handle.run_id]["handed to the claimer"] = getattr(handle, "handed_at", 0)
            timings.marks[handle.run_id]["loop woke"] = getattr(handle, "woke_at", 0)
            timings.marks[handle.run_id]["claimer picked it"] = picked
        return ok

    workers.ThreadLauncher._claim = claim_marked  # type: ignore[method-assign]


START_PATH = [
    ("slot", "loop woke", "slot due -> the loop wakes"),
    ("loop woke", "handed to the claimer", "loop wakes -> hands it to the claimer"),
    ("handed to the claimer", "claimer picked it", "claimer wakes and reaches it"),
    ("claimer picked it", "claimed", "claim (INSERT, commit)"),
    ("claimed", "thread start asked", "rest of its chunk claimed, thread asked"),
    ("thread start asked", "thread running", "job thread starts running"),
    ("thread running", "job: spawn (subprocess.Popen)", "environment, run_started, spool"),
    ("job: spawn (subprocess.Popen)", "job: spawn (subprocess.Popen) end", "spawn (Popen)"),
    ("slot", "job: spawn (subprocess.Popen) end", "total: slot due -> process exists"),
]
END_PATH = [
    ("job: spawn (subprocess.Popen) end", "process exists (pid known)", "capture setup"),
    ("process exists (pid known)", "pid written", "UPDATE pid"),
    ("exit seen", "finish begin", "exit seen -> finish begins (reap, outcome)"),
    ("finish begin", "row written", "UPDATE finished row, commit"),
    ("row written", "handed to the loop", "run_finished events, spool close"),
    ("handed to the loop", "loop done with it", "loop drains it"),
    ("exit seen", "row written", "total: process ended -> row written"),
]


def steps(seconds: float, switch_interval: float | None = None) -> dict[str, Any]:
    """The hot path, step by step (see the module's docstring); `switch_interval` sets the
    interpreter's (sys.setswitchinterval, 5 ms by default) for the run."""
    timings = Timings()
    instrument(timings)
    home = scratch_home()
    by_thread: list[dict[str, float]] = []

    def thread_times(scheduler: Any) -> None:
        # CPU of serve's long-lived threads by name, from 2 s after READY to 1 s before the end.
        names = {t.native_id: t.name for t in threading.enumerate()}
        for pause in (2.0, seconds - 3.0):
            time.sleep(pause)
            names.update({t.native_id: t.name for t in threading.enumerate()})
            found = thread_cpu(os.getpid())
            by_thread.append(
                {names.get(tid, "job threads (alive)"): 0.0 for tid in found}
                | {"process": time.process_time(), "runs": serve_runs(home)}
            )
            for tid, seconds_used in found.items():
                name = names.get(tid, "job threads (alive)")
                if name.startswith("Dummy"):
                    name = "job threads (alive)"
                by_thread[-1][name] = by_thread[-1].get(name, 0.0) + seconds_used

    previous = sys.getswitchinterval()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    cpu0 = time.process_time()
    try:
        run_serve_in_process(home, seconds, during=thread_times)
        cpu = time.process_time() - cpu0
        with HistoryStore(str(home / "history.db")) as store:
            runs = store.runs(limit=None)
    finally:
        sys.setswitchinterval(previous)
        shutil.rmtree(home, ignore_errors=True)
    late = [
        (r.started_at - r.scheduled_at).total_seconds() * 1000
        for r in runs
        if r.scheduled_at is not None and r.started_at is not None
    ]
    print(
        f"\nsteps: {len(runs)} runs in {seconds:g} s (switch interval"
        f" {switch_interval or previous} s); CPU of this process {cpu:.2f} s;"
        f" lateness median {statistics.median(late):.1f} ms, p99 {percentile(late, 0.99):.1f} ms"
    )
    if len(by_thread) == 2:
        first, last = by_thread
        window_runs = max(1, int(last["runs"] - first["runs"]))
        print(f"CPU per run by thread over {window_runs} runs (µs; the wrappers included):")
        threads = 0.0
        for name in sorted(set(first) | set(last)):
            if name != "runs":
                used = (last.get(name, 0.0) - first.get(name, 0.0)) / window_runs * 1e6
                threads += used if name != "process" else 0.0
                print(f"  {name:<30} {used:8.0f}")
        process = (last["process"] - first["process"]) / window_runs * 1e6
        print(f"  {'threads that ended (jobs)':<30} {process - threads:8.0f}")
    print(
        f"{'step':<62} {'calls':>6} {'median µs':>10} {'p99 µs':>9} {'CPU med µs':>10}"
        f" {'CPU ms':>8}"
    )
    table = {}
    for step, values in sorted(timings.durations.items()):
        if not values:
            continue
        us = [v / 1000 for v in values]
        cpu_us = [v / 1000 for v in timings.cpu[step]]
        median, p99 = statistics.median(us), percentile(us, 0.99)
        cpu_median, cpu_total = statistics.median(cpu_us), sum(cpu_us) / 1000
        table[step] = (len(us), median, p99, cpu_median, cpu_total)
        print(
            f"{step:<62} {len(us):>6} {median:>10.1f} {p99:>9.1f} {cpu_median:>10.1f}"
            f" {cpu_total:>8.1f}"
        )
    paths = print_paths(
        timings, (("slot due -> process exists", START_PATH), ("ended -> row", END_PATH)), 52
    )
    return {"runs": len(runs), "cpu": cpu, "steps": table, "paths": paths}


MarkPath = list[tuple[str, str, str]]  # (mark, next mark, what lies between)


def print_paths(
    timings: Timings, titled: tuple[tuple[str, MarkPath], ...], width: int
) -> dict[str, tuple[int, float, float]]:
    """Print each path's segments (runs with both marks, median and p99 of the gap, µs) under
    its title; return them by label (`steps` and hotpath_supervised's `supervised`)."""
    paths: dict[str, tuple[int, float, float]] = {}
    for title, path in titled:
        print(f"\n{title} (per run, µs; runs with both marks)")
        for begin, end, label in path:
            gaps = [
                (m[end] - m[begin]) / 1000
                for m in timings.marks.values()
                if m.get(begin) and m.get(end)
            ]
            if gaps:
                count, median, p99 = len(gaps), statistics.median(gaps), percentile(gaps, 0.99)
                paths[label] = (count, median, p99)
                print(f"  {label:<{width}} {count:>6} {median:>9.1f} {p99:>9.1f}")
    return paths


def serve_runs(home: Path) -> int:
    with HistoryStore(str(home / "history.db")) as store:
        return len(store.runs(limit=None))
