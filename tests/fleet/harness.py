"""Several real serves on one PostgreSQL history, each standing for a host of its own
(README.md#more-than-one-machine): CRONCTL_HOST names it, its own CRONCTL_HOME holds its copy
of the task file, its lock and its log; CRONCTL_DB is the one database they share."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import wait_for

START_LIMIT = 60.0  # a loaded machine: serve's start-up (psycopg import, schema) may be slow


class Host:
    """One serve process standing for one host."""

    def __init__(self, name: str, home: Path, proc: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.home = home
        self.proc = proc
        self.stop_asked = False

    @property
    def log(self) -> str:
        return (self.home / "serve.log").read_text(errors="replace")

    def wait_started(self) -> None:
        wait_for(
            lambda: "cronctl serve" in self.log and "started (pid" in self.log,
            timeout=START_LIMIT,
            what=f"serve of {self.name} started",
        )

    def kill(self, number: int = signal.SIGKILL) -> None:
        self.proc.send_signal(number)

    def ask_to_stop(self) -> None:
        """One stop request (SIGTERM; SIGCONT first for a paused serve). Only one: a second
        SIGTERM would skip the grace its running jobs get."""
        if self.proc.poll() is None and not self.stop_asked:
            self.stop_asked = True
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.ask_to_stop()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.log


class Fleet:
    def __init__(self, root: Path, cronctl_exe: list[str], url: str) -> None:
        self.root = root
        self.exe = cronctl_exe
        self.url = url
        self.hosts: dict[str, Host] = {}

    def start(self, name: str, tasks: str, *args: str) -> Host:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        (home / "tasks.toml").write_text(tasks)
        env = {
            **os.environ,
            "CRONCTL_HOME": str(home),
            "CRONCTL_DB": self.url,
            "CRONCTL_HOST": name,
        }
        log = (home / "serve.log").open("wb")
        proc = subprocess.Popen(
            [*self.exe, "serve", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        host = Host(name, home, proc)
        self.hosts[name] = host
        return host

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            return db.execute(sql, params).fetchall()

    def stop_all(self) -> dict[str, str]:
        # All asked at once, then waited for: each serve's stop (its jobs' grace, its last
        # records) overlaps the others' instead of following them.
        for host in self.hosts.values():
            host.ask_to_stop()
        logs = {name: host.stop() for name, host in self.hosts.items()}
        # The jobs of a killed serve outlive it (their own process groups): end them.
        for (pid,) in self.rows("SELECT DISTINCT pid FROM runs WHERE pid IS NOT NULL"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        return logs


@contextmanager
def fleet(root: Path, cronctl_exe: list[str], url: str) -> Iterator[Fleet]:
    started = Fleet(root, cronctl_exe, url)
    try:
        yield started
    finally:
        started.stop_all()


def every_second(count: int, command: str = "true", prefix: str = "t") -> str:
    return "".join(
        f'[tasks.{prefix}{i:02d}]\nschedule = "@every 1s"\ncommand = "{command}"\n'
        for i in range(count)
    )


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
