"""A real PostgreSQL server for the tests of the PostgreSQL store, on 127.0.0.1, for one session.

Which server: Debian's `postgresql` package (`.ci/run` installs it; `apt-get install
postgresql` elsewhere). It is the server most hosts of a fleet run, kept patched by the
distribution, and needs nothing from the network at test time; the `pgserver` wheel would
bring binaries of its own build from a small project instead. The binaries are found under
/usr/lib/postgresql/<version>/bin, or through `pg_config --bindir`.

The cluster is made by `initdb` in a temporary folder (trust authentication on loopback, no
password: the tests connect as the cluster's owner) and started with durability off (fsync,
synchronous_commit, full_page_writes): a test's database lives for seconds, and this makes
`CREATE DATABASE` and commits several times faster. PostgreSQL refuses to run as root, so under
root the cluster belongs to the `postgres` user of the package (or `nobody`).

The server stops by itself: at the end of the session (fast shutdown), and, should pytest be
killed, by the parent-death signal `setpriv --pdeathsig` gives it. Every test that asks for
`pg_url` gets a database of its own, created from template0.

Without a server or without psycopg, the tests that need one skip with the line that installs
it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_SERVER = "apt-get install postgresql"
INSTALL_DRIVER = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"
START_TIMEOUT = 30.0


def find_bindir() -> Path | None:
    """The folder with `initdb` and `postgres` of the newest installed PostgreSQL."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
    )
    for folder in reversed(candidates):
        if os.access(os.path.join(folder, "initdb"), os.X_OK):
            return Path(folder)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        folder = Path(out.stdout.strip())
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _owner() -> pwd.struct_passwd | None:
    """Who runs the server: None for the current user, else the unprivileged account to use."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1:port, owned by this test session."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = _free_port()
        self.owner = _owner()
        self.user = self.owner.pw_name if self.owner else pwd.getpwuid(os.getuid()).pw_name
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    def _as_owner(self, argv: list[str]) -> list[str]:
        # setpriv execs the program itself (no shell or runuser between), so the parent-death
        # signal lands on the server's postmaster: killed pytest, stopped server.
        prefix = ["setpriv", "--pdeathsig", "INT"]
        if self.owner is not None:
            prefix += [
                f"--reuid={self.owner.pw_uid}",
                f"--regid={self.owner.pw_gid}",
                "--clear-groups",
            ]
        return [*prefix, "--", *argv]

    def start(self) -> None:
        self.sockets.mkdir(parents=True)
        self.data.mkdir()
        if self.owner is not None:
            for folder in (self.root, self.data, self.sockets):
                os.chown(folder, self.owner.pw_uid, self.owner.pw_gid)
        subprocess.run(
            self._as_owner(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    self.user,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self._launch()

    def _launch(self) -> None:
        """Start the postmaster on the initialised cluster and wait until it takes connections."""
        settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1"]
        argv += ["-p", str(self.port), "-k", str(self.sockets)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with open(self.root / "server.log", "ab") as log:
            self._process = subprocess.Popen(
                self._as_owner(argv), stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log_tail()}")
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready after {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql (for tests that need the server's view: no driver involved)."""
        out = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.url(database),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown: open sessions are ended, the server exits."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def resume(self) -> None:
        """Start the stopped cluster again, on the same port (the tests of an outage)."""
        if self._process is not None and self._process.poll() is None:
            return
        self._launch()


def missing_postgres() -> str | None:
    """Why no PostgreSQL server can be started here (the tests skip with it), else None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return f"needs psycopg, which is not installed: {INSTALL_DRIVER}"
    if find_bindir() is None:
        return f"needs a PostgreSQL server, which is not installed: {INSTALL_SERVER}"
    if shutil.which("setpriv") is None:
        return "needs setpriv (util-linux) to run the PostgreSQL server"
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (skips when there is none: see the module docstring)."""
    reason = missing_postgres()
    if reason is not None:
        pytest.skip(reason)
    with started_server("cronctl-pg-") as server:
        yield server


@contextlib.contextmanager
def started_server(prefix: str) -> Iterator[PostgresServer]:
    """A new server in a temporary folder named `prefix...`, stopped and removed after (a test
    that stops its server uses one of its own, never the session's)."""
    bindir = find_bindir()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    server = PostgresServer(bindir, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server."""
    return pg_server.create_database()
