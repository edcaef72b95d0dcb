"""Storage faults, reliability.md section 6, scenarios 21-25: a full disk, a read-only history,
long locks, a damaged database, schema versions.

Each test drives the real `cronctl` console script (and `cronctl serve` where the scenario is
about serve) against a real file system fault where the machine allows it: see
storage_support.py. The behaviour each test pins down is the decision written in its
docstring (and in the README's table of reliability decisions).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronctl.clock import SYSTEM_CLOCK
from cronctl.records import Output
from cronctl.serve.storage import open_history
from cronctl.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DamagedDatabaseError,
    DatabaseFullError,
    HistoryStore,
    ReadOnlyDatabaseError,
    open_for_serve,
)
from cronctl.store.database import SQLITE_HEADER

from ..store.support import schema_version
from .storage_support import (
    LIMIT,
    LockHolder,
    assert_one_error,
    error_lines,
    fill,
    raw,
    read_only,
    run_cli,
    runs,
    seed_runs,
    serve_starter,
    small_filesystem,
    task_text,
    wait_for,
    write_tasks,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG_OUTPUT = "head -c 300000 /dev/zero | tr '\\\\0' x"  # 300 kB: the run keeps 128 KiB of it


def first_attempt_slots(found) -> Counter:
    return Counter(
        (r.task, r.scheduled_at) for r in found if r.trigger == "schedule" and r.attempt == 1
    )


@pytest.fixture
def serve_process(cronctl_exe, cronctl_home):
    """start(*args, env=..., preexec=...) -> a running `cronctl serve`, killed at the end."""
    yield from serve_starter(cronctl_exe, cronctl_home)


# ------------------------------------------------------------------------- 21 disk full


def test_s21_disk_full_in_the_store(tmp_path):
    """Decided: a write that does not fit raises DatabaseFullError "the disk holding PATH is
    full" with the hint "free some space on that file system; nothing was recorded". The end
    of a run whose captured output does not fit is recorded without the output, with
    "output not kept: ..." in its reason (status, exit code and duration are what health,
    notifications and retries need). No transaction is left open: once there is room, writes
    work again on the same connection. (SQLite's per-connection max_page_count stands for the
    full disk, so this runs for any user; the tests below use a real full file system.)"""
    store = HistoryStore(tmp_path / "history.db")
    run_id = store.start_run("a", "manual", started_at=T0)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")

    big = Output(os.urandom(128 * 1024), 300_000, 300_000 - 128 * 1024)
    store.finish_run(
        run_id,
        status="succeeded",
        finished_at=T0 + timedelta(seconds=2),
        duration_ms=2000,
        exit_code=0,
        stdout=big,
        stderr=Output(b"", 0),
    )
    run = store.get_run(run_id)
    assert (run.status, run.exit_code, run.duration_ms) == ("succeeded", 0, 2000)
    assert "output not kept" in run.reason and "is full" in run.reason
    assert run.stdout.data == b""

    with pytest.raises(DatabaseFullError) as caught:
        for _ in range(10_000):  # rows until no page is left
            store.finish_run(
                store.start_run("a", "manual", started_at=T0),
                status="failed",
                finished_at=T0,
                reason="x" * 1000,
            )
    assert "is full" in caught.value.message and caught.value.hint
    assert not store._db.in_transaction

    store._db.execute("PRAGMA max_page_count = 1073741823")
    store.finish_run(
        store.start_run("a", "manual", started_at=T0), status="succeeded", finished_at=T0
    )
    store.close()


def test_s21_run_now_on_a_full_disk(cronctl_exe, cronctl_home, tmp_path):
    """Decided: `run-now` writes the run's row before it starts the job.
    * Room for the row but not for the output: the job runs, the run is recorded without its
      output (reason "output not kept: the disk holding ... is full"), and run-now exits with
      the job's own status.
    * No room for the row: the job is not started (nothing runs that cannot be recorded,
      the rule serve follows for its exactly-once claim); exit 1 with one line
      "error: the disk holding PATH is full" and a hint. (README.md#exit-codes has no 74: 1 =
      failure.)
    * Reading still works on the full disk: `history`, `list`, `history --json` (the store
      falls back to a read-only open that needs no new file)."""
    marker = tmp_path / "job-ran"
    with small_filesystem(cronctl_home, "2m"):
        write_tasks(cronctl_home, task_text("a", "@daily", f"touch {marker}; {BIG_OUTPUT}"))
        assert run_cli(cronctl_exe, "run-now", "a").returncode == 0  # creates the history
        marker.unlink()

        filler = fill(cronctl_home, leave=96 * 1024)
        result = run_cli(cronctl_exe, "run-now", "a")
        assert result.returncode == 0, result.stderr
        assert marker.exists()
        [latest, _] = runs(cronctl_home / "history.db", "a")
        assert latest.status == "succeeded"
        assert "output not kept" in latest.reason and "is full" in latest.reason

        marker.unlink()
        fill(cronctl_home)  # now nothing is left
        result = run_cli(cronctl_exe, "run-now", "a")
        assert result.returncode == 1
        assert_one_error(result, "is full", str(cronctl_home / "history.db"))
        assert "hint: free some space" in result.stderr
        assert not marker.exists()

        for command in (["history"], ["list"], ["show", "a"]):
            shown = run_cli(cronctl_exe, *command)
            assert shown.returncode == 0, (command, shown.stderr)
        listed = json.loads(run_cli(cronctl_exe, "history", "--json").stdout)
        assert [r["status"] for r in listed] == ["succeeded", "succeeded"]
        filler.unlink()


def test_s21_serve_keeps_going_on_a_full_disk(serve_process, cronctl_home):
    """Decided: serve logs a full disk once per kind of write (claim, end of run, heartbeat:
    "... the disk holding PATH is full"), not once per slot, and keeps scheduling. A slot
    whose row cannot be written is not run (no row, no exactly-once claim). A run that was
    going when the disk filled up is recorded when there is room again (serve keeps its
    result in memory and retries). Once space is freed, slots run and are recorded again; no
    slot runs twice; SIGTERM still stops serve cleanly (exit 0), without a traceback."""
    with small_filesystem(cronctl_home, "2m"):
        write_tasks(
            cronctl_home,
            task_text("slow", "@every 1s", "sleep 2; echo done"),
            task_text("tick", "@every 1s", "echo tick"),
        )
        db = cronctl_home / "history.db"
        serve = serve_process()
        serve.wait_started()
        going = wait_for(lambda: runs(db, "slow", statuses=["running"]), what="a running run")[0]

        filler = fill(cronctl_home)
        wait_for(lambda: "is full" in serve.log, what="the full disk logged")
        time.sleep(3)  # three more slots of each task while full
        assert serve.alive, serve.log
        # Which writes fail first depends on the moment the disk fills: slot claims ("not
        # started"), or, while a run's end waits in memory, the `skipped` rows its overlap
        # makes. Either way each kind of write is logged once, never once per slot.
        full = [line for line in serve.log.splitlines() if "is full" in line]
        kinds = Counter(
            "claim"
            if "not started" in line
            else "skip"
            if "skipped run of" in line
            else "end"
            if "cannot record the end of run" in line
            else "other"
            for line in full
        )
        assert kinds["claim"] + kinds["skip"] >= 1, serve.log
        assert kinds["claim"] <= 1 and kinds["skip"] <= 1, serve.log
        assert kinds["end"] <= 2, serve.log  # at most the two runs that were going

        filler.unlink()
        freed = datetime.now(UTC)
        wait_for(
            lambda: next(
                (r for r in runs(db, "slow") if r.id == going.id and r.status != "running"), None
            ),
            what="the run that was going recorded",
        )
        assert [r.status for r in runs(db, "slow") if r.id == going.id] == ["succeeded"]
        wait_for(
            lambda: [r for r in runs(db, "tick", statuses=["succeeded"]) if r.scheduled_at > freed],
            what="runs after the disk was freed",
        )
        assert serve.stop() == 0
        assert "Traceback" not in serve.log
        assert max(first_attempt_slots(runs(db)).values()) == 1


def test_s21_serve_start_on_a_full_disk(cronctl_exe, cronctl_home):
    """Decided: serve that cannot write its state at start (no room even for the pid in
    serve.lock or SQLite's -shm file) exits 1 with one error line naming the disk and the
    database, no traceback; under systemd Restart=on-failure tries again every 5 s."""
    with small_filesystem(cronctl_home, "2m"):
        write_tasks(cronctl_home, task_text("a", "@every 1s", "true"))
        seed_runs(cronctl_home / "history.db")
        filler = fill(cronctl_home)
        result = run_cli(cronctl_exe, "serve", timeout=30)
        filler.unlink()
    assert result.returncode == 1
    assert_one_error(result, "is full")


# -------------------------------------------------------------------- 22 read-only history


@pytest.mark.parametrize("what", ["file", "folder"])
def test_s22_read_only_history(what, cronctl_exe, cronctl_home, tmp_path):
    """Decided: with a read-only history.db, or a read-only state folder (no -wal/-shm can
    be created), the read commands work as usual: `list`, `history` (and --json), `show`,
    `logs`, `status` (the store opens `mode=ro`, or `immutable=1` when SQLite cannot create
    its -shm file and no -wal holds changes). `serve` refuses to start: exit 1, one error
    line naming the path it cannot write. `run-now` does not start the job: exit 1,
    "error: the history database PATH is read-only" and a hint. Nothing is written."""
    marker = tmp_path / "job-ran"
    write_tasks(cronctl_home, task_text("a", "@daily", f"touch {marker}"))
    db = cronctl_home / "history.db"
    seed_runs(db, "a", 3)
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    before = db.read_bytes()

    with read_only(db if what == "file" else cronctl_home):
        listed = run_cli(cronctl_exe, "list")
        assert listed.returncode == 0 and "a\t@daily" in listed.stdout, listed.stderr
        shown = json.loads(run_cli(cronctl_exe, "history", "--json").stdout)
        assert [r["task"] for r in shown] == ["a"] * 3
        assert run_cli(cronctl_exe, "history").returncode == 0
        assert run_cli(cronctl_exe, "show", "a").returncode == 0
        logs = run_cli(cronctl_exe, "logs", str(shown[0]["id"]))
        assert logs.returncode == 0 and "output of run 2" in logs.stdout
        status = run_cli(cronctl_exe, "status")
        assert status.returncode == 1 and not error_lines(status.stderr)  # unhealthy: no serve

        served = run_cli(cronctl_exe, "serve", timeout=30)
        assert served.returncode == 1
        assert_one_error(served, str(cronctl_home))

        ran = run_cli(cronctl_exe, "run-now", "a")
        assert ran.returncode == 1
        assert_one_error(ran, "read-only", str(db))
        assert not marker.exists()
    assert db.read_bytes() == before


def test_s22_read_only_folder_without_a_history(cronctl_exe, cronctl_home):
    """Decided: a read-only state folder with no history.db yet reads as an empty history
    (`list`, `history` exit 0) and creates nothing."""
    write_tasks(cronctl_home, task_text("a", "@daily", "true"))
    with read_only(cronctl_home):
        assert run_cli(cronctl_exe, "list").returncode == 0
        result = run_cli(cronctl_exe, "history", "--json")
        assert result.returncode == 0 and json.loads(result.stdout) == []
    assert sorted(p.name for p in cronctl_home.iterdir()) == ["tasks.toml"]


# ------------------------------------------------------------------------- 23 long locks


def test_s23_a_long_reader_does_not_block_writes(serve_process, cronctl_exe, cronctl_home):
    """Decided (WAL): while another process holds a read transaction (`BEGIN; SELECT`),
    `run-now` records its run at once and serve records every slot. The WAL grows while the
    reader keeps the checkpoint from finishing, and is emptied (checkpoint TRUNCATE) when
    serve stops after the reader ended."""
    write_tasks(cronctl_home, task_text("a", "@every 1s", "true"), task_text("m", "@daily", "true"))
    db = cronctl_home / "history.db"
    seed_runs(db, "m", 1)
    wal = Path(f"{db}-wal")
    with LockHolder(db, "BEGIN"):
        began = time.monotonic()
        result = run_cli(cronctl_exe, "run-now", "m")
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - began < 4  # never waited for the busy timeout (5 s)

        serve = serve_process()
        serve.wait_started()
        wait_for(
            lambda: len(runs(db, "a", statuses=["succeeded"])) >= 3,
            what="3 runs recorded under a reader",
        )
        assert wal.exists() and wal.stat().st_size > 0
    wait_for(
        lambda: len(runs(db, "a", statuses=["succeeded"])) >= 4, what="a run after the reader ended"
    )
    assert serve.stop() == 0
    assert not wal.exists() or wal.stat().st_size == 0
    assert "Traceback" not in serve.log


def test_s23_a_long_writer_and_the_cli(cronctl_exe, cronctl_home, tmp_path):
    """Decided: while another process holds the write lock (`BEGIN IMMEDIATE`), read commands
    answer at once (WAL readers never wait); a CLI write (`run-now`) waits the busy timeout
    (5 s), then exits 1 with one line "error: the history database PATH is locked by another
    process (waited 5s)" and a hint; its job is not started."""
    marker = tmp_path / "job-ran"
    write_tasks(cronctl_home, task_text("a", "@daily", f"touch {marker}"))
    db = cronctl_home / "history.db"
    seed_runs(db, "a", 2)
    with LockHolder(db, "BEGIN IMMEDIATE"):
        for command in (["list"], ["history"], ["status"]):
            began = time.monotonic()
            result = run_cli(cronctl_exe, *command)
            assert time.monotonic() - began < 4, command
            assert not error_lines(result.stderr), (command, result.stderr)
        began = time.monotonic()
        result = run_cli(cronctl_exe, "run-now", "a")
        waited = time.monotonic() - began
    assert result.returncode == 1
    assert 4.5 <= waited < 20, waited
    assert_one_error(result, "locked by another process", str(db))
    assert "hint:" in result.stderr
    assert not marker.exists()


def test_s23_a_long_writer_and_serve(serve_process, cronctl_home):
    """Decided: serve survives a write lock held by another process for longer than the
    busy timeout: it logs "... is locked by another process" once per kind of write, keeps
    its loop, and slots due while the lock is held are not run without their row; once the
    lock is released, slots run and are recorded again, none twice."""
    write_tasks(cronctl_home, task_text("a", "@every 1s", "true"))
    db = cronctl_home / "history.db"
    serve = serve_process()
    serve.wait_started()
    wait_for(lambda: len(runs(db, "a", statuses=["succeeded"])) >= 2, what="2 runs")
    with LockHolder(db, "BEGIN IMMEDIATE"):
        wait_for(
            lambda: "locked by another process" in serve.log, timeout=LIMIT, what="the lock logged"
        )
        time.sleep(2)
        assert serve.alive, serve.log
    released = datetime.now(UTC)
    wait_for(
        lambda: [r for r in runs(db, "a", statuses=["succeeded"]) if r.scheduled_at > released],
        what="a run after the lock was released",
    )
    assert serve.stop() == 0
    assert "Traceback" not in serve.log
    assert max(first_attempt_slots(runs(db)).values()) == 1
    locked = [line for line in serve.log.splitlines() if "locked by another process" in line]
    assert len(locked) <= 4, locked  # once per kind of write (claim, heartbeat, ...), not per slot


# --------------------------------------------------------------------- 24 damaged history


def damage(db: Path, kind: str) -> None:
    if kind == "garbage body":
        # SQLite's header, then random bytes. (Random bytes from the first byte on are no
        # SQLite file at all: refused and never moved since h9, see test_h9_*.)
        db.write_bytes(SQLITE_HEADER + os.urandom(db.stat().st_size - len(SQLITE_HEADER)))
    elif kind == "truncated":
        with open(db, "r+b") as handle:
            handle.truncate(6000)
    elif kind == "bad page":
        check = raw(db)
        root = check.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        size = check.execute("PRAGMA page_size").fetchone()[0]
        check.close()
        with open(db, "r+b") as handle:  # the runs table's root page
            handle.seek((root - 1) * size)
            handle.write(os.urandom(size))
    else:
        raise ValueError(kind)


DAMAGES = ["garbage body", "truncated", "bad page"]


@pytest.mark.parametrize("kind", DAMAGES)
def test_s24_the_cli_reports_a_damaged_history(kind, cronctl_exe, cronctl_home):
    """Decided: CLI commands that need the history say, in one line, that PATH "is not a
    cronctl history database, or it is damaged (SQLite's reason)", with the hint that
    `cronctl serve` moves a damaged history aside and starts a new one; exit 1; the file is
    left exactly as it was (the CLI never moves or repairs it)."""
    write_tasks(cronctl_home, task_text("a", "@daily", "true"))
    db = cronctl_home / "history.db"
    seed_runs(db, "a", 50)
    damage(db, kind)
    before = db.read_bytes()
    for command in (["history"], ["list"], ["status"], ["run-now", "a"]):
        result = run_cli(cronctl_exe, *command)
        assert result.returncode == 1, (command, result.stdout)
        assert_one_error(result, "damaged", str(db))
        assert "hint: `cronctl serve` moves a damaged history aside" in result.stderr
    assert db.read_bytes() == before
    assert sorted(p.name for p in cronctl_home.glob("history.db*")) in (
        ["history.db"],
        ["history.db", "history.db-shm", "history.db-wal"],
    )


@pytest.mark.parametrize("kind", DAMAGES)
def test_s24_open_for_serve_moves_a_damaged_history_aside(kind, tmp_path):
    """Decided (store level): `open_for_serve` runs `PRAGMA quick_check`; a file SQLite
    cannot read, or one with problems, is renamed to history.db.corrupt-<UTC time>
    (with its -wal and -shm), a new empty history is created in its place, and the caller
    learns where the old one went. The moved bytes are the damaged file, untouched."""
    db = tmp_path / "state" / "history.db"
    seed_runs(db, "a", 50)
    damage(db, kind)
    damaged = db.read_bytes()
    store, moved = open_for_serve(db, now=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    try:
        assert moved == db.with_name("history.db.corrupt-20260304T050607Z")
        assert moved.read_bytes() == damaged
        assert store.runs() == [] and schema_version(db) == SCHEMA_VERSION
        store.start_run("a", "manual", started_at=T0)
    finally:
        store.close()
    with pytest.raises(DamagedDatabaseError):
        HistoryStore(moved).runs()


def test_s24_open_for_serve_refuses_what_it_must_not_move(tmp_path):
    """Decided: only damage is moved aside. A read-only history, and a schema from a newer
    cronctl, make `open_for_serve` raise (serve exits 1) and leave the file where it is."""
    db = tmp_path / "history.db"
    seed_runs(db, "a", 1)
    with read_only(db), pytest.raises(ReadOnlyDatabaseError):
        open_for_serve(db, now=T0)
    raw_db = raw(db)
    raw_db.execute("PRAGMA user_version = 99")
    raw_db.close()
    with pytest.raises(Exception, match="newer cronctl"):
        open_for_serve(db, now=T0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.db"]


def test_s24_serve_opens_its_history_with_a_loud_recovery(tmp_path, caplog):
    """Decided (serve's side, in-process): `serve.storage.open_history` moves a damaged
    history aside and logs one ERROR line naming the damaged path and where it went."""
    db = tmp_path / "history.db"
    seed_runs(db, "a", 5)
    damage(db, "garbage body")
    logger = logging.getLogger("cronctl.serve")
    logger.addHandler(caplog.handler)  # serve's log may not propagate (serve.log.setup)
    try:
        with caplog.at_level(logging.INFO, logger="cronctl.serve"):
            store = open_history(str(db), SYSTEM_CLOCK)
    finally:
        logger.removeHandler(caplog.handler)
    store.close()
    [moved] = [
        p for p in tmp_path.glob("history.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    ]
    errors = sorted({r.getMessage() for r in caplog.records if r.levelno == logging.ERROR})
    assert len(errors) == 1 and str(db) in errors[0] and str(moved) in errors[0]


@pytest.mark.parametrize("kind", DAMAGES)
def test_s24_serve_moves_a_damaged_history_aside(kind, serve_process, cronctl_home):
    """Decided: at start, serve checks the history (quick_check); a damaged one is moved to
    history.db.corrupt-<UTC time> (with -wal/-shm), a new one is created, serve logs it at
    error level naming both paths, and runs as usual. tasks.toml is never touched."""
    tasks = write_tasks(cronctl_home, task_text("a", "@every 1s", "true"))
    tasks_before = tasks.read_bytes()
    db = cronctl_home / "history.db"
    seed_runs(db, "a", 50)
    damage(db, kind)
    damaged = db.read_bytes()
    serve = serve_process()
    serve.wait_started()
    [moved] = [
        p
        for p in cronctl_home.glob("history.db.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert moved.read_bytes() == damaged
    assert str(moved) in serve.log and " error " in serve.log
    wait_for(lambda: runs(db, "a", statuses=["succeeded"]), what="a run in the new history")
    assert serve.stop() == 0
    assert tasks.read_bytes() == tasks_before


# ----------------------------------------------------------------------- 25 schema versions


def make_schema_1(db: Path, legacy_runs: int = 3) -> None:
    old = raw(db)
    old.execute("PRAGMA auto_vacuum = INCREMENTAL")
    old.execute("PRAGMA journal_mode = WAL")
    old.executescript(MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    for number in range(legacy_runs):
        old.execute(
            "INSERT INTO runs (task, trigger, started_at, finished_at, status, exit_code)"
            " VALUES ('legacy', 'manual', ?, ?, 'succeeded', 0)",
            (1_700_000_000_000 + number, 1_700_000_001_000 + number),
        )
    old.close()


def test_s25_an_old_schema_is_migrated_once_by_racing_processes(cronctl_exe, cronctl_home):
    """Decided: a history from schema 1 opened by eight cronctl processes at once (six
    readers, two `run-now`) is migrated exactly once (under BEGIN IMMEDIATE each re-reads
    `user_version`); every process succeeds and sees the old runs; the new column and table
    exist once."""
    write_tasks(cronctl_home, task_text("a", "@daily", "true"))
    db = cronctl_home / "history.db"
    make_schema_1(db)
    env = {**os.environ, "NO_COLOR": "1"}
    commands = [["history", "--json"]] * 6 + [["run-now", "a"]] * 2
    procs = [
        subprocess.Popen(
            [*cronctl_exe, *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for c in commands
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    for (out, err), command in zip(outputs, commands, strict=True):
        assert "Traceback" not in err
        if command[0] == "history":
            legacy = [r for r in json.loads(out) if r["task"] == "legacy"]
            assert len(legacy) == 3 and all(r["notify_error"] is None for r in legacy)
    check = raw(db)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = [row[1] for row in check.execute("PRAGMA table_info(runs)")]
    assert columns.count("notify_error") == 1
    assert (
        check.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'serves'").fetchone()[0] == 1
    )
    assert check.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 5
    check.close()


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_s25_a_newer_schema_is_refused_and_left_untouched(
    journal, cronctl_exe, cronctl_home, tmp_path
):
    """Decided: a history whose `user_version` is newer than this cronctl's schema is refused
    by every command that opens it (`history`, `list`, `run-now`, `serve`): exit 1, one line
    "... was created by a newer cronctl (schema 99; this cronctl knows N)", hint "upgrade
    cronctl; the database was not changed". Nothing is written to it, not even the journal
    mode (a newer cronctl may have chosen another)."""
    marker = tmp_path / "job-ran"
    write_tasks(cronctl_home, task_text("a", "@daily", f"touch {marker}"))
    db = cronctl_home / "history.db"
    seed_runs(db, "a", 2)
    future = raw(db)
    future.execute(f"PRAGMA journal_mode = {journal}")
    future.execute("PRAGMA user_version = 99")
    future.close()
    before = db.read_bytes()
    for command in (["history"], ["list"], ["run-now", "a"], ["serve"]):
        result = run_cli(cronctl_exe, *command, timeout=30)
        assert result.returncode == 1, (command, result.stderr)
        assert_one_error(result, "created by a newer cronctl", "schema 99")
        assert "hint: upgrade cronctl" in result.stderr
    assert not marker.exists()
    assert db.read_bytes() == before
    check = raw(db)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == journal
    check.close()


@pytest.mark.parametrize("owner", ["another application id", "foreign tables"])
def test_s25_a_database_of_another_program_is_refused(owner, cronctl_exe, cronctl_home):
    """Decided: a SQLite file that is not cronctl's (another `application_id`, or tables of
    its own and no cronctl schema) is refused with one line "PATH is a SQLite database of
    another program, not a cronctl history database"; cronctl never creates its tables in
    it."""
    write_tasks(cronctl_home, task_text("a", "@daily", "true"))
    db = cronctl_home / "history.db"
    other = raw(db)
    other.execute("CREATE TABLE notes (body TEXT)")
    other.execute("INSERT INTO notes VALUES ('keep me')")
    if owner == "another application id":
        other.execute("PRAGMA application_id = 1234")
    other.close()
    before = db.read_bytes()
    for command in (["history"], ["run-now", "a"]):
        result = run_cli(cronctl_exe, *command)
        assert result.returncode == 1, (command, result.stderr)
        assert_one_error(result, "another program", str(db))
    assert db.read_bytes() == before
    check = raw(db)
    assert [r[0] for r in check.execute("SELECT name FROM sqlite_master")] == ["notes"]
    check.close()
