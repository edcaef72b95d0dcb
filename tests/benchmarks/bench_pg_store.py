"""The PostgreSQL store's write path against the SQLite store's, in-process, in one run.

Plain script (pytest does not collect it):
    python tests/benchmarks/bench_pg_store.py [--runs 5] [--rounds 200]

Starts its own PostgreSQL server through tests/pgserver.py (Debian's postgresql on
127.0.0.1, TCP, fsync, synchronous_commit and full_page_writes off: the test server's
settings, so the figures are the round trips and the server's CPU, not a disk's flush) and
compares, each the median over `--runs` runs (alternating the stores) of the mean over
`--rounds` rounds:

* a claim alone (`start_run` of a slot): ms a claim;
* the claims of one instant (`start_runs` of 20 slots): ms a batch, and per slot;
* the end of a run with 1 KiB of output (`finish_run`, the record returned): ms an end;
* a set_pid and an end inside one `batch()` (serve's group commit of two): ms a batch.

SQLite is a file in a temporary folder, WAL, synchronous=NORMAL: as serve writes it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cronctl.records import Output, Status, Trigger  # noqa: E402
from cronctl.store import HistoryStore  # noqa: E402
from tests.pgserver import PostgresServer, find_bindir  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=UTC)
OUT = Output(b"x" * 1024, 1024)


class Clock:
    """Distinct slots for every claim of a run."""

    def __init__(self) -> None:
        self.second = 0

    def next(self) -> datetime:
        self.second += 1
        return T0 + timedelta(seconds=self.second)


def claim_one(store, clock: Clock) -> None:
    at = clock.next()
    store.start_run("a", Trigger.SCHEDULE, started_at=at, scheduled_at=at)


def claim_twenty(store, clock: Clock) -> None:
    at = clock.next()
    store.start_runs([(f"t{i}", Trigger.SCHEDULE, 1, at) for i in range(20)], started_at=at)


def make_end(store, clock: Clock) -> Callable[[], None]:
    at = clock.next()
    run_id = store.start_run("e", Trigger.MANUAL, started_at=at)
    return lambda: store.finish_run(
        run_id, status=Status.SUCCEEDED, finished_at=at, duration_ms=5, exit_code=0, stdout=OUT
    )


def make_group(store, clock: Clock) -> Callable[[], None]:
    at = clock.next()
    first = store.start_run("g", Trigger.MANUAL, started_at=at)
    second = store.start_run("g", Trigger.MANUAL, started_at=at)

    def group() -> None:
        with store.batch():
            store.set_pid(first, 42)
            store.finish_run(second, status=Status.SUCCEEDED, finished_at=at, stdout=OUT)

    return group


def timed(store, rounds: int) -> dict[str, float]:
    clock = Clock()
    figures: dict[str, float] = {}
    for name, step in (("claim", claim_one), ("claims of 20", claim_twenty)):
        for _ in range(20):  # warm: prepared statements, caches
            step(store, clock)
        start = time.perf_counter()
        for _ in range(rounds):
            step(store, clock)
        figures[name] = (time.perf_counter() - start) / rounds * 1000
    for name, maker in (("end", make_end), ("pid + end batch", make_group)):
        for _ in range(20):
            maker(store, clock)()
        writes = [maker(store, clock) for _ in range(rounds)]
        start = time.perf_counter()
        for write in writes:
            write()
        figures[name] = (time.perf_counter() - start) / rounds * 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("needs a PostgreSQL server: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="cronctl-pg-bench-"))
    os.chmod(root, 0o755)
    server = PostgresServer(bindir, root / "pg")
    (root / "pg").mkdir()
    os.chmod(root / "pg", 0o755)
    from cronctl.store.postgres import PostgresStore

    results: dict[str, dict[str, list[float]]] = {"sqlite": {}, "postgresql": {}}
    try:
        server.start()
        for run in range(args.runs):
            with HistoryStore(root / f"h{run}.db") as sqlite_store:
                for name, value in timed(sqlite_store, args.rounds).items():
                    results["sqlite"].setdefault(name, []).append(value)
            with PostgresStore(server.create_database()) as pg_store:
                for name, value in timed(pg_store, args.rounds).items():
                    results["postgresql"].setdefault(name, []).append(value)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"medians of {args.runs} runs, mean of {args.rounds} rounds each (ms)")
    print(f"{'write':<18}{'sqlite':>10}{'postgresql':>12}{'ratio':>8}")
    for name in results["sqlite"]:
        lite = statistics.median(results["sqlite"][name])
        pg = statistics.median(results["postgresql"][name])
        print(f"{name:<18}{lite:>10.3f}{pg:>12.3f}{pg / lite:>8.2f}")
    lite = statistics.median(results["sqlite"]["claims of 20"]) / 20
    pg = statistics.median(results["postgresql"]["claims of 20"]) / 20
    print(f"{'per slot of 20':<18}{lite:>10.3f}{pg:>12.3f}{pg / lite:>8.2f}")


if __name__ == "__main__":
    main()
