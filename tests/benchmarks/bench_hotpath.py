"""Where a run's time and serve's memory go (issue 18, items 1 and 4): measures only, no target.

Plain script (pytest does not collect it, run.py does not run it):
    python tests/benchmarks/bench_hotpath.py [--quick]
        [--only steps,supervised,supervised-burst,claims,cpu,rss,memory]

Figures, each on 20 `@every 1s` tasks running `true` in a scratch CRONCTL_HOME:
* supervised: the same for the path serve's jobs take since issue 18's round 4 (one claimer,
  the plain spawn, one supervising thread, one finisher): hotpath_supervised.py;
  supervised-burst: the same with 500 tasks `@every 10s`;
* claims: a tick's claims and spawns without serve, the ways they could be ordered
  (hotpath_claims.py);
* steps: the real serve (`cronctl.serve.daemon.serve`, its Scheduler, ThreadLauncher and
  Executor against a real SQLite file) run in this process, with a timing wrapper around each
  step of the hot path; every step's median and p99 in microseconds, and each run's timeline
  from its slot to its process and from the job's exit to its row;
* cpu: the real `cronctl serve` command; its CPU per run from /proc/PID/stat (utime + stime,
  children excluded) over the window, and the share of its main thread (the loop);
* rss: the real `cronctl serve`; VmRSS from /proc/PID/status every `--every` seconds;
* memory: the real serve in this process under tracemalloc: snapshots at the start, the middle
  and the end (top growth by traceback), beside what tracemalloc cannot see: SQLite's own
  allocations (sqlite3_status64) and the C heap (glibc mallinfo2).
"""

from __future__ import annotations

import _thread
import argparse
import ctypes
import ctypes.util
import functools
import gc
import importlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The cronctl measured is this tree's, or the one PYTHONPATH names (an A/B against another
# commit's tree, `git archive COMMIT | tar -x -C DIR`), which then comes first.
if os.environ.get("PYTHONPATH"):
    sys.path.append(str(Path(__file__).resolve().parents[2]))
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import TICKS, Serve, percentile, task_block  # noqa: E402

from cronctl.locations import resolve  # noqa: E402
from cronctl.store import HistoryStore  # noqa: E402

TASKS = 20


def tasks_toml(count: int = TASKS) -> str:
    return "".join(task_block(f"t{i}", "@every 1s") for i in range(count))


# ------------------------------------------------------------------------------ in process


def run_serve_in_process(
    home: Path,
    seconds: float,
    during: Callable[[Any], None] | None = None,
    tasks: str | None = None,
) -> None:
    """Run the real serve of `home` in this thread for `seconds` after READY; `during(scheduler)`
    runs on a thread of its own from READY on; `tasks`: the task file (20 `@every 1s`)."""
    from cronctl.serve import daemon
    from cronctl.serve.log import PlainFormatter

    (home / "tasks.toml").write_text(tasks or tasks_toml())
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("CRONCTL_", "NOTIFY_SOCKET"))
    }
    environ["CRONCTL_HOME"] = str(home)
    handler = logging.FileHandler(home / "serve.log")  # one line a start and an end, as ever
    handler.setFormatter(PlainFormatter("%(message)s"))

    def on_ready(scheduler: Any) -> None:
        threading.Timer(seconds, scheduler.request_stop).start()
        if during is not None:
            threading.Thread(target=during, args=(scheduler,), daemon=True).start()

    daemon.serve(
        resolve(environ=environ),
        grace=1,
        kill_grace=1,
        environ=environ,
        log_handler=handler,
        install_signals=False,
        on_ready=on_ready,
    )
    handler.close()


def scratch_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="cronctl-hotpath-"))


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
        w(workers.ThreadLauncher, "_spawn_early", "claim: spawn a claimed job (spawn_early)")
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
    paths = {}
    for title, path in (("slot due -> process exists", START_PATH), ("ended -> row", END_PATH)):
        print(f"\n{title} (per run, µs; runs with every mark)")
        for begin, end, label in path:
            gaps = [
                (m[end] - m[begin]) / 1000
                for m in timings.marks.values()
                if m.get(begin) and m.get(end)
            ]
            if gaps:
                median, p99 = statistics.median(gaps), percentile(gaps, 0.99)
                paths[label] = (len(gaps), median, p99)
                print(f"  {label:<52} {len(gaps):>6} {median:>10.1f} {p99:>9.1f}")
    return {"runs": len(runs), "cpu": cpu, "steps": table, "paths": paths}


