"""`prune` and `status` against a big history: time, peak memory, a concurrent writer's waits.

Plain script (pytest does not collect it):
    python tests/benchmarks/bench_prune.py [--quick] [--runs 3] [--rows 5000000] [--tasks 100]
        [--dir DIR] [--matrix CHUNKS:GAPS_MS]

docs/performance.md, "Prune and status at 5 million runs (issue 18)". The history is built
once by bench_queries.build (one INSERT ... SELECT, about 45 s for 5 million runs; `--dir`
keeps it) and copied for each real prune. Figures, each the median of `--runs` runs of real
`cronctl` subprocesses, interleaved with the import floor
`python -c "import typer, rich.table, croniter"`:

* `prune --dry-run --keep-runs 1000` and the real `prune --keep-runs 1000` (which leaves
  1,000 runs a task): wall time, seconds per million runs removed, peak RSS of the process;
* the real prune again beside a writer committing one row every 5 ms (what serve does while
  retention runs): its p99 and longest wait for the lock;
* `status` against the import floor (target: at most 1.5x).

`--matrix 1000,5000:1,2` measures the real prune with each PRUNE_CHUNK x WRITER_GAP pair
in-process (the store's constants patched), with the writer: the figures behind the choice.
`--quick` builds 200,000 runs and times each figure once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import bench_queries  # noqa: E402

STATUS_TARGET = 1.5
PRUNE_TARGET_S_PER_MILLION = 1.0
KEEP = "1000"
# Runs a child and prints its peak RSS (KB) on stderr's last line: RUSAGE_CHILDREN of this
# wrapper holds only that child.
WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
    "sys.exit(code)"
)


class WriteProbe:
    """A second connection writing one row every 5 ms, timing each wait for the lock."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        connection.execute("PRAGMA wal_autocheckpoint = 0")  # time the wait, not a checkpoint
        try:
            while not self._stop.is_set():
                began = time.perf_counter()
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT INTO runs (task, trigger, started_at, status)"
                    " VALUES ('probe', 'manual', 0, 'running')"
                )
                connection.execute("COMMIT")
                self.waits.append(time.perf_counter() - began)
                time.sleep(0.005)
        finally:
            connection.close()

    def __enter__(self) -> WriteProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def p99_ms(self) -> float:
        waits = sorted(self.waits)
        return waits[int(len(waits) * 0.99)] * 1000 if waits else 0.0

    def max_ms(self) -> float:
        return max(self.waits, default=0.0) * 1000


def fresh_copy(source: Path, work: Path) -> None:
    """A copy of the built home in `work` (the history and the task file)."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("history.db*"):
        stale.unlink()
    shutil.copy(source / "tasks.toml", work / "tasks.toml")
    shutil.copy(source / "history.db", work / "history.db")


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB) of one run of `argv`."""
    began = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], env=env, stderr=subprocess.PIPE, text=True
    )
    took = time.perf_counter() - began
    if result.returncode not in (0, 1):  # status may well say "unhealthy"
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    return took, int(result.stderr.strip().splitlines()[-1])


def removed_runs(home: Path) -> int:
    with sqlite3.connect(home / "history.db") as db:
        total = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        tasks = db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT task FROM runs)").fetchone()[0]
    return int(total) - int(tasks) * int(KEEP)


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONCTL_")}
    env.update({"CRONCTL_HOME": str(home), "NO_COLOR": "1", "TZ": "UTC"})
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as installed
    return env


def row(
    figure: str, value: float, unit: str, baseline: str = "", ratio: str = ""
) -> dict[str, str]:
    return {"figure": figure, "value": f"{value:.2f} {unit}", "baseline": baseline, "ratio": ratio}


