"""bench_fleet.py's parts that decide its figures (PostgreSQL's CPU, the table) and bench_peers'
A/B against a source tree. The benchmarks themselves are plain scripts: bench_fleet.py
`--quick` takes about 30 s with its own PostgreSQL server, over CI's budget for one test, so
it is run by hand (docs/performance.md, "Several serves on PostgreSQL")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fleet  # noqa: E402
import bench_peers  # noqa: E402
import peers_report  # noqa: E402
import peers_workloads  # noqa: E402

BURN = "import time\nend = time.process_time() + {0}\nwhile time.process_time() < end: pass\n"


def burn(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BURN.format(seconds)])


def test_server_cpu_counts_the_parent_its_live_children_and_those_it_reaped() -> None:
    before = bench_fleet.server_cpu(os.getpid())
    live = burn(0.4)
    time.sleep(0.1)
    while bench_fleet.server_cpu(os.getpid()) - before < 0.3:  # the live child counts
        assert live.poll() is None, "the child's CPU was not counted while it ran"
        time.sleep(0.02)
    live.wait()
    reaped = bench_fleet.server_cpu(os.getpid()) - before  # now in cutime
    assert 0.35 <= reaped < 5.0


def bench_with(values: dict[str, list[float]]) -> bench_fleet.Bench:
    bench = object.__new__(bench_fleet.Bench)
    bench.sizes = bench_fleet.Sizes(quick=False)
    bench.notes = ["a note"]
    bench.values = {}
    for key, found in values.items():
        metric, kind = key.split()
        for value in found:
            bench.add(metric, kind, value)
    return bench


def test_each_figure_is_beside_its_baseline_with_the_ratio_of_the_medians() -> None:
    text = bench_fleet.report(
        bench_with(
            {
                "late.median fleet": [14.0, 15.0, 16.0],
                "late.median sqlite": [10.0, 10.0, 12.0],
                "list fleet": [0.2],
                "floor floor": [0.1],
                "floor_pg floor": [0.16],
                "burst fleet": [0.3],  # no baseline: no row
            }
        )
    )
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "| lateness, 20 jobs each second, median (ms) | 15.0 (14.0–16.0) | 10.0 (10.0–12.0)"
        " | SQLite (one serve) | 1.50× |",
        "| `list` start-up (s) | 0.200 | 0.100 | the import floor | 2.00× |",
        "| `list` start-up (s) | 0.200 | 0.160 | the import floor with psycopg | 1.25× |",
    ]
    assert "- a note" in text


def test_against_base_gives_each_round_and_the_ratio_of_the_medians() -> None:
    results = peers_report.Results()
    for new, old in ((7.0, 8.0), (6.0, 8.0), (8.0, 9.0)):
        results.add("late1.median", "cronctl", new)
        results.add("late1.median", "base", old)
    text = bench_peers.against_base(results, Path("/tmp/base"))
    assert "- lateness median ms: 7, 6, 8 (median 7) against 8, 8, 9 (median 8): 0.88×" in text
    assert "burst" not in text  # not measured: no line


def test_a_serve_from_a_source_tree_has_it_first_on_its_path(tmp_path: Path) -> None:
    source = tmp_path / "tree"
    source.mkdir()
    body = '[tasks.a]\nschedule = "@yearly"\ncommand = "true"\n'
    peer = peers_workloads.CronctlPeer([], None, tmp_path, body=body, source=source)
    try:
        environ = Path(f"/proc/{peer.pid}/environ").read_bytes().split(b"\0")
    finally:
        peer.stop()
    assert f"PYTHONPATH={source}".encode() in environ


@pytest.mark.parametrize("argv", [["--only", "nonsense"], ["--only", "lateness,nope"]])
def test_an_unknown_figure_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench_fleet.main(argv)
    assert exited.value.code == 2
