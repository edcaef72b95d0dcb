"""Spawn cost of the runner's process layer, against a bare `sh -c true` in the same run.

Plain script (pytest does not collect it):  python tests/benchmarks/bench_spawn.py [--runs N]

Figures:
* median wall time of run_process("true") vs subprocess.run(["sh", "-c", "true"]), interleaved;
* CPU time this process spends per run_process call (getrusage of self: children excluded),
  with the bare subprocess.run's as baseline. docs/performance.md#targets: serve spends under 3 ms
  of its own CPU per run (spawn, capture, two database writes).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cronctl.runner.process import run_process

WALL_RATIO_TARGET = 1.5
CPU_TARGET_MS = 3.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _ours(env: dict[str, str]) -> None:
    out = run_process("true", cwd=None, env=env)
    assert out.exit_code == 0, out


def _bare(env: dict[str, str]) -> None:
    subprocess.run(["/bin/sh", "-c", "true"], env=env, check=True)


def _cpu_per_call(fn, env: dict[str, str], runs: int) -> float:  # type: ignore[no-untyped-def]
    start = _cpu()
    for _ in range(runs):
        fn(env)
    return (_cpu() - start) / runs


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    runs = args.runs
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    for _ in range(20):  # warm up caches, imports, the page cache for /bin/sh
        _ours(env)
        _bare(env)

    ours: list[float] = []
    bare: list[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        _ours(env)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        _bare(env)
        bare.append(time.perf_counter() - t)
    wall_ours = statistics.median(ours) * 1000
    wall_bare = statistics.median(bare) * 1000

    cpu_ours = _cpu_per_call(_ours, env, runs) * 1000
    cpu_bare = _cpu_per_call(_bare, env, runs) * 1000

    rows: list[dict[str, object]] = [
        {
            "figure": "median wall ms, run_process('true') vs subprocess.run(sh -c true)",
            "value": round(wall_ours, 3),
            "baseline": round(wall_bare, 3),
            "ratio": round(wall_ours / wall_bare, 2),
            "target": f"ratio <= {WALL_RATIO_TARGET}",
            "passed": wall_ours / wall_bare <= WALL_RATIO_TARGET,
        },
        {
            "figure": "own CPU ms per call (children excluded), run_process vs subprocess.run",
            "value": round(cpu_ours, 3),
            "baseline": round(cpu_bare, 3),
            "ratio": round(cpu_ours / cpu_bare, 2) if cpu_bare else None,
            "target": f"value < {CPU_TARGET_MS} ms (serve's whole per-run budget)",
            "passed": cpu_ours < CPU_TARGET_MS,
        },
    ]
    print(f"runs: {runs} each; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    for row in rows:
        print(
            f"{row['figure']}: {row['value']} vs {row['baseline']} (ratio {row['ratio']}); "
            f"target {row['target']}: {'PASS' if row['passed'] else 'FAIL'}"
        )
    return rows


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all(r["passed"] for r in rows) else 1)
