"""bench_peers.py's results, its Markdown table and issue 18's targets (items 2 and 3)."""

from __future__ import annotations

import statistics
from collections import defaultdict

PEERS = ("cronctl", "apscheduler", "cron", "floor")
HEADERS = ("cronctl serve", "APScheduler 3.x", "Debian cron", "floor")

# The table, measured at 417bb6e (cronctl serve's column; "—" where it had none).
BEFORE = {
    "late1": "15.7–16.0 / 31.8 ms",
    "late60": "18.5 / 35.7 ms",
    "burst": "0.74–0.86 s",
    "cpu": "3.21 s in 2 min (2.7 % of a core)",
    "idle": "33 MB",
    "scale": "4.6 s / 335 MB / — / 9.3 s",
    "prune": "4.5 s, 214 MB peak",
    "status": "1.52× the import floor",
}
# docs/performance.md's figures of the same things, kept beside.
BEFORE_DOCS = (
    ("serve's CPU a run, 20 tasks `@every 1s` (fd21f49, bench_hotpath `--only cpu`)", "1.133 ms"),
    ("lateness as history records it, same workload (fd21f49)", "12.5–13.0 / 26–30 ms"),
    (
        "slot → process exists, median / p99 (fd21f49, bench_hotpath `--only steps`)",
        "14.4 / 28.4 ms",
    ),
    ("RSS at READY → 600 s, 20 runs a second (fd21f49)", "32.2 → 40.4 MB"),
    (
        "firing lateness, 20 tasks `@every 1s`, median / p99 (bench_serve, 2026-11-28)",
        "8.5 / 19 ms",
    ),
    ("burst: last of 1,000 started (bench_serve, 2026-11-28)", "1.07 s"),
)


class Results:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.notes: list[str] = []
        self.prune_rows = 0
        self.scale_after = 10.0  # seconds after READY of the second RSS

    def add(self, metric: str, peer: str, value: float) -> None:
        self.values[(metric, peer)].append(value)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def get(self, metric: str, peer: str) -> list[float]:
        return self.values.get((metric, peer), [])

    def cpu_per_run(self, peer: str) -> float | None:
        """ms of the scheduler's CPU a run: the total over the rounds (10 ms clock ticks add up
        to a finer figure than each round's)."""
        runs = sum(self.get("cpu.runs", peer))
        return 1000 * sum(self.get("cpu.seconds", peer)) / runs if runs else None

    def median(self, metric: str, peer: str) -> float | None:
        found = self.get(metric, peer)
        return statistics.median(found) if found else None


def spread(values: list[float], digits: int) -> str:
    """The median, and min–max when there are several rounds."""
    if not values:
        return "—"
    middle = f"{statistics.median(values):,.{digits}f}"
    if len(values) == 1:
        return middle
    return f"{middle} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.2f}×"


def _late_cell(results: Results, key: str, peer: str) -> str:
    medians = results.get(f"{key}.median", peer)
    if not medians:
        return "—"
    return f"{spread(medians, 1)} / {spread(results.get(f'{key}.p99', peer), 1)} ms"


def _cpu_cell(results: Results, peer: str) -> str:
    seconds, window = results.get("cpu.seconds", peer), results.get("cpu.window", peer)
    if not seconds:
        return "—"
    total, span, runs = sum(seconds), sum(window), sum(results.get("cpu.runs", peer))
    return (
        f"{total:.2f} s in {span:.0f} s ({100 * total / span:.2f} % of a core),"
        f" {1000 * total / max(1.0, runs):.3f} ms a run (rounds:"
        f" {spread(results.get('cpu.ms_per_run', peer), 3)})"
    )


def _unit_cell(values: list[float], digits: int, unit: str) -> str:
    return "—" if not values else f"{spread(values, digits)} {unit}"


