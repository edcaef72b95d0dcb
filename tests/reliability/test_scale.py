"""Scale, reliability.md section 6, scenarios 32-33: 10,000 tasks, 1,000,000 history rows.

Timings are asserted against the targets of the scenarios with the best of a few tries
(a loaded machine slows a run down; it never speeds one up). The biggest cases, the
1,000,000-row history and a 10,000-task serve burst, are marked slow: run them with
`pytest --run-slow`. tests/benchmarks/run.py reports the same figures as ratios.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import sqlite3
import subprocess
import threading
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronctl import taskfile
from cronctl.records import FAILURE_STATUSES, Trigger
from cronctl.store import HistoryStore

from .storage_support import (
    LIMIT,
    raw,
    run_cli,
    serve_starter,
    task_text,
    wait_for,
)

SCHEDULES = [
    "*/5 * * * *",
    "H * * * *",
    "0 2 * * *",
    "H H * * MON-FRI",
    "@every 15m",
    "*/13 * * * *",
    "0 */6 * * *",
]


def best_of(times: int, action) -> float:
    """Return the shortest wall time of `times` calls of `action` (seconds)."""
    best = float("inf")
    for _ in range(times):
        began = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - began)
    return best


def best_cpu_of(times: int, action) -> float:
    """Return the least CPU time (user + system, seconds) that the child processes of one
    call of `action` used: unlike wall time, it does not grow when other tests load the
    machine (on an idle machine the two differ by a few per cent for these commands)."""
    best = float("inf")
    for _ in range(times):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        action()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def big_task_file(count: int) -> str:
    lines = ["[defaults]", 'timezone = "Europe/Berlin"', ""]
    for number in range(count):
        lines += [
            f"[tasks.task-{number:05d}]",
            f'schedule = "{SCHEDULES[number % len(SCHEDULES)]}"',
            f'command = "/usr/local/bin/job-{number} --verbose"',
            f'description = "task {number}"',
            "",
        ]
    return "\n".join(lines)


def build_history(db: Path, rows: int, tasks: int, *, span_days: int = 200) -> int:
    """Write `rows` finished runs of `tasks` tasks ending now (the real schema, one
    INSERT ... SELECT): one run per task every span/(rows/tasks), ~5% failed with a line of
    stderr, ~2% skipped. Returns now in milliseconds."""
    HistoryStore(db).close()
    now_ms = int(time.time() * 1000)
    per_task = max(1, rows // tasks)
    step_ms = span_days * 86_400_000 // per_task
    db_raw = raw(db)
    db_raw.execute("PRAGMA synchronous = OFF")
    db_raw.execute("BEGIN")
    db_raw.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1}),
        r AS (
            SELECT i, 'task-' || printf('%03d', i % {tasks}) AS task,
                   {now_ms} - ({per_task} - i / {tasks}) * {step_ms} - (i % {tasks}) * 1000 AS slot,
                   ((i * 2654435761) % 4294967291) % 100 AS dice
            FROM n
        )
        INSERT INTO runs (task, trigger, attempt, scheduled_at, started_at, finished_at,
                          duration_ms, status, exit_code, pid, reason)
        SELECT task, 'schedule', 1, slot, slot + 20, slot + 120, 100,
               CASE WHEN dice < 5 THEN 'failed' WHEN dice < 7 THEN 'skipped' ELSE 'succeeded' END,
               CASE WHEN dice < 5 THEN 1 WHEN dice < 7 THEN NULL ELSE 0 END,
               10000 + i % 30000,
               CASE WHEN dice < 5 THEN 'exit status 1'
                    WHEN dice < 7 THEN 'previous run still running' END
        FROM r
        """
    )
    db_raw.execute(
        "INSERT INTO run_output (run_id, stdout, stderr, stdout_bytes, stderr_bytes)"
        " SELECT id, CAST('' AS BLOB), CAST('error: step ' || (id % 7) || ' failed' AS BLOB), 0, 20"
        " FROM runs WHERE status = 'failed'"
    )
    db_raw.execute("COMMIT")
    db_raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db_raw.close()
    return now_ms


def history_tasks(count: int) -> str:
    return "".join(task_text(f"task-{n:03d}", "@every 15m", "true") for n in range(count))


@pytest.fixture
def serve_process(cronctl_exe, cronctl_home):
    """start(*args, env=..., preexec=...) -> a running `cronctl serve`, killed at the end."""
    yield from serve_starter(cronctl_exe, cronctl_home)


