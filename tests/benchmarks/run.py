"""Run every benchmark of the project in one go and write one report.

Plain script (pytest does not collect it):

    python tests/benchmarks/run.py [--quick] [--output FILE] [--only NAME,...]

It measures the machine's floors first (a bare `sh -c true` spawn, the import floor
`python -c "import typer, rich.table, croniter"`, plain croniter's get_next), then runs the
benchmark scripts beside it, each imported from its path and called through its `main()`:

* bench_schedule.py - Schedule.next_after against plain croniter;
* bench_spawn.py    - the runner's spawn against a bare `sh -c true`;
* bench_queries.py  - `list`, `history --failed --since 1h`, `status` on a big history
                      against the import floor;
* bench_serve.py    - serve's firing lateness, burst, CPU per run, idle cost, start-up;
* bench_peers.py    - serve against APScheduler 3.x, the floor and Debian cron (issue 18's
                      targets; needs the `bench` extra: pip install -e '.[bench]').

Each script measures its own baseline in the same run; the report is a Markdown table
(figure, value, baseline, ratio, target, pass/fail) under a line naming the machine, followed
by a histogram of serve's firing lateness (drawn with Rich on the terminal, as text in the
file). The scripts' own progress lines go to stderr, the report to stdout and, with
`--output`, to a file. Exit status 1 when a figure misses its target.

`--quick` shrinks every size (about 2 minutes in all): the figures are then indicative only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import io
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

BENCHES = ("schedule", "spawn", "queries", "serve", "peers")
HISTOGRAM_EDGES_MS = (0, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 100, 250)


# ------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_line(mode: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        one, five, fifteen = os.getloadavg()
        load = f"load average {one:.2f} {five:.2f} {fifteen:.2f} at start"
    except OSError:
        load = "load average unknown"
    return (
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}; {now}; {load}; {mode} run"
    )


# ---------------------------------------------------------------------------- baselines


def _median_ms(action, count: int, warm: int = 3) -> float:
    for _ in range(warm):
        action()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


def baselines(quick: bool) -> list[dict[str, object]]:
    """The machine's floors, measured now: what the benchmarks' ratios are relative to."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    spawn = _median_ms(
        lambda: subprocess.run(["/bin/sh", "-c", "true"], env=env, check=True), 50 if quick else 300
    )
    floor_env = {**os.environ}
    floor_env.pop("PYTHONDONTWRITEBYTECODE", None)
    imports = _median_ms(
        lambda: subprocess.run(
            [sys.executable, "-c", "import typer, rich.table, croniter"], env=floor_env, check=True
        ),
        5 if quick else 15,
        warm=2,
    )
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 1, 1, tzinfo=zone)
    iterator = croniter("*/15 9-17 * * MON-FRI", start)
    count = 2000 if quick else 20000

    def croniter_calls() -> None:
        iterator.set_current(start, force=True)
        for _ in range(count):
            iterator.get_next(datetime)

    per_call_us = _median_ms(croniter_calls, 3 if quick else 7, warm=1) * 1000 / count
    return [
        {
            "baseline": "bare `sh -c true` spawn (subprocess.run, median)",
            "value": f"{spawn:.2f} ms",
        },
        {
            "baseline": 'import floor `python -c "import typer, rich.table, croniter"` (median)',
            "value": f"{imports:.1f} ms",
        },
        {
            "baseline": "plain croniter get_next, `*/15 9-17 * * MON-FRI` (median per call)",
            "value": f"{per_call_us:.1f} us",
        },
    ]


# --------------------------------------------------------------------------- benchmarks