def measure_cli(home: Path, scratch: Path, runs: int) -> list[dict[str, str]]:
    cronctl = bench_queries.cronctl_command()
    work = scratch / "work"
    floor_argv = [sys.executable, "-c", "import typer, rich.table, croniter"]
    env, work_env = environment(home), environment(work)
    samples: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    to_remove = 0
    for number in range(runs + 1):  # the first round warms the page and bytecode caches
        floor, _ = measured(floor_argv, env)
        status, status_kb = measured([*cronctl, "status"], env)
        dry, dry_kb = measured([*cronctl, "prune", "--dry-run", "--keep-runs", KEEP], env)
        fresh_copy(home, work)
        to_remove = removed_runs(work)
        real, real_kb = measured([*cronctl, "prune", "--keep-runs", KEEP], work_env)
        fresh_copy(home, work)
        with WriteProbe(work / "history.db") as probe:
            probed, _ = measured([*cronctl, "prune", "--keep-runs", KEEP], work_env)
        if number == 0:
            continue
        for name, value in {
            "floor": floor,
            "status": status,
            "status_kb": status_kb,
            "dry": dry,
            "dry_kb": dry_kb,
            "real": real,
            "real_kb": real_kb,
            "probed": probed,
            "p99": probe.p99_ms(),
            "max": probe.max_ms(),
        }.items():
            add(name, value)
        print(f"round {number}: prune {real:.1f}s, dry-run {dry:.2f}s", file=sys.stderr)
    med = {name: statistics.median(values) for name, values in samples.items()}
    millions = to_remove / 1e6
    return [
        row(
            "status",
            med["status"] * 1000,
            "ms",
            f"{med['floor'] * 1000:.1f} ms floor",
            f"{med['status'] / med['floor']:.2f} (<= {STATUS_TARGET})",
        ),
        row("status peak RSS", med["status_kb"] / 1024, "MB"),
        row(
            f"prune --dry-run --keep-runs {KEEP}",
            med["dry"],
            "s",
            f"{to_remove:,} runs",
            f"{med['dry'] / millions:.2f} s/M (< {PRUNE_TARGET_S_PER_MILLION})",
        ),
        row("prune --dry-run peak RSS", med["dry_kb"] / 1024, "MB"),
        row(
            f"prune --keep-runs {KEEP}",
            med["real"],
            "s",
            f"{to_remove:,} runs",
            f"{med['real'] / millions:.2f} s/M (< {PRUNE_TARGET_S_PER_MILLION})",
        ),
        row("prune peak RSS", med["real_kb"] / 1024, "MB"),
        row("prune beside a writer (every 5 ms)", med["probed"], "s"),
        row("that writer's wait, p99", med["p99"], "ms"),
        row("that writer's wait, longest", med["max"], "ms"),
    ]


def measure_matrix(home: Path, scratch: Path, spec: str, runs: int) -> list[dict[str, str]]:
    """The in-process prune per PRUNE_CHUNK x WRITER_GAP, beside the writer."""
    from cronctl.store import HistoryStore, retention

    chunks_text, gaps_text = spec.split(":")
    pairs = [(int(c), float(g)) for c in chunks_text.split(",") for g in gaps_text.split(",")]
    work = scratch / "work"
    samples: dict[tuple[int, float], list[tuple[float, float, float]]] = {p: [] for p in pairs}
    removed = 0
    for _ in range(runs):
        for chunk, gap_ms in pairs:
            fresh_copy(home, work)
            retention.PRUNE_CHUNK, retention.WRITER_GAP = chunk, gap_ms / 1000
            with HistoryStore(work / "history.db") as store, WriteProbe(store.path) as probe:
                began = time.perf_counter()
                removed = sum(
                    store.prune(
                        now=datetime.now(UTC), keep_days=90, default_keep_runs=int(KEEP)
                    ).values()
                )
                took = time.perf_counter() - began
            samples[(chunk, gap_ms)].append((took, probe.p99_ms(), probe.max_ms()))
            print(f"chunk {chunk}, gap {gap_ms} ms: {took:.1f}s", file=sys.stderr)
    rows = []
    for (chunk, gap_ms), values in samples.items():
        took = statistics.median(v[0] for v in values)
        rows.append(
            row(
                f"prune, {chunk} runs a transaction, {gap_ms:g} ms gap",
                took,
                "s",
                f"p99 wait {statistics.median(v[1] for v in values):.1f} ms,"
                f" longest {statistics.median(v[2] for v in values):.1f} ms",
                f"{took / (removed / 1e6):.2f} s/M",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 runs, one timed run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None, help="keep the built history here")
    parser.add_argument("--matrix", default=None, help="CHUNKS:GAPS_MS, e.g. 1000,5000:1,2")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.runs = 200_000, 1

    with tempfile.TemporaryDirectory(prefix="cronctl-bench-prune-") as scratch_name:
        scratch = Path(scratch_name)
        home = args.dir or scratch / "home"
        bench_queries.build(home, args.rows, args.tasks)
        from cronctl.store import HistoryStore

        HistoryStore(home / "history.db").close()  # its schema upgraded once, not per copy
        measure: Callable[[], list[dict[str, str]]]
        if args.matrix:
            measure = lambda: measure_matrix(home, scratch, args.matrix, args.runs)  # noqa: E731
        else:
            measure = lambda: measure_cli(home, scratch, args.runs)  # noqa: E731
        rows = measure()
    print(
        f"{args.rows:,} runs of {args.tasks} tasks; {args.runs} runs each (median);"
        f" python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; {os.cpu_count()} CPUs"
    )
    print(f"{'figure':<50} {'value':>12}  {'baseline':<34} ratio")
    for line in rows:
        print(f"{line['figure']:<50} {line['value']:>12}  {line['baseline']:<34} {line['ratio']}")
    return rows


if __name__ == "__main__":
    main()
