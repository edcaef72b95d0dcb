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
  from its slot to its process and from the job's exit to its row (hotpath_steps.py);
* cpu: the real `cronctl serve` command; its CPU per run from /proc/PID/stat (utime + stime,
  children excluded) over the window, and the share of its main thread (the loop);
* rss: the real `cronctl serve`; VmRSS from /proc/PID/status every `--every` seconds;
* memory: the real serve in this process under tracemalloc: snapshots at the start, the middle
  and the end (top growth by traceback), beside what tracemalloc cannot see: SQLite's own
  allocations (sqlite3_status64) and the C heap (glibc mallinfo2).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
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

from bench_serve import TICKS, Serve, task_block  # noqa: E402

from cronctl.locations import resolve  # noqa: E402

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
    """hotpath_steps.py, hotpath_supervised.py or hotpath_claims.py (they import this module)."""
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
        "steps": lambda: lazily("hotpath_steps").steps(short, args.switch_interval),
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