def rows(results: Results, tasks: int, runs: int) -> list[tuple[str, str, list[str], str, str]]:
    """(key, figure, a cell per peer, ratio to the floor, ratio to APScheduler)."""
    r = results
    late_rows = []
    for key, label in (("late1", "each second"), ("late60", "each minute")):
        late_rows.append(
            (
                key,
                f"lateness, 20 jobs due {label}, median / p99",
                [_late_cell(r, key, peer) for peer in PEERS],
                ratio(r.median(f"{key}.median", "cronctl"), r.median(f"{key}.median", "floor")),
                ratio(
                    r.median(f"{key}.median", "cronctl"), r.median(f"{key}.median", "apscheduler")
                ),
            )
        )
    scale_cell = "—"
    if r.get("scale.ready", "cronctl"):
        ready, at_ready, after, listed = (
            r.get(f"scale.{name}", "cronctl")
            for name in ("ready", "rss_ready", "rss_after", "list")
        )
        scale_cell = (
            f"{spread(ready, 2)} s / {spread(at_ready, 0)} MB / {spread(after, 0)} MB /"
            f" {spread(listed, 2)} s"
        )
    floor = r.get("import_floor", "floor")
    floor_cell = f"import floor {spread(floor, 3)} s" if floor else "—"
    prune_cell = "—"
    if r.get("prune.seconds", "cronctl"):
        prune_cell = (
            f"{spread(r.get('prune.seconds', 'cronctl'), 2)} s,"
            f" {spread(r.get('prune.peak', 'cronctl'), 0)} MB peak"
        )
    return [
        *late_rows,
        (
            "burst",
            "burst: last of 500 jobs started",
            [_unit_cell(r.get("burst", peer), 3, "s") for peer in PEERS],
            ratio(r.median("burst", "cronctl"), r.median("burst", "floor")),
            ratio(r.median("burst", "cronctl"), r.median("burst", "apscheduler")),
        ),
        (
            "cpu",
            "scheduler CPU, 20 jobs each second (children excluded)",
            [_cpu_cell(r, peer) for peer in PEERS],
            "—",
            ratio(r.cpu_per_run("cronctl"), r.cpu_per_run("apscheduler")),
        ),
        (
            "idle",
            "idle RSS, 1,000 tasks not due",
            [_unit_cell(r.get("idle", peer), 1, "MB") for peer in PEERS],
            "—",
            ratio(r.median("idle", "cronctl"), r.median("idle", "apscheduler")),
        ),
        (
            "scale",
            f"{tasks:,} tasks: READY / RSS at READY / {r.scale_after:g} s after / `list`",
            [scale_cell, "—", "—", floor_cell if scale_cell != "—" else "—"],
            ratio(r.median("scale.list", "cronctl"), r.median("import_floor", "floor")),
            "—",
        ),
        (
            "prune",
            f"`prune --dry-run --keep-runs 1000`, {runs:,} runs",
            [prune_cell, "—", "—", "—"],
            "—",
            "—",
        ),
        (
            "status",
            f"`status`, {runs:,} runs",
            [_unit_cell(r.get("status", "cronctl"), 3, "s"), "—", "—", floor_cell],
            ratio(r.median("status", "cronctl"), r.median("import_floor", "floor")),
            "—",
        ),
    ]


def report(results: Results, tasks: int, runs: int, quick: bool) -> str:
    lines = [
        "| figure | " + " | ".join(HEADERS) + " | cronctl / floor | cronctl / APScheduler"
        " | before (417bb6e) |",
        "| --- | " + " | ".join("---:" for _ in HEADERS) + " | ---: | ---: | ---: |",
    ]
    for key, figure, cells, to_floor, to_aps in rows(results, tasks, runs):
        lines.append(
            f"| {figure} | " + " | ".join(cells) + f" | {to_floor} | {to_aps} | {BEFORE[key]} |"
        )
    lines += [
        "",
        "Medians over the rounds, (min–max) of the rounds where there were several. CPU: utime"
        " + stime of the scheduler's process from /proc (clock ticks), children excluded, over"
        " the lateness rounds; a run's share is the total over the total of runs.",
    ]
    if quick:
        lines.append("Quick run: small sizes, the figures are indicative only.")
    lines += [f"- {note}" for note in results.notes]
    lines += ["", "Before, from docs/performance.md:", ""]
    lines += [f"- {figure}: {value}" for figure, value in BEFORE_DOCS]
    lines += ["", "Issue 18's targets (items 2 and 3):", ""]
    for item in targets(results, tasks, runs, quick):
        verdict = "pass" if item["passed"] else "miss"
        value = item["value"]
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        lines.append(f"- {item['figure']}: {shown} against {item['target']}: {verdict}")
    return "\n".join(lines)


