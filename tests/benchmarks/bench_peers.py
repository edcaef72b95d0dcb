"""cronctl serve against APScheduler 3.x, the floor and Debian cron (issue 18, item 5).

Plain script (pytest does not collect it; run.py runs it as `--only peers`):

    python tests/benchmarks/bench_peers.py [--quick] [--only FIGURES]
                                           [--soak SECONDS [--soak-peers]]
                                           [--base DIR] [--rounds N] [--seconds N]

Needs APScheduler: `pip install -e '.[bench]'` (exit status 2 without it).

The same workloads, alternating, each scheduler in its own process (peers_workloads.py), every
job the same command (a stamp compiled from C: "the process exists and runs"):
* lateness, 20 jobs due each second, and 20 jobs due each minute: median and p99 of each round;
* burst: 500 jobs due at one instant, when the last one started;
* scheduler CPU (utime + stime from /proc, children excluded) over the lateness rounds;
* idle RSS with 1,000 tasks not due;
* 100,000 tasks: serve's READY time and RSS at READY and 10 s after; `cronctl list`; the
  import floor;
* `prune --dry-run --keep-runs 1000` at 5 M runs (time, peak RSS) and `status`, against the
  import floor (the database is built once with SQL and cached in --cache by a content key).
Output: a Markdown table (medians over the rounds, the spread min-max, ratios to the floor and
to APScheduler, the figures before, at 417bb6e), then issue 18's targets with pass or miss.
`--quick` shrinks every size (under 90 s): it checks that everything runs, not the targets.
`--soak SECONDS` runs serve at 20 jobs a second instead, printing its RSS every 60 s.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import peers_workloads as peers  # noqa: E402
from bench_queries import build as build_history  # noqa: E402
from bench_serve import cronctl_command, percentile  # noqa: E402
from peers_report import Results, report, targets  # noqa: E402
from run import machine_line  # noqa: E402

FIGURES = ("lateness", "minute", "burst", "idle", "scale", "prune")
DUE_PEERS = ("cronctl", "apscheduler", "floor")
IMPORT_FLOOR = [sys.executable, "-c", "import typer, rich.table, croniter"]


class Sizes:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds = 1 if quick else 3  # lateness (with CPU), burst
        self.seconds = 4 if quick else 40  # slots of a lateness round (2 min of CPU in full)
        self.minute_slots = 0 if quick else 2
        self.burst_period = 5 if quick else 10
        self.idle_rounds = 1 if quick else 2
        self.idle_settle = 2.0 if quick else 5.0
        self.scale_tasks = 10_000 if quick else 100_000
        self.scale_after = 3.0 if quick else 10.0
        self.list_runs = 1 if quick else 2
        self.prune_rows = 50_000 if quick else 5_000_000
        self.prune_runs = 1 if quick else 2
        self.status_runs = 1 if quick else 3


class Context:
    def __init__(self, scratch: Path, cache: Path, sizes: Sizes) -> None:
        self.scratch = scratch
        self.cache = cache
        self.sizes = sizes
        self.stamp = peers.compile_stamp(scratch)
        self.cron_absent = peers.cron_available()
        self.results = Results()
        self.base: Path | None = None  # --base: a cronctl source tree run as `base`

    def due_kinds(self) -> list[str]:
        """The schedulers of the lateness and burst rounds: `base` too with `--base`."""
        return [*DUE_PEERS, "base"] if self.base is not None else [*DUE_PEERS]

    def start(self, kind: str, jobs: list[peers.Job]) -> peers.Peer:
        if kind == "base":
            return peers.CronctlPeer(jobs, self.stamp, self.scratch, source=self.base)
        return peers.start_peer(kind, jobs, self.stamp, self.scratch)

    def due_peers(self, with_cron: bool) -> list[str]:
        return [*DUE_PEERS, "cron"] if with_cron and self.cron_absent is None else [*DUE_PEERS]


def rotated(items: list[str], by: int) -> list[str]:
    """Alternate which scheduler goes first from one round to the next."""
    by %= len(items)
    return items[by:] + items[:by]


def sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


# ------------------------------------------------------------------------------ due jobs


def due_window(
    context: Context,
    kind: str,
    jobs: list[peers.Job],
    period: int,
    slots: int,
    peer: peers.Peer | None = None,
) -> dict[str, float | list[float]]:
    """Run `jobs` on one scheduler for `slots` slots of `period`: lateness of every start (ms),
    the scheduler's CPU from half a second before the first slot to the end of the last.
    `peer`: one already started with `jobs` (bench_fleet.py's serves), stopped here too."""
    if peer is None:
        peer = context.start(kind, jobs)
    expected = len(jobs) * slots
    try:
        peer.wait_ready()
        first = (int(time.time() + 1.0) // period + 1) * period
        last = first + (slots - 1) * period
        sleep_until(first - 0.5)
        cpu0, began = peer.cpu(), time.time()
        wanted = {name for name, _ in jobs}

        def counted() -> list[float]:
            return [
                (when - slot) * 1000
                for name, when in peer.stamps()
                if name in wanted and first <= (slot := when // period * period) <= last
            ]

        sleep_until(last + min(period, 1.0))
        give_up = last + min(period - 0.5, 30.0)
        while len(counted()) < expected and time.time() < give_up:
            time.sleep(0.1)
        cpu = peer.cpu() - cpu0
        window = time.time() - began
        rss = peers.rss_mb(peer.pid)
        late = counted()
    finally:
        peer.stop()
    if len(late) < expected:
        print(f"  {kind}: {expected - len(late)} of {expected} starts not seen", file=sys.stderr)
    return {"late": late, "cpu": cpu, "window": window, "runs": float(len(late)), "rss": rss}


def lateness(context: Context) -> None:
    sizes = context.sizes
    jobs = [(f"s{i}", 1) for i in range(20)]
    for round_ in range(sizes.rounds):
        for kind in rotated(context.due_kinds(), round_):
            got = due_window(context, kind, jobs, 1, sizes.seconds)
            late = got["late"]
            assert isinstance(late, list)
            if not late:
                continue
            context.results.add("late1.median", kind, statistics.median(late))
            context.results.add("late1.p99", kind, percentile(late, 0.99))
            cpu, runs = float(got["cpu"]), float(got["runs"])  # type: ignore[arg-type]
            context.results.add("cpu.seconds", kind, cpu)
            context.results.add("cpu.runs", kind, runs)
            context.results.add("cpu.window", kind, float(got["window"]))  # type: ignore[arg-type]
            context.results.add("cpu.ms_per_run", kind, cpu / max(1.0, runs) * 1000)
            print(
                f"lateness, round {round_ + 1}, {kind}: {len(late)} starts, median"
                f" {statistics.median(late):.1f} ms, p99 {percentile(late, 0.99):.1f} ms;"
                f" CPU {cpu:.2f} s",
                file=sys.stderr,
            )


def minute(context: Context) -> None:
    slots = context.sizes.minute_slots
    if not slots:
        context.results.note("lateness each minute: skipped in --quick (a minute a scheduler)")
        return
    jobs = [(f"m{i}", 60) for i in range(20)]
    for kind in context.due_peers(with_cron=True):
        late = due_window(context, kind, jobs, 60, slots)["late"]
        assert isinstance(late, list)
        if late:
            context.results.add("late60.median", kind, statistics.median(late))
            context.results.add("late60.p99", kind, percentile(late, 0.99))
            print(f"minute, {kind}: {len(late)} starts", file=sys.stderr)


def burst(context: Context) -> None:
    sizes = context.sizes
    jobs = [(f"b{i}", sizes.burst_period) for i in range(500)]
    for round_ in range(sizes.rounds):
        for kind in rotated(context.due_kinds(), round_):
            late = due_window(context, kind, jobs, sizes.burst_period, 1)["late"]
            assert isinstance(late, list)
            if late:
                context.results.add("burst", kind, max(late) / 1000)
                print(
                    f"burst, {kind}: {len(late)} started, last {max(late):.0f} ms", file=sys.stderr
                )
    if context.cron_absent is None and not sizes.quick:
        cron_jobs = [(f"b{i}", 60) for i in range(500)]
        late = due_window(context, "cron", cron_jobs, 60, 1)["late"]
        assert isinstance(late, list)
        if late:
            context.results.add("burst", "cron", max(late) / 1000)


# ------------------------------------------------------------------------------ idle, scale


def idle(context: Context) -> None:
    jobs = [(f"i{i}", 0) for i in range(1000)]
    kinds = ["cronctl", "apscheduler"] + (["cron"] if context.cron_absent is None else [])
    for round_ in range(context.sizes.idle_rounds):
        for kind in rotated(kinds, round_):
            peer = peers.start_peer(kind, jobs, context.stamp, context.scratch)
            try:
                peer.wait_ready()
                time.sleep(context.sizes.idle_settle)
                context.results.add("idle", kind, peers.rss_mb(peer.pid))
            finally:
                peer.stop()


def child_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONCTL_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env.update({"NO_COLOR": "1", "TZ": "UTC"})
    if home is not None:
        env["CRONCTL_HOME"] = str(home)
    return env


def timed(argv: list[str], env: dict[str, str], timeout: float = 600) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, output piped away."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{' '.join(argv)}: no answer in {timeout:g} s")
        time.sleep(0.005)
    elapsed = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    errors = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, 1):  # status says "unhealthy" with exit 1
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {errors.strip()}")
    return elapsed, usage.ru_maxrss / 1024


def import_floor(context: Context, runs: int) -> None:
    for _ in range(runs):
        context.results.add("import_floor", "floor", timed(IMPORT_FLOOR, child_env())[0])


def scale(context: Context) -> None:
    count, after = context.sizes.scale_tasks, context.sizes.scale_after
    context.results.scale_after = after
    timed(IMPORT_FLOOR, child_env())  # warm-up
    peer = peers.CronctlPeer([], None, context.scratch, body=peers.compact_idle_tasks(count))
    try:
        ready = peer.wait_ready(300)
        context.results.add("scale.ready", "cronctl", ready)
        context.results.add("scale.rss_ready", "cronctl", peers.rss_mb(peer.pid))
        time.sleep(after)
        context.results.add("scale.rss_after", "cronctl", peers.rss_mb(peer.pid))
        home = peer.serve.home
        list_home = context.scratch / "list-home"
        list_home.mkdir(exist_ok=True)
        shutil.copy(home / "tasks.toml", list_home / "tasks.toml")
    finally:
        peer.stop()
    argv = [*cronctl_command(), "list"]
    timed(argv, child_env(list_home))  # warm-up: the history file made, bytecode cached
    for _ in range(context.sizes.list_runs):
        import_floor(context, 1)
        context.results.add("scale.list", "cronctl", timed(argv, child_env(list_home))[0])


# ------------------------------------------------------------------------------ prune


def history_home(context: Context, rows: int, tasks: int = 100) -> Path:
    """A CRONCTL_HOME with `rows` runs, cached by a key of the schema and the builder's code."""
    schema = (ROOT / "cronctl" / "store" / "schema.py").read_bytes()
    key = hashlib.sha256(
        schema + inspect.getsource(build_history).encode() + f"{rows}/{tasks}".encode()
    ).hexdigest()[:12]
    home = context.cache / f"history-{rows}-{key}"
    started = time.perf_counter()
    build_history(home, rows, tasks)  # skipped when its marker is there
    print(
        f"history of {rows} runs: {home} ({time.perf_counter() - started:.1f} s)", file=sys.stderr
    )
    return home


def prune(context: Context) -> None:
    sizes = context.sizes
    home = history_home(context, sizes.prune_rows)
    env = child_env(home)
    prune_argv = [*cronctl_command(), "prune", "--dry-run", "--keep-runs", "1000"]
    status_argv = [*cronctl_command(), "status"]
    timed(status_argv, env)  # warm-up: page cache, bytecode cache
    for _ in range(sizes.prune_runs):
        seconds, peak = timed(prune_argv, env)
        context.results.add("prune.seconds", "cronctl", seconds)
        context.results.add("prune.peak", "cronctl", peak)
    for _ in range(sizes.status_runs):
        import_floor(context, 1)
        context.results.add("status", "cronctl", timed(status_argv, env)[0])
    context.results.prune_rows = sizes.prune_rows


# ------------------------------------------------------------------------------ soak


def soak(context: Context, seconds: float, with_peers: bool) -> None:
    jobs = [(f"s{i}", 1) for i in range(20)]
    kinds = ["cronctl", "apscheduler"] if with_peers else ["cronctl"]
    running = {kind: peers.start_peer(kind, jobs, context.stamp, context.scratch) for kind in kinds}
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    try:
        for peer in running.values():
            peer.wait_ready()
        began = time.monotonic()
        while True:
            elapsed = time.monotonic() - began
            line = [f"soak {elapsed:5.0f} s"]
            for kind, peer in running.items():
                samples[kind].append((elapsed, peers.rss_mb(peer.pid)))
                line.append(f"{kind} {samples[kind][-1][1]:.1f} MB")
            print("; ".join(line), flush=True)
            if elapsed >= seconds:
                break
            time.sleep(
                max(0.0, began + min(seconds, len(samples[kinds[0]]) * 60) - time.monotonic())
            )
    finally:
        for peer in running.values():
            peer.stop()
    for kind, points in samples.items():
        end = points[-1][1]
        at_ten = next((rss for when, rss in points if when >= 600), None)
        if at_ten is None:
            print(
                f"{kind}: RSS {points[0][1]:.1f} MB at READY, {end:.1f} MB at the end"
                " (the soak ended before 10 minutes)"
            )
        else:
            verdict = "pass" if abs(end - at_ten) <= 2 else "miss"
            print(
                f"{kind}: RSS {at_ten:.1f} MB at 10 min, {end:.1f} MB at the end"
                f" ({end - at_ten:+.1f} MB; target within 2 MB: {verdict})"
            )


# ------------------------------------------------------------------------------ main


def against_base(results: Results, base: Path) -> str:
    """`--base`: this tree's serve beside the base tree's, round by round, and the ratio of
    the medians of the rounds."""
    lines = [
        f"\ncronctl (this tree) against base ({base}), each round's figure, medians, ratio:",
    ]
    for metric, label in (
        ("late1.median", "lateness median ms"),
        ("late1.p99", "lateness p99 ms"),
        ("cpu.ms_per_run", "CPU ms a run"),
        ("burst", "burst: last started s"),
    ):
        new, old = results.get(metric, "cronctl"), results.get(metric, "base")
        if new and old:
            lines.append(
                f"- {label}: {', '.join(f'{v:.3g}' for v in new)} (median"
                f" {statistics.median(new):.3g}) against {', '.join(f'{v:.3g}' for v in old)}"
                f" (median {statistics.median(old):.3g}):"
                f" {statistics.median(new) / statistics.median(old):.2f}×"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 90 s")
    parser.add_argument("--only", default=",".join(FIGURES), help=", ".join(FIGURES))
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="RSS over a long run")
    parser.add_argument("--soak-peers", action="store_true", help="APScheduler beside in --soak")
    parser.add_argument(
        "--base",
        type=Path,
        metavar="DIR",
        help="a cronctl source tree (`git archive COMMIT | tar -x -C DIR`) run as a fourth"
        " scheduler, `base`, in the lateness and burst rounds: an A/B of a change",
    )
    parser.add_argument("--rounds", type=int, help="rounds of lateness and burst (default 3)")
    parser.add_argument("--seconds", type=int, help="slots of a lateness round (default 40)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "cronctl-bench-peers",
        help="where the generated histories are kept between runs",
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("apscheduler") is None:
        print(
            "bench_peers: APScheduler is not installed; pip install -e '.[bench]'", file=sys.stderr
        )
        raise SystemExit(2)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {', '.join(unknown)}; one of {', '.join(FIGURES)}")
    args.cache.mkdir(parents=True, exist_ok=True)
    machine = machine_line("quick" if args.quick else "full")  # the load average at the start
    with tempfile.TemporaryDirectory(prefix="cronctl-peers-") as scratch:
        context = Context(Path(scratch), args.cache, Sizes(args.quick))
        context.base = args.base.resolve() if args.base else None
        context.sizes.rounds = args.rounds or context.sizes.rounds
        context.sizes.seconds = args.seconds or context.sizes.seconds
        if context.stamp is None:
            context.results.note(
                "no gcc: lateness is history's started_at for cronctl and the pre-spawn time"
                " for the others (not the job's own stamp)"
            )
        if context.cron_absent:
            print(f"Debian cron: {context.cron_absent}")
            context.results.note(f"Debian cron: {context.cron_absent}")
        if args.soak:
            soak(context, args.soak, args.soak_peers)
            return []
        steps = {
            "lateness": lateness,
            "minute": minute,
            "burst": burst,
            "idle": idle,
            "scale": scale,
            "prune": prune,
        }
        failed = []
        for name in names:
            began = time.perf_counter()
            try:
                steps[name](context)
            except Exception as exc:  # the other figures still measured and printed
                traceback.print_exc()
                failed.append(name)
                context.results.note(f"{name}: did not finish: {type(exc).__name__}: {exc}")
            print(f"{name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
        sizes = context.sizes
        print(machine + "\n")
        print(report(context.results, sizes.scale_tasks, sizes.prune_rows, args.quick))
        if context.base is not None:
            print(against_base(context.results, context.base))
        if failed:
            raise SystemExit(f"bench_peers: {', '.join(failed)} did not finish")
        return targets(context.results, sizes.scale_tasks, sizes.prune_rows, args.quick)


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    rows = main()
    sys.exit(0 if quick or all(bool(r["passed"]) for r in rows) else 1)
