"""bench_hotpath.py's `--only claims`: the claims of one instant and the spawns after them,
in this process, without serve around them (issue 18).

Serve's claimer writes the `running` rows of a tick's runs in one transaction, then spawns
their jobs one after the other (serve/workers.py). This times, from the start of the claim to
each process, the ways a tick of 20 jobs (`/bin/sh -c true`) could go, on a real SQLite
history (WAL, synchronous=NORMAL, as serve writes it):

* `one tx, then spawn`: serve's order (the store's `start_runs`, then `os.posix_spawn`);
* `one tx, then posix_spawned`: the same with serve's own spawn (runner/spawn.py: two pipes,
  stdin from /dev/null, a process group, the file objects);
* `split A+B…`: the claims in several transactions, each chunk's jobs spawned after its
  commit (the first job waits for a smaller transaction, later ones for more commits);
* `claim thread`: a second thread claims (a first chunk of 2, then chunks of 6) while this
  one spawns each job once its claim is committed;
* `Popen, no claim` and `posix_spawn, no claim`: a Python loop spawning the same commands
  without any history, the floor of bench_peers.py (`Popen`) and its cheapest spawn.
Each variant's median over the rounds of: the median of its 20 starts, the first, the last.

`spawn_parts`: a spawn's parts (pipes, file actions, serve's own); `spawns_and_the_lock`:
whether a thread runs while another spawns (`os.posix_spawn` keeps the interpreter lock while
it waits for the child's exec, `subprocess.Popen` lets it go).

`claim_costs`: what a claim transaction is made of: an empty `BEGIN IMMEDIATE … COMMIT`, one
claim, 20 claims, with `synchronous = NORMAL` (as serve writes) and `OFF` (no fsync at a
checkpoint either), on the same history.
"""

from __future__ import annotations

import os
import queue
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cronctl.records import Trigger
from cronctl.runner.spawn import RESTORED_SIGNALS as SIGNALS
from cronctl.runner.spawn import posix_spawned
from cronctl.store import HistoryStore

JOBS = 20
T0 = datetime(2026, 3, 1, tzinfo=UTC)
ENV = dict(os.environ)
ARGV = ["/bin/sh", "-c", "true"]

Claims = list[tuple[str, Trigger, int, datetime | None]]


class Tick:
    """A tick's claims: 20 slots one second after the previous tick's."""

    def __init__(self) -> None:
        self.second = 0

    def next(self) -> tuple[Claims, datetime]:
        self.second += 1
        at = T0 + timedelta(seconds=self.second)
        return [(f"t{i}", Trigger.SCHEDULE, 1, at) for i in range(JOBS)], at


def bare_spawn() -> Any:
    return os.posix_spawn(ARGV[0], ARGV, ENV, setpgroup=0)


def serve_spawn() -> Any:
    return posix_spawned(ARGV[0], ARGV[2], ENV)


def popen_spawn() -> Any:
    return subprocess.Popen(ARGV, env=ENV, process_group=0)


def reap(spawned: list[Any]) -> None:
    for job in spawned:
        if isinstance(job, int):
            os.waitpid(job, 0)
        else:
            if getattr(job, "stdout", None) is not None:
                job.stdout.close()
                job.stderr.close()
            job.wait()


def in_chunks(store: HistoryStore, tick: Tick, spawn: Callable[[], Any], sizes: tuple[int, ...]):
    began = time.perf_counter()
    claims, at = tick.next()
    times, spawned, done = [], [], 0
    for size in sizes:
        if size:
            store.start_runs(claims[done : done + size], started_at=at)
        for _ in range(size or JOBS):
            spawned.append(spawn())
            times.append(time.perf_counter() - began)
        done += size
    reap(spawned)
    return times


def claim_thread(store: HistoryStore, tick: Tick, first: int = 2, chunk: int = 6) -> list[float]:
    began = time.perf_counter()
    claims, at = tick.next()
    ready: queue.SimpleQueue[int] = queue.SimpleQueue()

    def claimer() -> None:
        done, size = 0, first
        while done < JOBS:
            part = claims[done : done + size]
            store.start_runs(part, started_at=at)
            for _ in part:
                ready.put(1)
            done, size = done + len(part), chunk

    thread = threading.Thread(target=claimer)
    thread.start()
    times, spawned = [], []
    for _ in range(JOBS):
        ready.get()
        spawned.append(bare_spawn())
        times.append(time.perf_counter() - began)
    thread.join()
    reap(spawned)
    return times