def load(name: str) -> ModuleType:
    path = HERE / f"bench_{name}.py"
    spec = importlib.util.spec_from_file_location(f"cronctl_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def bench_arguments(name: str, quick: bool, workdir: Path) -> list[str]:
    if name == "spawn":
        return ["--runs", "50" if quick else "200"]
    if name == "queries":
        if quick:
            return ["--rows", "100000", "--runs", "3", "--dir", str(workdir / "queries-100k")]
        return ["--rows", "1000000", "--runs", "5", "--dir", str(workdir / "queries-1m")]
    if name in ("serve", "peers"):
        return ["--quick"] if quick else []
    return []


def adapt(name: str, module: ModuleType, quick: bool) -> None:
    """Shrink the sizes of a script whose main() takes no options (bench_schedule)."""
    if name == "schedule" and quick:
        module.REPEATS = 3
        module.STARTS = module.STARTS[:500]


def run_bench(name: str, quick: bool, workdir: Path) -> tuple[list[dict[str, object]], float]:
    began = time.perf_counter()
    try:
        module = load(name)
        adapt(name, module, quick)
        main = module.main
        with contextlib.redirect_stdout(sys.stderr):  # their progress lines: not the report
            if inspect.signature(main).parameters:
                rows = main(bench_arguments(name, quick, workdir))
            else:
                rows = main()
    except BaseException as exc:  # SystemExit from a script's own checks included
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc(file=sys.stderr)
        rows = [
            {
                "figure": f"bench_{name}.py did not finish: {type(exc).__name__}: {exc}",
                "value": None,
                "baseline": None,
                "ratio": None,
                "target": "runs",
                "passed": False,
            }
        ]
    for item in rows:
        item.setdefault("bench", name)
    return list(rows), time.perf_counter() - began


# ------------------------------------------------------------------------------- report


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|")


def markdown(machine: str, floors, rows, timings: dict[str, float], histogram: str | None) -> str:
    lines = ["# cronctl benchmarks", "", machine, "", "## Baselines measured in this run", ""]
    lines += ["| baseline | value |", "| --- | --- |"]
    lines += [f"| {_cell(f['baseline'])} | {_cell(f['value'])} |" for f in floors]
    lines += ["", "## Figures", ""]
    lines += ["| bench | figure | value | baseline | ratio | target | result |"]
    lines += ["| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for item in rows:
        result = "pass" if item.get("passed") else "**FAIL**"
        lines.append(
            "| "
            + " | ".join(
                _cell(item.get(key))
                for key in ("bench", "figure", "value", "baseline", "ratio", "target")
            )
            + f" | {result} |"
        )
    passed = sum(1 for item in rows if item.get("passed"))
    lines += ["", f"{passed} of {len(rows)} figures meet their targets."]
    lines += [
        "",
        "Time per script: " + ", ".join(f"{n} {s:.0f} s" for n, s in timings.items()) + ".",
    ]
    if histogram:
        lines += [
            "",
            "## Firing lateness (bench_serve: 20 tasks `@every 1s`)",
            "",
            "```",
            histogram.rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def lateness_histogram(samples: list[float], width: int = 50):
    """Return a Rich renderable: one bar per lateness bucket (ms), with counts and shares."""
    from rich.table import Table
    from rich.text import Text

    edges = list(HISTOGRAM_EDGES_MS)
    buckets: list[tuple[str, int]] = []
    for low, high in itertools.pairwise(edges):
        count = sum(1 for s in samples if low <= s < high)
        buckets.append((f"{low:g}-{high:g}", count))
    buckets.insert(0, ("< 0", sum(1 for s in samples if s < 0)))
    buckets.append((f">= {edges[-1]:g}", sum(1 for s in samples if s >= edges[-1])))
    while buckets and buckets[-1][1] == 0:  # no empty buckets at either end
        buckets.pop()
    while buckets and buckets[0][1] == 0:
        buckets.pop(0)
    top = max((count for _, count in buckets), default=0) or 1
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] if ordered else 0.0
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] if ordered else 0.0
    table = Table(
        title=(
            f"{len(samples)} runs; median {p50:.1f} ms, p99 {p99:.1f} ms,"
            f" max {max(samples, default=0):.1f} ms"
        ),
        title_justify="left",
        show_edge=False,
        box=None,
        pad_edge=False,
    )
    table.add_column("lateness ms", justify="right")
    table.add_column("runs", justify="right")
    table.add_column("share", justify="right")
    table.add_column("")
    for label, count in buckets:
        bar = "█" * round(width * count / top) if count else ""
        table.add_row(
            label, str(count), f"{100 * count / len(samples):.1f}%", Text(bar, style="cyan")
        )
    return table


def render_text(renderable) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help=f"comma-separated: {', '.join(BENCHES)}"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep generated databases here between runs (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; one of {', '.join(BENCHES)}")

    mode = "quick (smaller sizes: indicative figures)" if args.quick else "full"
    machine = machine_line(mode)
    print(machine, file=sys.stderr)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cronctl-benchmarks-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        print("measuring baselines ...", file=sys.stderr)
        floors = baselines(args.quick)
        rows: list[dict[str, object]] = []
        timings: dict[str, float] = {}
        for name in names:
            print(f"running bench_{name}.py ...", file=sys.stderr)
            found, took = run_bench(name, args.quick, workdir)
            rows += found
            timings[name] = took

    samples = next((list(r["samples"]) for r in rows if r.get("samples")), None)
    for item in rows:
        item.pop("samples", None)
    histogram_text = render_text(lateness_histogram(samples)) if samples else None
    report = markdown(machine, floors, rows, timings, histogram_text)
    if args.output:
        args.output.write_text(report)
    if samples and sys.stdout.isatty():
        from rich.console import Console

        print(report.split("## Firing lateness")[0].rstrip())
        console = Console()
        console.print("\n[bold]Firing lateness (bench_serve: 20 tasks @every 1s)[/bold]")
        console.print(lateness_histogram(samples))
    else:
        sys.stdout.write(report)
    return 0 if all(item.get("passed") for item in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
