"""Where cronctl keeps its files (README.md#files).

Precedence for each path: command-line option, then its own variable (CRONCTL_TASKS,
CRONCTL_DB), then, for the database, `db` in the task file's [defaults], then CRONCTL_HOME,
then the platform's config and state folders.

The database is a file path, or a URL (`postgresql://USER@HOST/DB`: a history shared by
several hosts, README.md#more-than-one-machine). A URL is kept as given; which schemes are
supported is the store's to say when it opens one (cronctl.store.opening), so that an
unsupported scheme is refused there and never becomes a folder named `scheme:`. With a URL,
serve's lock and other state live in CRONCTL_HOME, else the platform's state folder.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = "cronctl"
MEMORY = ":memory:"
# The most of a task file cronctl reads (README.md#the-task-file): the loader's limit
# (cronctl.taskfile.MAX_BYTES), here where completion and the database lookup read it without
# importing the task file package (30 ms a TAB).
TASK_FILE_LIMIT = 16 * 1024 * 1024
# The URL schemes of a database setting that cronctl opens: PostgreSQL's two (libpq's own).
POSTGRES_SCHEMES = ("postgresql", "postgres")


# `scheme://`, as RFC 3986 spells a scheme: what makes a --db value a URL, not a path.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A `db = ...` line in a table that mentions `defaults`, the only way the task file can name
# the database ([defaults] db): only a file that has one is parsed here, so that a task file
# of 100,000 tasks is not parsed twice (this pattern over all of its 8.7 MB took 48 ms; the
# search for the word "defaults" first, 4 ms).
_DB_LINE = re.compile(
    rb"(?:^|[{,])[ \t]*(?:defaults[ \t]*\.[ \t]*)?[\"']?db[\"']?[ \t]*=", re.MULTILINE
)


def host_name(environ: Mapping[str, str] | None = None) -> str:
    """The name of this host in a shared history (README.md#more-than-one-machine): the run
    rows it writes and its serve's row carry it. CRONCTL_HOST where set (several serves on
    one machine, tests), else the machine's hostname."""
    env = os.environ if environ is None else environ
    # uname's node name is what gethostname(2) returns, without importing socket (2 ms of
    # every command's start: every store records its host).
    return env.get("CRONCTL_HOST", "").strip() or os.uname().nodename


def is_url(db: str) -> bool:
    """Whether a database setting is a URL (`postgresql://...`), not a file path."""
    return _URL.match(db) is not None


# `user:password@`: the part of a URL no message may show. Up to the last `@`, since a
# password may hold an unescaped `@` or `/`: masking too much is harmless, too little is not.
_PASSWORD = re.compile(r"(?<=://)([^/@:]*):.*@")
_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)[^&]*")


def masked(db: str) -> str:
    """The database setting as messages show it: a URL's password replaced by `***`."""
    if not is_url(db):
        return db
    return _PASSWORD_PARAMETER.sub(r"\1***", _PASSWORD.sub(r"\1:***@", db))


@dataclass(frozen=True)
class Locations:
    tasks_file: Path
    db: str  # a file path, ":memory:", or a URL (postgresql://...)
    home: Path | None = None  # CRONCTL_HOME: the state folder when the database is a URL

    @property
    def db_is_file(self) -> bool:
        """Whether the history is a SQLite file (not :memory:, not a URL)."""
        return self.db != MEMORY and not is_url(self.db)

    @property
    def state_dir(self) -> Path:
        """Return the folder for serve.lock and other state: the database's folder, or, for a
        database in memory or behind a URL, CRONCTL_HOME, else the platform's state folder."""
        if self.db_is_file:
            return Path(self.db).parent
        if self.home is not None:
            return self.home
        return Path(_platform_dir("state"))

    @property
    def serve_lock(self) -> Path:
        return self.state_dir / "serve.lock"


def resolve(
    tasks_file: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Locations:
    """Return the task file and database paths in force."""
    env = os.environ if environ is None else environ
    home = env.get("CRONCTL_HOME")
    if tasks_file is None:
        tasks_file = env.get("CRONCTL_TASKS") or (
            os.path.join(home, "tasks.toml")
            if home
            else os.path.join(_platform_dir("config"), "tasks.toml")
        )
    tasks_path = Path(os.path.expanduser(os.fspath(tasks_file))).absolute()
    if db is None:
        db = (
            env.get("CRONCTL_DB")
            or database_in_task_file(tasks_path)
            or (
                os.path.join(home, "history.db")
                if home
                else os.path.join(_platform_dir("state"), "history.db")
            )
        )
    db_text = os.fspath(db)
    if db_text != MEMORY and not is_url(db_text):
        db_text = os.path.abspath(os.path.expanduser(db_text))
    return Locations(tasks_path, db_text, Path(home).absolute() if home else None)


def _sets_database(content: bytes) -> bool:
    """Whether a table of the file that mentions `defaults` has a `db = ` line."""
    start = content.find(b"defaults")
    while start != -1:
        line = content.rfind(b"\n", 0, start) + 1
        end = content.find(b"\n[", start)
        end = len(content) if end == -1 else end
        if _DB_LINE.search(content, line, end) is not None:
            return True
        start = content.find(b"defaults", end)
    return False


def _regular_file_bytes(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file of at most TASK_FILE_LIMIT bytes, else None:
    a FIFO, /dev/zero or a huge file named as the task file must not hang or fill memory here
    (the loader refuses them with its own error)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_size > TASK_FILE_LIMIT:
            return None
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(TASK_FILE_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def database_in_task_file(tasks_file: Path) -> str | None:
    """`db` of the task file's [defaults], if it sets one: a URL as written, a path relative
    to the task file's folder. A file that cannot be read or parsed sets none here: whoever
    loads it reports why (the model checks the key's value)."""
    content = _regular_file_bytes(tasks_file)
    if content is None or not _sets_database(content):
        return None
    import tomllib  # here: only a file with a `db = ` line pays for it

    try:
        defaults = tomllib.loads(content.decode("utf-8")).get("defaults")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = defaults.get("db") if isinstance(defaults, dict) else None
    if not isinstance(value, str) or not value:
        return None
    if is_url(value) or value == MEMORY:
        return value
    return os.path.join(tasks_file.parent, os.path.expanduser(value))


def _platform_dir(kind: str) -> str:
    # Imported only when asked: with CRONCTL_HOME or both paths given (scripts, tests, the
    # benchmarks), loading platformdirs would add about 2 ms to every command for nothing.
    import platformdirs

    if kind == "config":
        return platformdirs.user_config_dir(APP)
    return platformdirs.user_state_dir(APP)


def ensure_private_dir(path: Path) -> None:
    """Create `path` and missing parents as 0700 folders (existing folders are left alone)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