def _target(
    figure: str, value: float | None, baseline: float | None, target: str, limit: float | None
) -> dict[str, object] | None:
    if value is None or (limit is None and baseline is None):
        return None
    bound = limit if limit is not None else baseline
    assert bound is not None
    return {
        "figure": figure,
        "value": round(value, 3),
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": round(value / baseline, 2) if baseline else None,
        "target": target,
        "passed": value <= bound,
    }


def targets(results: Results, tasks: int, runs: int, quick: bool) -> list[dict[str, object]]:
    """Issue 18's targets as run.py's rows (figure, value, baseline, ratio, target, passed)."""
    r = results
    found: list[dict[str, object] | None] = []
    for key, label in (("late1", "each second"), ("late60", "each minute")):
        ours = r.median(f"{key}.median", "cronctl")
        floor, aps = r.median(f"{key}.median", "floor"), r.median(f"{key}.median", "apscheduler")
        p99, aps_p99 = r.median(f"{key}.p99", "cronctl"), r.median(f"{key}.p99", "apscheduler")
        what = f"lateness ms, 20 jobs due {label}"
        found += [
            _target(
                f"{what}, median vs the floor",
                ours,
                floor,
                "≤ 1.1× the floor",
                None if floor is None else 1.1 * floor,
            ),
            _target(f"{what}, median vs APScheduler", ours, aps, "≤ APScheduler", None),
            _target(f"{what}, p99 vs APScheduler", p99, aps_p99, "≤ APScheduler", None),
        ]
    floor_burst = r.median("burst", "floor")
    cpu, aps_cpu = r.cpu_per_run("cronctl"), r.cpu_per_run("apscheduler")
    import_floor = r.median("import_floor", "floor")
    found += [
        _target(
            "burst of 500: s until the last started, vs the floor",
            r.median("burst", "cronctl"),
            floor_burst,
            "≤ 1.1× the floor",
            None if floor_burst is None else 1.1 * floor_burst,
        ),
        _target(
            "scheduler CPU ms a run, vs APScheduler",
            cpu,
            aps_cpu,
            "≤ 2× APScheduler",
            None if aps_cpu is None else 2 * aps_cpu,
        ),
        _target("scheduler CPU ms a run", cpu, None, "< 0.5 ms", 0.5),
        _target(
            "idle RSS MB, 1,000 tasks, vs APScheduler",
            r.median("idle", "cronctl"),
            r.median("idle", "apscheduler"),
            "≤ APScheduler",
            None,
        ),
        _target(f"READY s, {tasks:,} tasks", r.median("scale.ready", "cronctl"), None, "< 2 s", 2),
        _target(
            f"RSS MB at READY, {tasks:,} tasks",
            r.median("scale.rss_ready", "cronctl"),
            None,
            "< 200 MB",
            200,
        ),
        _target(
            f"RSS MB {r.scale_after:g} s after READY, {tasks:,} tasks",
            r.median("scale.rss_after", "cronctl"),
            None,
            "< 200 MB",
            200,
        ),
        _target(
            f"`list` s, {tasks:,} tasks",
            r.median("scale.list", "cronctl"),
            import_floor,
            "< 2 s",
            2,
        ),
        _target(
            f"`prune --dry-run` s, {runs:,} runs",
            r.median("prune.seconds", "cronctl"),
            None,
            "< 1 s per million runs",
            max(runs, 1) / 1e6,
        ),
        _target(
            f"`status` s, {runs:,} runs, vs the import floor",
            r.median("status", "cronctl"),
            import_floor,
            "≤ 1.5× the import floor",
            None if import_floor is None else 1.5 * import_floor,
        ),
    ]
    rows = [item for item in found if item is not None]
    if quick:
        for item in rows:
            item["target"] = f"{item['target']} (quick: indicative)"
    return rows
