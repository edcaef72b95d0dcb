"""Helpers for the storage-fault and scale scenarios (test_storage_faults.py, test_scale.py).

Everything here drives real processes: the `cronctl` console script, `cronctl serve`, and
small Python helpers that hold SQLite locks from another process. File-system faults are
made real where the machine allows it:

* a full disk: a small tmpfs mounted for the test (needs root, i.e. CAP_SYS_ADMIN; skipped
  otherwise), filled with a filler file;
* a read-only file or folder: `chmod a-w` for an ordinary user; for root, which ignores
  permissions, a read-only bind mount (skipped when mounting is not allowed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC
from functools import partial
from pathlib import Path

import pytest

from cronctl.store import HistoryStore
from tests import support

LIMIT = 30.0
"""Seconds any one awaited condition may take on a slow, loaded machine."""

TASK = '[tasks.{name}]\nschedule = "{schedule}"\ncommand = "{command}"\ntimezone = "UTC"\n{extra}\n'


def task_text(
    name: str, schedule: str = "@every 1s", command: str = "true", extra: str = ""
) -> str:
    return TASK.format(name=name, schedule=schedule, command=command, extra=extra)


wait_for = partial(support.wait_for, timeout=LIMIT)


def write_tasks(home: Path, *blocks: str) -> Path:
    """Write the task file of `home` from task blocks (see task_text)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "tasks.toml"
    path.write_text("".join(blocks))
    return path


def run_cli(exe: list[str], *args: str, timeout: float = 60, env: dict[str, str] | None = None):
    """Run the real console script; text output, never raises on a non-zero exit."""
    return subprocess.run(
        [*exe, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_error(result, *needles: str) -> str:
    """Exactly one `error:` line (a `hint:` line may follow), no traceback; return the line."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, result.stderr)
    others = [
        line
        for line in result.stderr.splitlines()
        if line and not line.startswith(("error:", "hint:"))
    ]
    assert not others, result.stderr
    return errors[0]


def runs(db: Path, task: str | None = None, **filters):
    if not db.exists():
        return []
    with HistoryStore(db) as store:
        return store.runs(task, limit=None, **filters)


def seed_runs(db: Path, task: str = "a", count: int = 3) -> list[int]:
    """Record `count` finished manual runs of `task` (the store is the contract)."""
    from datetime import datetime, timedelta

    from cronctl.records import Output

    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    with HistoryStore(db) as store:
        for number in range(count):
            at = start + timedelta(minutes=number)
            run_id = store.start_run(task, "manual", started_at=at)
            store.finish_run(
                run_id,
                status="succeeded",
                finished_at=at + timedelta(seconds=1),
                duration_ms=1000,
                exit_code=0,
                stdout=Output(f"output of run {number}\n".encode(), 16),
            )
            ids.append(run_id)
        store.checkpoint()
    return ids


# ----------------------------------------------------------------------------- processes


class LockHolder:
    """Another process holding a SQLite transaction on `db` until released (or `seconds`)."""

    CODE = textwrap.dedent(
        """
        import sqlite3, sys, time
        db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
        db.execute(sys.argv[2])
        if sys.argv[2] == "BEGIN":
            db.execute("SELECT COUNT(*) FROM runs").fetchone()  # the read snapshot starts here
        else:
            db.execute("UPDATE runs SET reason = reason WHERE id = -1")
        print("held", flush=True)
        sys.stdin.readline()  # released when the test closes our stdin (or dies)
        db.execute("COMMIT")
        """
    )

    def __init__(self, db: Path, begin: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.CODE, str(db), begin],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        assert line == "held", f"lock holder did not start: {line!r}"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(LIMIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Serve:
    """`cronctl serve` as a real process, its stderr in a file."""

    def __init__(
        self,
        exe: list[str],
        home: Path,
        *args: str,
        env: dict[str, str] | None = None,
        preexec=None,
    ) -> None:
        self.home = home
        self.log_path = home.parent / f"serve-{time.monotonic_ns()}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115  (closed by stop/kill)
        environment = {**os.environ, "CRONCTL_HOME": str(home), **(env or {})}
        self.proc = subprocess.Popen(
            [*exe, "serve", "--grace", "2", "--kill-grace", "1", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.log_file,
            env=environment,
            preexec_fn=preexec,  # noqa: PLW1509  (only to lower a resource limit)
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_started(self) -> None:
        wait_for(lambda: "started (pid" in self.log or not self.alive, what="serve start")
        assert self.alive, self.log

    def stop(self, timeout: float = LIMIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(LIMIT)
        self.log_file.close()


def serve_starter(exe: list[str], home: Path):
    """For a `serve_process` fixture: yields start(*args, env=..., preexec=...) -> Serve and
    kills every serve it started at the end."""
    started: list[Serve] = []

    def start(*args: str, env: dict[str, str] | None = None, preexec=None) -> Serve:
        process = Serve(exe, home, *args, env=env, preexec=preexec)
        started.append(process)
        return process

    home.mkdir(parents=True, exist_ok=True)
    try:
        yield start
    finally:
        for process in started:
            process.kill()


# ---------------------------------------------------------------------- file-system faults


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _umount(path: Path) -> None:
    for _ in range(50):
        result = subprocess.run(["umount", str(path)], check=False, capture_output=True, text=True)
        if result.returncode == 0:
            return
        time.sleep(0.1)  # busy: a process still has a file open there
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `path` for the test (root only; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("a small file system needs root to mount a tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {getattr(exc, 'stderr', exc)}")
    try:
        yield path
    finally:
        _umount(path)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of `folder` with a filler file, then give back `leave` bytes."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    block = b"\0" * 4096
    try:
        while True:
            os.write(fd, block)
    except OSError:
        pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def free_bytes(folder: Path) -> int:
    fs = os.statvfs(folder)
    return fs.f_bavail * fs.f_frsize


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """Make a file or a folder read-only for cronctl; yield how ("chmod" or "bind mount")."""
    if os.geteuid() != 0:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~0o222)
        try:
            yield "chmod"
        finally:
            path.chmod(mode)
        return
    try:
        _mount("--bind", str(path), str(path))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(
            "root ignores chmod and cannot bind-mount read-only here:"
            f" {getattr(exc, 'stderr', exc)}"
        )
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield "bind mount"
    finally:
        _umount(path)


def sqlite_header(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(100)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)