def claims_and_spawns(rounds: int) -> dict[str, tuple[float, float, float]]:
    """Each variant's medians over `rounds` (alternating): median, first and last start, ms."""
    folder = Path(tempfile.mkdtemp(prefix="cronctl-claims-"))
    tick = Tick()
    with HistoryStore(folder / "history.db") as store:
        for _ in range(100):  # a history to insert into, as serve's is
            claims, at = tick.next()
            store.start_runs(claims, started_at=at)
        variants: dict[str, Callable[[], list[float]]] = {
            "one tx, then spawn": lambda: in_chunks(store, tick, bare_spawn, (JOBS,)),
            "one tx, then posix_spawned": lambda: in_chunks(store, tick, serve_spawn, (JOBS,)),
            "split 2+18": lambda: in_chunks(store, tick, bare_spawn, (2, 18)),
            "split 5+15": lambda: in_chunks(store, tick, bare_spawn, (5, 15)),
            "split 1+3+16": lambda: in_chunks(store, tick, bare_spawn, (1, 3, 16)),
            "claim thread": lambda: claim_thread(store, tick),
            "Popen, no claim": lambda: in_chunks(store, tick, popen_spawn, (0,)),
            "posix_spawn, no claim": lambda: in_chunks(store, tick, bare_spawn, (0,)),
        }
        found: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        names = list(variants)
        for round_ in range(rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                times = [t * 1000 for t in variants[name]()]
                found[name].append((statistics.median(times), times[0], times[-1]))
                time.sleep(0.02)
    print(f"\nclaims of one instant and their spawns: {JOBS} jobs, {rounds} rounds (ms)")
    print(f"{'variant':<28} {'median':>8} {'first':>8} {'last':>8}")
    result = {}
    for name, rows in found.items():
        medians = tuple(statistics.median(row[i] for row in rows) for i in range(3))
        result[name] = (medians[0], medians[1], medians[2])
        print(f"{name:<28} {medians[0]:>8.3f} {medians[1]:>8.3f} {medians[2]:>8.3f}")
    return result


def claim_costs(rounds: int) -> dict[str, float]:
    """Median µs of an empty write transaction, of 1 claim and of 20 claims in one, with
    `synchronous` NORMAL and OFF, alternating."""
    folder = Path(tempfile.mkdtemp(prefix="cronctl-claim-costs-"))
    tick = Tick()
    found: dict[str, list[float]] = {}
    with HistoryStore(folder / "history.db") as store:
        for _ in range(100):
            claims, at = tick.next()
            store.start_runs(claims, started_at=at)

        def empty() -> None:
            with store._write():
                pass

        def claims_of(count: int) -> Callable[[], None]:
            def claim() -> None:
                claims, at = tick.next()
                store.start_runs(claims[:count], started_at=at)

            return claim

        steps = {"empty transaction": empty, "1 claim": claims_of(1), "20 claims": claims_of(20)}
        for round_ in range(rounds):
            for mode in ("NORMAL", "OFF") if round_ % 2 == 0 else ("OFF", "NORMAL"):
                store._db.execute(f"PRAGMA synchronous = {mode}")
                for name, step in steps.items():
                    began = time.perf_counter_ns()
                    for _ in range(20):
                        step()
                    found.setdefault(f"{name}, synchronous {mode}", []).append(
                        (time.perf_counter_ns() - began) / 20 / 1000
                    )
    print(f"\na claim transaction's parts, µs ({rounds} rounds of 20, medians)")
    result = {name: statistics.median(values) for name, values in found.items()}
    for name, value in sorted(result.items()):
        print(f"  {name:<40} {value:8.1f}")
    return result


def spawn_parts(rounds: int) -> dict[str, tuple[float, float]]:
    """A spawn's parts, µs of wall and of this thread's CPU a spawn (medians over `rounds` of
    20): the bare `os.posix_spawn`, with two pipes made and closed around it, with serve's
    file actions (stdin from /dev/null opened in the child, two dup2) and signals, the same
    with /dev/null opened once in the parent, and serve's `posix_spawned`."""
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def with_pipes(
        actions: Callable[[int, int], list[tuple[Any, ...]]] | None,
    ) -> Callable[[], Any]:
        def spawn() -> Any:
            out_read, out_write = os.pipe()
            err_read, err_write = os.pipe()
            extra: dict[str, Any] = {}
            if actions is not None:
                extra = {"file_actions": actions(out_write, err_write), "setsigdef": SIGNALS}
            pid = os.posix_spawn(ARGV[0], ARGV, ENV, setpgroup=0, **extra)
            for fd in (out_read, out_write, err_read, err_write):
                os.close(fd)
            return pid

        return spawn

    def opened(out: int, err: int) -> list[tuple[Any, ...]]:
        return [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, err, 2),
        ]

    def shared(out: int, err: int) -> list[tuple[Any, ...]]:
        return [(os.POSIX_SPAWN_DUP2, null, 0), *opened(out, err)[1:]]

    variants: dict[str, Callable[[], Any]] = {
        "bare os.posix_spawn": bare_spawn,
        "with two pipes": with_pipes(None),
        "with serve's file actions": with_pipes(opened),
        "… /dev/null opened once": with_pipes(shared),
        "serve's posix_spawned": serve_spawn,
    }
    found: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in variants}
    for _ in range(rounds):
        for name, spawn in variants.items():
            spawned, wall, cpu = [], [], []
            for _ in range(JOBS):
                began, cpu_began = time.perf_counter_ns(), time.thread_time_ns()
                spawned.append(spawn())
                wall.append((time.perf_counter_ns() - began) / 1000)
                cpu.append((time.thread_time_ns() - cpu_began) / 1000)
            reap(spawned)
            found[name][0].append(statistics.median(wall))
            found[name][1].append(statistics.median(cpu))
    os.close(null)
    print(f"\na spawn's parts, µs a spawn ({rounds} rounds of {JOBS}, medians)")
    result = {}
    for name, (wall, cpu) in found.items():
        result[name] = (statistics.median(wall), statistics.median(cpu))
        print(f"  {name:<28} wall {result[name][0]:7.1f}  CPU {result[name][1]:6.1f}")
    return result


