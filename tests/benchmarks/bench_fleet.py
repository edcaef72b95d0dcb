"""Several serves on one PostgreSQL history against one serve on SQLite (issue 17, item 7).

Plain script (pytest does not collect it; run.py does not run it, it has no target):

    python tests/benchmarks/bench_fleet.py [--quick] [--only FIGURES]

Starts its own PostgreSQL server (tests/pgserver.py's PostgresServer: Debian's postgresql on
127.0.0.1, fsync and synchronous_commit off, the test server's settings) and exits 2 with the
install line when there is none or psycopg is missing. Every figure is measured beside its
baseline in the same run, alternating, and printed with the spread of its rounds and the ratio:

* lateness: 20 tasks `@every 1s` on three serves (distinct CRONCTL_HOST and CRONCTL_HOME, one
  CRONCTL_DB) against one serve on SQLite, the same jobs (bench_peers' stamp: "the process
  exists and runs"), the same window; every slot must start exactly once on the fleet;
* burst: 300 tasks due at one instant, the last started;
* claim cost per slot through serve: the CPU of the three serves over the lateness window
  (summed, children excluded) per run against the one SQLite serve's, and PostgreSQL's own
  CPU per run (the postmaster, its backends and those it reaped); in process, the claims of
  one instant per slot (bench_pg_store.py's `timed`) on both stores;
* `list` and `status` start-up with a PostgreSQL history against the same commands on SQLite
  and against the import floor (and the floor with psycopg imported too), alternating.
`--quick` (about 30 s) checks that every measurement runs and prints, not the figures.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_pg_store  # noqa: E402
import peers_workloads as peers  # noqa: E402
from bench_hotpath import drain_notify  # noqa: E402
from bench_peers import IMPORT_FLOOR, Context, child_env, due_window, rotated, timed  # noqa: E402
from bench_serve import TICKS, Serve, cronctl_command, percentile, task_block  # noqa: E402
from peers_report import spread  # noqa: E402
from run import machine_line  # noqa: E402

from tests.pgserver import PostgresServer, missing_postgres, started_server  # noqa: E402

FIGURES = ("lateness", "burst", "claims", "startup")
HOSTS = ("host-a", "host-b", "host-c")
KINDS = ("fleet", "sqlite")  # three serves on PostgreSQL; one serve on SQLite
PG_IMPORT_FLOOR = [sys.executable, "-c", "import typer, rich.table, croniter, psycopg"]


class Sizes:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds = 1 if quick else 3  # lateness (with CPU), burst
        self.seconds = 4 if quick else 30  # slots of a lateness round
        self.burst = 300
        self.burst_period = 5 if quick else 10
        self.claim_runs = 1 if quick else 3
        self.claim_rounds = 20 if quick else 100
        self.startup_runs = 3 if quick else 15
        self.history_runs = 50 if quick else 1000  # per task, for list and status


def server_cpu(postmaster: int) -> float:
    """PostgreSQL's CPU seconds so far: the postmaster, the backends it reaped (cutime,
    cstime) and those still running (its children's utime + stime)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster:
            total += sum(int(v) for v in fields[11:15]) / TICKS
        elif int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


class FleetPeer(peers.Peer):
    """Three `cronctl serve` processes, one per host, with the same task file and one
    PostgreSQL database; the jobs stamp into one shared file. `cpu()` is the serves' sum;
    each call also notes PostgreSQL's CPU (`server_marks`), so a window's two calls give both."""

    label = "fleet"

    def __init__(
        self, jobs: list[peers.Job], stamp: Path | None, scratch: Path, url: str, postmaster: int
    ) -> None:
        self.stamp_file = scratch / f"fleet-{time.monotonic_ns()}.stamps"
        self.with_stamp = stamp is not None
        self.url = url
        self.postmaster = postmaster
        body = "".join(
            task_block(
                name,
                peers.cronctl_schedule(i, period),
                peers.job_command(stamp, self.stamp_file, name),
            )
            for i, (name, period) in enumerate(jobs)
        )
        self.serves = [
            Serve(body, extra_env={"CRONCTL_DB": url, "CRONCTL_HOST": host}) for host in HOSTS
        ]
        self.pid = self.serves[0].proc.pid
        self.server_marks: list[float] = []

    def wait_ready(self, timeout: float = 120.0) -> float:
        slowest = 0.0
        for serve in self.serves:
            try:
                slowest = max(slowest, serve.wait_ready(timeout))
            except TimeoutError:
                log = (serve.home / "serve.log").read_text(errors="replace").strip()
                raise RuntimeError(f"a serve of the fleet not ready: {log[-400:]}") from None
            drain_notify(serve)
        return slowest

    def cpu(self) -> float:
        self.server_marks.append(server_cpu(self.postmaster))
        return sum(peers.cpu_seconds(serve.proc.pid) for serve in self.serves)

    def stamps(self) -> list[tuple[str, float]]:
        if self.with_stamp:
            return peers.read_stamps(self.stamp_file)
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            rows = db.execute(
                "SELECT task, started_at FROM runs WHERE trigger = 'schedule'"
                " AND started_at IS NOT NULL"
            ).fetchall()
        return [(task, started.timestamp()) for task, started in rows]

    def hosts_ran(self) -> Counter[str]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            rows = db.execute("SELECT host, count(*) FROM runs GROUP BY host").fetchall()
        return Counter({host: count for host, count in rows})

    def stop(self) -> None:
        for serve in self.serves:
            serve.stop()


class Bench:
    def __init__(self, context: Context, sizes: Sizes, server: PostgresServer) -> None:
        self.context = context
        self.sizes = sizes
        self.server = server
        self.postmaster = server._process.pid if server._process else 0
        self.values: dict[tuple[str, str], list[float]] = {}
        self.notes: list[str] = []

    def add(self, metric: str, kind: str, value: float) -> None:
        self.values.setdefault((metric, kind), []).append(value)

    def get(self, metric: str, kind: str) -> list[float]:
        return self.values.get((metric, kind), [])

    def window(
        self, kind: str, jobs: list[peers.Job], period: int, slots: int
    ) -> tuple[dict[str, float | list[float]], peers.Peer]:
        context = self.context
        peer: peers.Peer
        if kind == "fleet":
            url = self.server.create_database("fleet")
            peer = FleetPeer(jobs, context.stamp, context.scratch, url, self.postmaster)
        else:
            peer = peers.start_peer("cronctl", jobs, context.stamp, context.scratch)
        got = due_window(context, kind, jobs, period, slots, peer=peer)
        self.check_once(kind, peer, period)
        return got, peer

    def check_once(self, kind: str, peer: peers.Peer, period: int) -> None:
        """Every (task, slot) started at most once: the fleet's guarantee, seen from the jobs."""
        twice = [
            key for key, n in Counter((n, w // period) for n, w in peer.stamps()).items() if n > 1
        ]
        if twice:
            self.notes.append(f"{kind}: {len(twice)} slots started more than once: {twice[:3]}")
        if isinstance(peer, FleetPeer):
            spread_hosts = ", ".join(f"{h} {n}" for h, n in sorted(peer.hosts_ran().items()))
            print(f"  fleet runs by host: {spread_hosts}", file=sys.stderr)

    def lateness(self) -> None:
        jobs = [(f"s{i}", 1) for i in range(20)]
        for round_ in range(self.sizes.rounds):
            for kind in rotated(list(KINDS), round_):
                got, peer = self.window(kind, jobs, 1, self.sizes.seconds)
                late = got["late"]
                assert isinstance(late, list)
                if not late:
                    continue
                runs = float(len(late))
                self.add("late.median", kind, statistics.median(late))
                self.add("late.p99", kind, percentile(late, 0.99))
                self.add("cpu.ms_per_run", kind, float(got["cpu"]) / runs * 1000)  # type: ignore[arg-type]
                if isinstance(peer, FleetPeer) and len(peer.server_marks) >= 2:
                    pg_cpu = peer.server_marks[-1] - peer.server_marks[0]
                    self.add("pg_cpu.ms_per_run", kind, pg_cpu / runs * 1000)
                print(
                    f"lateness, round {round_ + 1}, {kind}: {len(late)} starts, median"
                    f" {statistics.median(late):.1f} ms, p99 {percentile(late, 0.99):.1f} ms,"
                    f" CPU {float(got['cpu']):.2f} s",  # type: ignore[arg-type]
                    file=sys.stderr,
                )

    def burst(self) -> None:
        period = self.sizes.burst_period
        jobs = [(f"b{i}", period) for i in range(self.sizes.burst)]
        for round_ in range(self.sizes.rounds):
            for kind in rotated(list(KINDS), round_):
                late = self.window(kind, jobs, period, 1)[0]["late"]
                assert isinstance(late, list)
                if late:
                    self.add("burst", kind, max(late) / 1000)
                    print(
                        f"burst, {kind}: {len(late)} started, last {max(late):.0f} ms",
                        file=sys.stderr,
                    )

    def claims(self) -> None:
        """In process: bench_pg_store's `timed` on both stores, alternating."""
        from cronctl.store import HistoryStore
        from cronctl.store.postgres import PostgresStore

        scratch = self.context.scratch
        for run in range(self.sizes.claim_runs):
            with HistoryStore(scratch / f"claims-{run}.db") as lite:
                figures = bench_pg_store.timed(lite, self.sizes.claim_rounds)
                self.add("claim20", "sqlite", figures["claims of 20"] / 20)
                self.add("claim1", "sqlite", figures["claim"])
            with PostgresStore(self.server.create_database("claims")) as pg:
                figures = bench_pg_store.timed(pg, self.sizes.claim_rounds)
                self.add("claim20", "fleet", figures["claims of 20"] / 20)
                self.add("claim1", "fleet", figures["claim"])

    def startup(self) -> None:
        """`list` and `status` with 20 tasks and a history, on each store, each beside the
        import floors, alternating."""
        scratch = self.context.scratch
        body = "".join(task_block(f"s{i}", "@every 1s") for i in range(20))
        homes = {kind: scratch / f"startup-{kind}" for kind in KINDS}
        url = self.server.create_database("startup")
        for home in homes.values():
            home.mkdir()
            (home / "tasks.toml").write_text(body)
        fill_history(homes["sqlite"] / "history.db", url, self.sizes.history_runs)
        envs = {"sqlite": child_env(homes["sqlite"]), "fleet": child_env(homes["fleet"])}
        envs["fleet"]["CRONCTL_DB"] = url
        commands = {name: [*cronctl_command(), name] for name in ("list", "status")}
        floors = {"floor": IMPORT_FLOOR, "floor_pg": PG_IMPORT_FLOOR}
        for kind in KINDS:  # warm-up: bytecode, page cache, schema checked once
            for argv in commands.values():
                timed(argv, envs[kind])
        for round_ in range(self.sizes.startup_runs):
            steps: list[tuple[str, str, list[str], dict[str, str]]] = [
                (name, kind, argv, envs[kind]) for name, argv in commands.items() for kind in KINDS
            ]
            steps += [(name, "floor", argv, child_env()) for name, argv in floors.items()]
            for metric, kind, argv, env in (
                steps[round_ % len(steps) :] + steps[: round_ % len(steps)]
            ):
                self.add(metric, kind, timed(argv, env)[0])


def fill_history(sqlite_path: Path, url: str, per_task: int) -> None:
    """The same runs in both stores: `per_task` finished runs of each of the 20 tasks."""
    from cronctl.records import Status, Trigger
    from cronctl.store import HistoryStore
    from cronctl.store.postgres import PostgresStore

    start = datetime.now(UTC) - timedelta(seconds=per_task + 60)
    for store in (HistoryStore(sqlite_path), PostgresStore(url)):
        with store:
            for second in range(per_task):
                at = start + timedelta(seconds=second)
                claims = [(f"s{i}", Trigger.SCHEDULE, 1, at) for i in range(20)]
                with store.batch():
                    ids = store.start_runs(claims, started_at=at)
                    for run_id in ids:
                        assert run_id is not None
                        store.finish_run(
                            run_id,
                            status=Status.SUCCEEDED,
                            finished_at=at + timedelta(milliseconds=5),
                            duration_ms=5,
                            exit_code=0,
                        )


# ------------------------------------------------------------------------------ the report


def ms(values: list[float], digits: int = 1) -> str:
    return spread(values, digits)


def ratio(bench: Bench, metric: str, kind: str, base_metric: str, base_kind: str) -> str:
    value, base = bench.get(metric, kind), bench.get(base_metric, base_kind)
    if not value or not base or not statistics.median(base):
        return "—"
    return f"{statistics.median(value) / statistics.median(base):.2f}×"


def report(bench: Bench) -> str:
    """One row a figure: the measured value (medians of the rounds, min–max), its baseline
    measured in the same run, what the baseline is, the ratio."""
    rows: list[tuple[str, ...]] = []
    against = {"sqlite": "SQLite (one serve)", "floor": "the import floor"}

    def add(
        figure: str,
        metric: str,
        digits: int = 1,
        base: tuple[str, str] | None = None,
        kind: str = "fleet",
    ) -> None:
        base_metric, base_kind = base or (metric, "sqlite")
        if not bench.get(metric, kind) or not bench.get(base_metric, base_kind):
            return
        label = against[base_kind] + (" with psycopg" if base_metric == "floor_pg" else "")
        if base_metric == "cpu.ms_per_run":
            label = "the SQLite serve's CPU a run"
        rows.append(
            (
                figure,
                ms(bench.get(metric, kind), digits),
                ms(bench.get(base_metric, base_kind), digits),
                label,
                ratio(bench, metric, kind, base_metric, base_kind),
            )
        )

    add("lateness, 20 jobs each second, median (ms)", "late.median")
    add("lateness, 20 jobs each second, p99 (ms)", "late.p99")
    add(f"burst: last of {bench.sizes.burst} started (s)", "burst", 3)
    add("serves' CPU a run, the three summed (ms)", "cpu.ms_per_run", 3)
    add("PostgreSQL's own CPU a run (ms)", "pg_cpu.ms_per_run", 3, ("cpu.ms_per_run", "sqlite"))
    add("claims of one instant, per slot, in process (ms)", "claim20", 3)
    add("a claim alone, in process (ms)", "claim1", 3)
    for name in ("list", "status"):
        add(f"`{name}` start-up (s)", name, 3)
        add(f"`{name}` start-up (s)", name, 3, ("floor", "floor"))
        add(f"`{name}` start-up (s)", name, 3, ("floor_pg", "floor"))
        add(f"`{name}` start-up on SQLite (s)", name, 3, ("floor", "floor"), "sqlite")
    lines = [
        "| figure | PostgreSQL (three serves) | baseline | the baseline | ratio |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines.append("")
    lines.append("Medians of the rounds, (min–max) where there are several.")
    lines += [f"- {note}" for note in bench.notes]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about 30 s")
    parser.add_argument("--only", default=",".join(FIGURES), help=", ".join(FIGURES))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {', '.join(unknown)}; one of {', '.join(FIGURES)}")
    reason = missing_postgres()
    if reason is not None:
        print(f"bench_fleet: {reason}", file=sys.stderr)
        return 2
    machine = machine_line("quick" if args.quick else "full")
    root = Path(tempfile.mkdtemp(prefix="cronctl-fleet-bench-"))
    failed: list[str] = []
    try:
        with started_server("cronctl-fleet-pg-") as server:
            sizes = Sizes(args.quick)
            (root / "scratch").mkdir()
            context = Context(root / "scratch", root / "cache", sizes)  # type: ignore[arg-type]
            bench = Bench(context, sizes, server)
            steps: dict[str, Callable[[], None]] = {
                "lateness": bench.lateness,
                "burst": bench.burst,
                "claims": bench.claims,
                "startup": bench.startup,
            }
            for name in names:
                began = time.perf_counter()
                try:
                    steps[name]()
                except Exception as exc:  # the other figures still measured and printed
                    traceback.print_exc()
                    failed.append(name)
                    bench.notes.append(f"{name}: did not finish: {type(exc).__name__}: {exc}")
                print(f"{name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
            print(machine + "\n")
            print(report(bench))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if failed:
        print(f"bench_fleet: {', '.join(failed)} did not finish", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