# ---------------------------------------------------------------------------- 32: tasks


def test_s32_the_cli_with_10000_tasks(cronctl_exe, cronctl_home):
    """Decided (targets): with 10,000 tasks in a ~1 MB task file, `cronctl list` takes under
    2 s and `cronctl add` under 1 s (it parses and validates the file before and after its
    append-only write), measured as the CPU time of the command (best of 2) so that a busy
    test machine does not fail it; `check` finishes within 10 s (exit 0: crowded minutes are
    warnings). Every task stays in the file, in order."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks = cronctl_home / "tasks.toml"
    tasks.write_text(big_task_file(10_000))
    assert 0.8e6 < tasks.stat().st_size < 1.3e6

    listed = []
    took = best_cpu_of(2, lambda: listed.append(run_cli(cronctl_exe, "list")))
    assert all(r.returncode == 0 for r in listed), listed[0].stderr
    assert len(listed[0].stdout.splitlines()) == 10_001  # the header, then a line a task
    assert took < 2.0, f"list took {took:.2f}s"

    names = iter(["added-1", "added-2"])
    added = []
    took = best_cpu_of(
        2, lambda: added.append(run_cli(cronctl_exe, "add", next(names), "0 3 * * *", "true"))
    )
    assert all(r.returncode == 0 for r in added), added[0].stderr
    assert took < 1.0, f"add took {took:.2f}s"

    checked: list = []
    took = best_cpu_of(1, lambda: checked.append(run_cli(cronctl_exe, "check")))
    checked = checked[0]
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert took < 10.0, f"check took {took:.2f}s"

    names_in_file = list(tomllib.loads(tasks.read_text())["tasks"])
    assert names_in_file == [f"task-{n:05d}" for n in range(10_000)] + ["added-1", "added-2"]


SCALE_SCHEDULES = [
    ("*/5 * * * *", None),
    ("0 3 * * *", "America/New_York"),
    ("@every 90s", None),
    ("0 9 * * MON-FRI", "Asia/Tokyo"),
    ("H * * * *", None),
    ("H H * * *", "Europe/Berlin"),
    ("*/13 * * * *", "UTC"),
    ("30 2 1 * *", None),
]


def scale_task_file(count: int) -> str:
    """Tasks as `cronctl add` writes them, of varied schedules, zones and jitters: 100,000
    are a file of about 14 MB."""
    lines = ["[defaults]", 'timezone = "Europe/Berlin"', ""]
    for number in range(count):
        schedule, zone = SCALE_SCHEDULES[number % len(SCALE_SCHEDULES)]
        lines += [
            f"[tasks.task-{number:06d}]",
            f'schedule = "{schedule}"',
            f'command = "/usr/local/bin/job-{number} --verbose"',
            f'description = "task {number}"',
            *([f'timezone = "{zone}"'] if zone else []),
            *(['jitter = "30s"'] if number % 3 == 0 else []),
            "",
        ]
    return "\n".join(lines)


def test_s32_serve_and_list_with_100000_tasks(cronctl_exe, cronctl_home, tmp_path):
    """Decided (issue 18, item 3): with 100,000 tasks (a 14 MB file) serve says READY=1, able
    to fire (every task planned, catch-up decided), within 2 s of its exec and under 200 MB
    on the reference machine; asserted here with room for a loaded machine: 8 s and 300 MB.
    `list` of them all takes under 2 s there (10 s of CPU here, best of 1), and
    `list --limit 20` stops at 20 rows with a note of the rest."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    tasks = cronctl_home / "tasks.toml"
    tasks.write_text(scale_task_file(100_000))
    assert 12e6 < tasks.stat().st_size < taskfile.MAX_BYTES
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    began = time.monotonic()
    serve = subprocess.Popen(
        [*cronctl_exe, "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NOTIFY_SOCKET": str(notify)},
    )
    try:
        while "READY=1" not in sock.recv(4096).decode():
            pass
        ready = time.monotonic() - began
        status = Path(f"/proc/{serve.pid}/status").read_text()
        rss_mb = (
            int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]) / 1024
        )
    finally:
        serve.terminate()
        _, stderr = serve.communicate(timeout=60)
        sock.close()
    assert serve.returncode == 0, stderr[-2000:]
    assert ready < 8.0, f"READY=1 after {ready:.2f}s"
    assert rss_mb < 300, f"{rss_mb:.0f} MB at READY=1"

    listed = []
    took = best_cpu_of(1, lambda: listed.append(run_cli(cronctl_exe, "list")))
    assert listed[0].returncode == 0, listed[0].stderr[-2000:]
    assert len(listed[0].stdout.splitlines()) == 100_001
    assert took < 10.0, f"list took {took:.2f}s of CPU"
    limited = run_cli(cronctl_exe, "list", "--limit", "20", "task-0*")
    assert len(limited.stdout.splitlines()) == 21
    assert limited.stderr.splitlines()[-1] == "note: 99980 more tasks not shown (--limit 20)."