def serve_runs(home: Path) -> int:
    with HistoryStore(str(home / "history.db")) as store:
        return len(store.runs(limit=None))


# ------------------------------------------------------------------------------ /proc


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of `pid`: from schedstat (ns) where the kernel has it,
    else utime + stime (clock ticks)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def drain_notify(serve: Serve) -> None:
    """Read serve's sd_notify datagrams after READY=1, as systemd does: serve's send blocks once
    the socket's queue is full (net.unix.max_dgram_qlen, 10 by default), and with it the loop;
    bench_serve.Serve stops reading at READY=1, which its windows of seconds never reach."""

    def read() -> None:
        serve.sock.settimeout(None)
        while True:
            try:
                serve.sock.recv(4096)
            except OSError:
                return

    threading.Thread(target=read, name="notify-drain", daemon=True).start()


def cpu(seconds: float) -> dict[str, Any]:
    serve = Serve(tasks_toml())
    try:
        serve.wait_ready()
        drain_notify(serve)
        time.sleep(3.0)  # past start-up and the first slots
        pid = serve.proc.pid
        cpu0, runs0, main0 = serve.cpu_seconds(), serve.count(), thread_cpu(pid)[pid]
        time.sleep(seconds)
        cpu1, runs1, main1 = serve.cpu_seconds(), serve.count(), thread_cpu(pid)[pid]
    finally:
        serve.stop()
    runs = runs1 - runs0
    per_run = (cpu1 - cpu0) / max(1, runs) * 1000
    main = (main1 - main0) / max(1, runs) * 1000
    print(
        f"\ncpu: {runs} runs in {seconds:g} s; serve {cpu1 - cpu0:.2f} s CPU = {per_run:.3f} ms"
        f" a run ({(cpu1 - cpu0) / seconds * 100:.2f} % of a core); main thread (the loop)"
        f" {main:.3f} ms a run"
    )
    return {"runs": runs, "cpu_s": cpu1 - cpu0, "per_run_ms": per_run, "main_ms": main}


def rss(seconds: float, every: float) -> dict[str, Any]:
    serve = Serve(tasks_toml())
    samples: list[tuple[float, float, int, int]] = []
    try:
        serve.wait_ready()
        drain_notify(serve)
        pid = serve.proc.pid
        began = time.monotonic()
        cpu0 = serve.cpu_seconds()
        while True:
            elapsed = time.monotonic() - began
            sample = (
                elapsed,
                status_kb(pid, "VmRSS") / 1024,
                status_kb(pid, "Threads"),
                serve.count(),
            )
            samples.append(sample)
            print(
                f"rss: {sample[0]:6.0f} s {sample[1]:6.1f} MB {sample[2]:3d} threads"
                f" {sample[3]:6d} runs",
                flush=True,
            )
            if elapsed >= seconds:
                break
            time.sleep(max(0.0, began + len(samples) * every - time.monotonic()))
        cpu_s = serve.cpu_seconds() - cpu0
    finally:
        serve.stop()
    return {"samples": samples, "cpu_s": cpu_s}


# ------------------------------------------------------------------------------ memory


