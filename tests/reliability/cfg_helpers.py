"""Helpers of the part-A fault scenarios (config, output, CLI hygiene): run the real `cronctl`
script, several at once, and check that an error is one clear line and never a traceback.

Named cfg_* where a name could clash with the other reliability files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

LIMIT = 30.0  # seconds any one process or condition may take on a slow, loaded machine
PARALLEL = max(2, min(6, (os.cpu_count() or 2) * 2))


@dataclass(frozen=True)
class Call:
    """One cronctl invocation: arguments, extra environment, stdin text."""

    args: Sequence[str]
    env: Mapping[str, str | None] = field(default_factory=dict)
    input: str | bytes | None = None


def environment(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """os.environ (CRONCTL_HOME already isolated by the autouse fixture) with `extra` applied;
    a value of None removes the variable."""
    env = dict(os.environ)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def cfg_run(
    exe: Sequence[str],
    *args: str,
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float = LIMIT,
) -> subprocess.CompletedProcess[str]:
    """Run the real script; stdout and stderr as text (undecodable bytes replaced)."""
    data = input.encode() if isinstance(input, str) else input
    done = subprocess.run(
        [*exe, *args],
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        env=environment(env),
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def cfg_run_many(
    exe: Sequence[str], calls: Sequence[Call]
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent calls a few at a time (they must not share files); results in order."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda c: cfg_run(exe, *c.args, env=c.env, input=c.input), calls))


def assert_one_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Assert exit `code` and stderr of one `error: ...` line, then at most one `hint: ...`;
    return the whole of stderr (for further checks)."""
    what = (
        f"{result.args!r} -> {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    assert result.returncode == code, what
    assert "Traceback" not in result.stderr, what
    lines = result.stderr.splitlines()
    if "check" in result.args and lines and ": invalid, " in lines[-1]:
        # `check` lists every error, then a summary line (README.md#commands): here, one.
        assert ": invalid, 1 error; " in lines.pop(), what
    assert lines and lines[0].startswith("error: "), what
    assert len(lines) <= 2, what
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), what
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} missing\n{what}"
    return result.stderr


def error_names_file_and_line(stderr: str, path: Path) -> int:
    """Return the line number that the error gives after the file name (`PATH:LINE: ...`)."""
    found = re.match(rf"error: {re.escape(str(path))}:(\d+): ", stderr)
    assert found, f"no {path}:LINE in {stderr!r}"
    return int(found.group(1))


def wait_for(
    condition: Callable[[], object],
    timeout: float = LIMIT,
    interval: float = 0.05,
    what: str = "condition",
):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)


def driver(setup: str) -> list[str]:
    """argv of the real CLI entry point (`cronctl.cli:main`, as the console script calls it) in a
    fresh interpreter, after `setup` (Python code) has installed a test hook."""
    return [
        sys.executable,
        "-c",
        f"{setup}\nimport sys\nfrom cronctl.cli import main\nsys.exit(main())",
    ]


class CfgServe:
    """A real `cronctl serve` with its log in a file; always stop() or kill() it in a finally."""

    def __init__(
        self,
        exe: Sequence[str],
        home: Path,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self.home = home
        self.log_path = home.parent / f"serve-{time.monotonic_ns()}.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [*exe, "serve", *args],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=self.log_file,
            env=environment({"CRONCTL_HOME": str(home), **(env or {})}),
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runs(self, task: str | None = None) -> list:
        from cronctl.store import HistoryStore

        if not (self.home / "history.db").exists():
            return []
        with HistoryStore(str(self.home / "history.db")) as store:
            return store.runs(task, limit=None)

    def stop(self, timeout: float = LIMIT) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(LIMIT)
        if not self.log_file.closed:
            self.log_file.close()


def home_with(tmp_path: Path, name: str, content: bytes | str) -> Path:
    """A CRONCTL_HOME under `tmp_path` whose task file holds `content`."""
    home = tmp_path / name
    home.mkdir(parents=True)
    data = content.encode() if isinstance(content, str) else content
    (home / "tasks.toml").write_bytes(data)
    return home
