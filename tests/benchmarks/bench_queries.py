"""CLI read commands against a big history: `list`, `history --failed --since 1h`, `status`.

Plain script (pytest does not collect it):
    python tests/benchmarks/bench_queries.py [--runs 5] [--rows 1000000] [--tasks 100] [--dir DIR]

docs/performance.md#targets: with 100 tasks and 1,000,000 history rows, each command takes at most
1.5x the time of `python -c "import typer, rich.table, croniter"` (the floor set by its own
imports). Each figure is the median wall time of real subprocesses (stdout piped, so plain output),
interleaved with the floor and measured in the same run after a warm-up.

The database is built in one transaction with INSERT ... SELECT over a recursive CTE (about
10 s); `--dir` keeps it for the next run. Runs are spread over 90 days (one run per task every
~13 min), ~5% failed, ~1% timed out, ~2% skipped, and each failure has a line of stderr.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cronctl.store import HistoryStore  # noqa: E402

RATIO_TARGET = 1.5
SPAN_SECONDS = 90 * 86400
SCHEDULES = [
    "*/5 * * * *",
    "H * * * *",
    "0 2 * * *",
    "H H * * MON-FRI",
    "@every 15m",
    "*/13 * * * *",
    "0 */6 * * *",
]
COMMANDS = {
    "list": ["list"],
    "history --failed --since 1h": ["history", "--failed", "--since", "1h"],
    "status": ["status"],
}


def task_file(tasks: int) -> str:
    lines = ["[defaults]", 'timezone = "UTC"', ""]
    for number in range(tasks):
        lines += [
            f"[tasks.task-{number:03d}]",
            f'schedule = "{SCHEDULES[number % len(SCHEDULES)]}"',
            f'command = "/usr/local/bin/job-{number} --verbose"',
            f'description = "benchmark task {number}"',
            "",
        ]
    return "\n".join(lines)


def build(home: Path, rows: int, tasks: int) -> None:
    """Create CRONCTL_HOME with `tasks` tasks and `rows` runs ending now (skipped if present)."""
    db_path = home / "history.db"
    marker = home / f".built-v3-{rows}-{tasks}"
    if marker.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob("history.db*"):
        stale.unlink()
    (home / "tasks.toml").write_text(task_file(tasks))
    now_ms = int(time.time() * 1000)
    with HistoryStore(db_path) as store:  # the real schema and pragmas
        store.serve_started(
            pid=os.getpid(),
            hostname="bench",
            version="bench",
            now=datetime.fromtimestamp(now_ms / 1000 - 86400, tz=UTC),
        )
        store.heartbeat(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    per_task = max(1, rows // tasks)
    step_ms = SPAN_SECONDS * 1000 // per_task
    started = time.perf_counter()
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    # run i: task i % tasks, its k-th run (k = i / tasks) at now - (per_task - k) * step.
    db.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1}),
        r AS (
            SELECT i,
                   'task-' || printf('%03d', i % {tasks}) AS task,
                   {now_ms} - ({per_task} - i / {tasks}) * {step_ms} - (i % {tasks}) * 1000 AS slot,
                   ((i * 2654435761) % 4294967291) % 100 AS dice,  -- a hash of i: statuses mix
                   50 + (i * 104729) % 5000 AS duration
            FROM n
        )
        INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, finished_at,
                          duration_ms, status, exit_code, signal, pid, reason)
        SELECT task, 'schedule', 1, slot, slot + 20, slot + 20 + duration, duration,
               CASE WHEN dice < 5 THEN 'failed' WHEN dice < 6 THEN 'timed_out'
                    WHEN dice < 8 THEN 'skipped' ELSE 'succeeded' END,
               CASE WHEN dice < 5 THEN 1 + dice WHEN dice < 6 THEN NULL
                    WHEN dice < 8 THEN NULL ELSE 0 END,
               NULL, 10000 + i % 30000,
               CASE WHEN dice < 5 THEN 'exit status ' || (1 + dice)
                    WHEN dice < 6 THEN 'timed out after 5m'
                    WHEN dice < 8 THEN 'previous run still running' ELSE NULL END
        FROM r
        """
    )
    db.execute(
        "INSERT INTO run_output (run_id, stdout, stderr, stdout_bytes, stderr_bytes)"
        " SELECT id, CAST('processed ' || id || ' items' AS BLOB),"
        " CAST('error: job ' || task || ' failed at step ' || (id % 7) AS BLOB), 20, 40"
        " FROM runs WHERE status IN ('failed', 'timed_out')"
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    count = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    print(
        f"built {count} runs of {tasks} tasks in {time.perf_counter() - started:.1f}s ({db_path})"
    )
    marker.touch()


def cronctl_command() -> list[str]:
    script = Path(sys.executable).with_name("cronctl")
    if script.exists() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cronctl"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):  # status may well say "unhealthy"
        raise SystemExit(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr.decode()}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep the database here between runs"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cronctl-bench-") as scratch:
        home = args.dir or Path(scratch) / "home"
        build(home, args.rows, args.tasks)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRONCTL_")}
        env.update({"CRONCTL_HOME": str(home), "NO_COLOR": "1", "TZ": "UTC"})
        # As installed: bytecode cached (the warm-up writes it; __pycache__ is git-ignored).
        # With PYTHONDONTWRITEBYTECODE an editable checkout recompiles cronctl's modules on
        # every start while the floor's libraries load their .pyc files.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        floor_argv = [sys.executable, "-c", "import typer, rich.table, croniter"]
        cronctl = cronctl_command()
        commands = {name: cronctl + words for name, words in COMMANDS.items()}

        for _ in range(2):  # warm-up: page cache, bytecode cache
            timed(floor_argv, env)
            for argv_ in commands.values():
                timed(argv_, env)
        floor: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            floor.append(timed(floor_argv, env))
            for name, argv_ in commands.items():
                times[name].append(timed(argv_, env))

    base = statistics.median(floor) * 1000
    rows: list[dict[str, object]] = []
    for name, samples in times.items():
        value = statistics.median(samples) * 1000
        rows.append(
            {
                "figure": f"median wall ms, cronctl {name} ({args.tasks} tasks,"
                f" {args.rows} runs) vs import floor",
                "value": round(value, 1),
                "baseline": round(base, 1),
                "ratio": round(value / base, 2),
                "target": f"ratio <= {RATIO_TARGET}",
                "passed": value / base <= RATIO_TARGET,
            }
        )
    print(
        f"runs: {args.runs} each (median); python {sys.version.split()[0]}; {os.cpu_count()} CPUs"
    )
    print(f"{'figure':<85} {'value':>8} {'floor':>8} {'ratio':>6}  result")
    for row in rows:
        print(
            f"{row['figure']:<85} {row['value']:>8} {row['baseline']:>8} {row['ratio']:>6}  "
            f"{'PASS' if row['passed'] else 'FAIL'} ({row['target']})"
        )
    return rows


if __name__ == "__main__":
    results = main()
    sys.exit(0 if all(r["passed"] for r in results) else 1)