def _sqlite_memory() -> Callable[[], int]:
    """SQLite's own allocations (bytes), as sqlite3_status64(SQLITE_STATUS_MEMORY_USED) says;
    -1 where the library cannot be reached."""
    name = ctypes.util.find_library("sqlite3")
    try:
        library = ctypes.CDLL(name or "libsqlite3.so.0")
        status = library.sqlite3_status64
    except (OSError, AttributeError):
        return lambda: -1

    def used() -> int:
        current, highest = ctypes.c_int64(), ctypes.c_int64()
        status(0, ctypes.byref(current), ctypes.byref(highest), 0)
        return current.value

    return used


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _mallinfo() -> Callable[[], tuple[int, int, int]]:
    """(heap from the arenas, in use, free in them) of glibc's malloc; (-1, -1, -1) elsewhere."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return lambda: (-1, -1, -1)
    function.restype = _Mallinfo2

    def info() -> tuple[int, int, int]:
        m = function()
        return m.arena + m.hblkhd, m.uordblks + m.hblkhd, m.fordblks

    return info


def memory(seconds: float, every: float, frames: int = 25) -> dict[str, Any]:
    sqlite_used, mallinfo = _sqlite_memory(), _mallinfo()
    samples: list[dict[str, float]] = []
    snapshots: list[tuple[float, tracemalloc.Snapshot, Counter[str]]] = []
    stop = threading.Event()
    home = scratch_home()

    def types() -> Counter[str]:
        return Counter(type(o).__qualname__ for o in gc.get_objects())

    def watch(scheduler: Any) -> None:
        began = time.monotonic()
        moments = [0.0, seconds / 2, seconds - every]
        while not stop.is_set():
            elapsed = time.monotonic() - began
            heap, used, free = mallinfo()
            sample = {
                "s": elapsed,
                "rss_mb": status_kb(os.getpid(), "VmRSS") / 1024,
                "traced_mb": tracemalloc.get_traced_memory()[0] / 1e6,
                "sqlite_mb": sqlite_used() / 1e6,
                "malloc_heap_mb": heap / 1e6,
                "malloc_used_mb": used / 1e6,
                "malloc_free_mb": free / 1e6,
                "threads": threading.active_count(),
            }
            samples.append(sample)
            print("memory: " + " ".join(f"{k} {v:.1f}" for k, v in sample.items()), flush=True)
            if moments and elapsed >= moments[0]:
                moments.pop(0)
                snapshots.append((elapsed, tracemalloc.take_snapshot(), types()))
            stop.wait(max(0.0, began + len(samples) * every - time.monotonic()))

    tracemalloc.start(frames)
    try:
        run_serve_in_process(home, seconds, during=watch)
    finally:
        stop.set()
        tracemalloc.stop()
        shutil.rmtree(home, ignore_errors=True)
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, __file__),
    ]
    result: dict[str, Any] = {"samples": samples, "growth": []}
    for (t0, first, types0), (t1, second, types1) in zip(snapshots, snapshots[1:], strict=False):
        first, second = first.filter_traces(ignore), second.filter_traces(ignore)
        stats = second.compare_to(first, "traceback")
        total = sum(s.size_diff for s in stats)
        print(f"\ntracemalloc growth {t0:.0f} s -> {t1:.0f} s: {total / 1e3:+.1f} kB in all")
        growth = []
        for stat in stats[:15]:
            where = [f"{f.filename}:{f.lineno}" for f in stat.traceback]
            ours = [w for w in where if "/cronctl/" in w] or where
            growth.append((stat.size_diff, stat.count_diff, ours[-3:], where[-1]))
            print(
                f"{stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+7d} blocks  "
                f"{' <- '.join(reversed(ours[-3:]))}  [{where[-1]}]"
            )
        kinds = (types1 - types0).most_common(10)
        print("objects that grew in number: " + ", ".join(f"{k} +{v}" for k, v in kinds))
        result["growth"].append(
            {"from": t0, "to": t1, "total": total, "top": growth, "types": kinds}
        )
    return result


# ------------------------------------------------------------------------------ main


def lazily(module: str) -> Any:
    """hotpath_supervised.py or hotpath_claims.py (they import this module)."""
    return importlib.import_module(module)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds each (a smoke run)")
    parser.add_argument(
        "--only",
        default="steps,cpu,rss,memory",
        help="comma-separated: steps, supervised, supervised-burst, claims, cpu, rss, memory",
    )
    parser.add_argument("--seconds", type=float, help="window of each figure (default 90 / 600)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--switch-interval", type=float, help="sys.setswitchinterval for `steps` (default 5 ms)"
    )
    args = parser.parse_args(argv)
    short = 4.0 if args.quick else (args.seconds or 90.0)
    long = 6.0 if args.quick else (args.seconds or 600.0)
    every = 2.0 if args.quick else args.every
    figures: dict[str, Callable[[], Any]] = {
        "steps": lambda: steps(short, args.switch_interval),
        "supervised": lambda: lazily("hotpath_supervised").supervised(short),
        "supervised-burst": lambda: lazily("hotpath_supervised").supervised_burst(short),
        "claims": lambda: lazily("hotpath_claims").every_figure(5 if args.quick else 60),
        "cpu": lambda: cpu(short),
        "rss": lambda: rss(long, every),
        "memory": lambda: memory(long, every),
    }
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    return {name: figures[name.strip()]() for name in args.only.split(",")}


if __name__ == "__main__":
    main()