def spawns_and_the_lock(spawns: int = 200) -> dict[str, tuple[float, float]]:
    """Whether a spawn lets another thread run while it waits for the child's exec: a thread
    counting in a loop beside `spawns` spawns, its count a second, and µs a spawn."""
    counted = {"n": 0, "stop": False}

    def count() -> None:
        while not counted["stop"]:
            counted["n"] += 1

    def idle() -> None:
        time.sleep(0.0003)

    result = {}
    print(f"\na thread counting beside {spawns} spawns (its count a second; µs a spawn)")
    for name, spawn in (
        ("os.posix_spawn", bare_spawn),
        ("subprocess.Popen", popen_spawn),
        ("time.sleep(0.0003), no spawn", idle),
    ):
        counted.update(n=0, stop=False)
        thread = threading.Thread(target=count)
        thread.start()
        began = time.perf_counter()
        spawned = [spawn() for _ in range(spawns)]
        elapsed = time.perf_counter() - began
        counted["stop"] = True
        thread.join()
        reap([job for job in spawned if job is not None])
        result[name] = (counted["n"] / elapsed, elapsed / spawns * 1e6)
        print(f"  {name:<30} {result[name][0]:14,.0f} a second  {result[name][1]:8.0f} µs")
    return result


def every_figure(rounds: int) -> dict[str, Any]:
    """bench_hotpath.py's `--only claims`: every figure of this module."""
    return {
        "orders": claims_and_spawns(rounds),
        "costs": claim_costs(rounds),
        "spawn": spawn_parts(max(3, rounds // 4)),
        "lock": spawns_and_the_lock(),
    }