def _lower_open_files(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@pytest.mark.slow
def test_s32_serve_with_10000_tasks_due_at_once(serve_process, cronctl_home):
    """Decided: serve loads 10,000 tasks and starts within 5 s; when all 10,000 are due at
    the same instant (jobs of 0.2 s), each one runs (one row each, `succeeded`), never more at
    once than serve's parallel limit (derived from the open-file limit: 112 with 512 descriptors,
    4 a job), and nothing fails with "Too many open files": the rest wait their turn."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    count, interval = 10_000, 30
    (cronctl_home / "tasks.toml").write_text(
        "".join(task_text(f"t{n:05d}", f"@every {interval}s", "sleep 0.2") for n in range(count))
    )
    db = cronctl_home / "history.db"
    began = time.monotonic()
    serve = serve_process(preexec=_lower_open_files(512))
    wait_for(
        lambda: "started (pid" in serve.log or not serve.alive, timeout=LIMIT, what="serve start"
    )
    assert serve.alive, serve.log
    assert time.monotonic() - began < 5.0

    def complete_slot():
        with contextlib.closing(raw(db)) as check:
            row = check.execute(
                "SELECT scheduled_at, COUNT(*) FROM runs"
                " WHERE trigger = 'schedule' AND status != 'running'"
                " GROUP BY scheduled_at HAVING COUNT(*) >= ? ORDER BY scheduled_at LIMIT 1",
                (count,),
            ).fetchone()
        return row

    slot, _ = wait_for(
        complete_slot, timeout=interval + 180, interval=1.0, what="a slot with all tasks run"
    )
    with contextlib.closing(raw(db)) as check:
        rows = check.execute(
            "SELECT task, status, started_at, finished_at FROM runs WHERE scheduled_at = ?", (slot,)
        ).fetchall()
    assert serve.stop(timeout=120) == 0
    assert len(rows) == count and len({r[0] for r in rows}) == count
    assert {r[1] for r in rows} == {"succeeded"}
    assert "Too many open files" not in serve.log and "Traceback" not in serve.log
    events = sorted(
        [(r[2], 1) for r in rows] + [(r[3], -1) for r in rows], key=lambda e: (e[0], e[1])
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert (512 - 64) // 4 // 2 < peak <= (512 - 64) // 4, peak  # the limit is used, and kept


# -------------------------------------------------------------------------- 33: history


def traced_queries(store: HistoryStore, calls) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    try:
        for call in calls:
            call()
    finally:
        store._db.set_trace_callback(None)
    return [sql for sql in seen if sql.lstrip().upper().startswith(("SELECT", "WITH"))]


def reading_calls(store: HistoryStore, now: datetime) -> dict[str, object]:
    """The store's read queries, as `list`, `show`, `history`, `status`, `metrics` and
    serve use them."""
    return {
        "history NAME --limit 20": lambda: store.runs("task-007", limit=20),
        "history": lambda: store.runs(limit=50),
        "history --failed --since 1h": lambda: store.runs(
            statuses=FAILURE_STATUSES, since=now - timedelta(hours=1)
        ),
        "history NAME --status failed": lambda: store.runs(
            "task-007", statuses=["failed"], limit=50
        ),
        "history --since 1d": lambda: store.runs(since=now - timedelta(days=1), limit=None),
        "history --trigger retry --since 2d --until 1d": lambda: store.runs(
            triggers=[Trigger.RETRY],
            since=now - timedelta(days=2),
            until=now - timedelta(days=1),
        ),
        "history NAME --trigger manual --until 1h": lambda: store.runs(
            "task-007", triggers=[Trigger.MANUAL], until=now - timedelta(hours=1)
        ),
        "history --failed --until 1h": lambda: store.runs(
            statuses=FAILURE_STATUSES, until=now - timedelta(hours=1)
        ),
        "last run (list)": lambda: store.last_run("task-007"),
        "task stats (list, show)": lambda: store.task_stats("task-007"),
        "last success (job env)": lambda: store.last_success_at("task-007"),
        "latest slot (catch-up)": lambda: store.latest_slot("task-007"),
        "task names": lambda: store.task_names(),
        "running tasks": lambda: store.running_tasks(),
        "missed (status)": lambda: store.missed_counts(now - timedelta(days=1)),
        "run counts (metrics)": lambda: store.run_counts(),
        "one run (logs)": lambda: store.get_run(5),
        "stderr heads (status)": lambda: store.stderr_heads([1, 2, 3]),
        "failures per task (status)": lambda: store.failure_counts(
            now - timedelta(days=1), now - timedelta(hours=1)
        ),
        "prune selection": lambda: store.prune(
            now=now, keep_days=90, default_keep_runs=1000, dry_run=True
        ),
    }


def test_s33_every_history_query_uses_an_index(tmp_path):
    """Decided: every query the store runs is answered from an index (EXPLAIN QUERY PLAN of
    the SQL actually executed, captured with a trace callback): no full scan of the runs or
    run_output tables and no sort of all rows. Full scans of a covering index are allowed
    where they are the point (`run_counts` for metrics, DISTINCT task names)."""
    db = tmp_path / "history.db"
    build_history(db, 20_000, 50)
    now = datetime.now(UTC)
    with HistoryStore(db) as store:
        calls = reading_calls(store, now)
        for name, call in calls.items():
            for sql in traced_queries(store, [call]):
                plan = [row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql)]
                for step in plan:
                    assert step not in ("SCAN runs", "SCAN run_output"), (name, sql, plan)
                    assert "FOR ORDER BY" not in step, (name, sql, plan)
                    if step.startswith("SCAN runs"):
                        assert "INDEX" in step, (name, sql, plan)


def test_s33_history_json_is_correct(cronctl_exe, cronctl_home):
    """Decided: `history NAME --limit N --json` returns that task's N newest runs, newest
    first (started_at, then id), with every documented key; `--json` is a JSON array read
    in one piece (at most --limit rows, default 50, are held in memory)."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(history_tasks(20))
    db = cronctl_home / "history.db"
    build_history(db, 20_000, 20)
    with contextlib.closing(raw(db)) as check:
        expected = [
            r[0]
            for r in check.execute(
                "SELECT id FROM runs WHERE task = 'task-007'"
                " ORDER BY started_at DESC, id DESC LIMIT 20"
            )
        ]
        failed = check.execute(
            "SELECT COUNT(*) FROM runs WHERE task = 'task-007' AND status = 'failed'"
        ).fetchone()[0]
    result = run_cli(cronctl_exe, "history", "task-007", "--limit", "20", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert [r["id"] for r in shown] == expected
    keys = {
        "id",
        "task",
        "trigger",
        "attempt",
        "scheduled_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "status",
        "exit_code",
        "signal",
        "reason",
    }
    assert all(keys <= set(r) and r["task"] == "task-007" for r in shown)
    starts = [datetime.fromisoformat(r["started_at"]) for r in shown]
    assert starts == sorted(starts, reverse=True)

    result = run_cli(
        cronctl_exe, "history", "task-007", "--status", "failed", "--limit", "100000", "--json"
    )
    assert len(json.loads(result.stdout)) == failed
    result = run_cli(cronctl_exe, "history", "--json", "--limit", "5000")
    assert len(json.loads(result.stdout)) == 5000


class WriteProbe:
    """Another connection writing one row every few ms, timing how long each write waits:
    what serve experiences while something else holds the write lock."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        # The probe times waiting for the lock: its own commits must not run the automatic
        # WAL checkpoint (copying prune's pages would be the probe's work, not a wait).
        connection.execute("PRAGMA wal_autocheckpoint = 0")
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
        self._thread.join(LIMIT)


def prune_under_probe(cronctl_exe, cronctl_home: Path, db: Path):
    size = db.stat().st_size
    with WriteProbe(db) as probe:
        began = time.perf_counter()
        result = run_cli(cronctl_exe, "prune", timeout=300, env={"CRONCTL_HOME": str(cronctl_home)})
        took = time.perf_counter() - began
    assert result.returncode == 0, result.stderr
    waits = sorted(probe.waits)
    return {
        "took": took,
        "size_before": size,
        "size_after": db.stat().st_size
        + (Path(f"{db}-wal").stat().st_size if Path(f"{db}-wal").exists() else 0),
        "max_wait": waits[-1],
        "p99_wait": waits[int(len(waits) * 0.99)],
        "probes": len(waits),
        "output": result.stdout,
    }


def test_s33_prune_never_holds_the_write_lock_long(cronctl_exe, cronctl_home):
    """Decided: `prune` (and serve's hourly retention) deletes in write transactions of
    windows of 1,000 ids across tasks (issue 18: at most 1,000 runs each, 2 ms apart), and
    gives the freed pages back to the file system in transactions of 500 pages (incremental
    vacuum), so a concurrent writer such as serve waits at most a few tens of ms (p99 under
    100 ms, never a second) while 160,000 of 200,000 runs go; the file shrinks accordingly."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(history_tasks(40))
    db = cronctl_home / "history.db"
    build_history(db, 200_000, 40)  # 5,000 runs a task over 200 days: 1,000 are kept
    figures = prune_under_probe(cronctl_exe, cronctl_home, db)
    with contextlib.closing(raw(db)) as check:
        kept = dict(
            check.execute("SELECT task, COUNT(*) FROM runs WHERE task != 'probe' GROUP BY task")
        )
    assert set(kept.values()) == {1000} and len(kept) == 40
    assert figures["probes"] > 20
    assert figures["p99_wait"] < 0.100, figures
    assert figures["max_wait"] < 1.0, figures
    assert figures["size_after"] < 0.4 * figures["size_before"], figures


@pytest.fixture(scope="module")
def million(tmp_path_factory):
    """1,000,000 runs of 100 tasks over 200 days (built once for the slow tests)."""
    home = tmp_path_factory.mktemp("million") / "home"
    home.mkdir()
    (home / "tasks.toml").write_text(history_tasks(100))
    build_history(home / "history.db", 1_000_000, 100)
    return home


@pytest.mark.slow
def test_s33_a_million_runs_read_fast(million, cronctl_exe, monkeypatch):
    """Decided (targets): with 1,000,000 runs, a task's last run and its stats for `list`
    take under 200 ms in-process (measured: well under 1 ms, from the index), as does
    `history NAME --limit 20`; the commands `list` (100 tasks) and `history NAME --limit 20`
    take under 1.5 s wall, start-up included; their JSON is correct."""
    monkeypatch.setenv("CRONCTL_HOME", str(million))
    db = million / "history.db"
    with HistoryStore(db) as store:
        for name, call in {
            "last run": lambda: store.last_run("task-042"),
            "task stats": lambda: store.task_stats("task-042"),
            "history NAME --limit 20": lambda: store.runs("task-042", limit=20),
            "history --failed --since 1h": lambda: store.runs(
                statuses=FAILURE_STATUSES, since=datetime.now(UTC) - timedelta(hours=1)
            ),
        }.items():
            took = best_of(3, call)
            assert took < 0.200, f"{name}: {took * 1000:.1f} ms"
        newest = [r.id for r in store.runs("task-042", limit=20)]
    for command in (["list"], ["history", "task-042", "--limit", "20"]):
        took = best_of(2, lambda command=command: run_cli(cronctl_exe, *command))
        assert took < 1.5, f"{command}: {took:.2f}s"
    shown = json.loads(
        run_cli(cronctl_exe, "history", "task-042", "--limit", "20", "--json").stdout
    )
    assert [r["id"] for r in shown] == newest


@pytest.mark.slow
def test_s33_pruning_a_million_runs(million, cronctl_exe):
    """Decided: pruning 1,000,000 runs down to 100,000 (1,000 a task) keeps every write
    transaction short (a concurrent writer waits p99 < 100 ms, never a second), takes under
    a minute, and the file shrinks to a fraction of its size."""
    db = million / "history.db"
    figures = prune_under_probe(cronctl_exe, million, db)
    assert figures["p99_wait"] < 0.100, figures
    assert figures["max_wait"] < 1.0, figures
    assert figures["took"] < 60, figures
    assert figures["size_after"] < 0.3 * figures["size_before"], figures
    with contextlib.closing(raw(db)) as check:
        assert (
            check.execute("SELECT COUNT(*) FROM runs WHERE task != 'probe'").fetchone()[0]
            == 100_000
        )
