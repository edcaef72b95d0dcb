"""Where cronctl keeps its files (README.md#files).

Precedence for each path: command-line option, then its own variable (CRONCTL_TASKS,
CRONCTL_DB), then CRONCTL_HOME, then the platform's config and state folders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = "cronctl"
MEMORY = ":memory:"


@dataclass(frozen=True)
class Locations:
    tasks_file: Path
    db: str  # a file path, or ":memory:"

    @property
    def state_dir(self) -> Path:
        """Return the folder for serve.lock and other state: the database's folder."""
        if self.db == MEMORY:
            return Path(_platform_dir("state"))
        return Path(self.db).parent

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
    if db is None:
        db = env.get("CRONCTL_DB") or (
            os.path.join(home, "history.db")
            if home
            else os.path.join(_platform_dir("state"), "history.db")
        )
    db_text = os.fspath(db)
    if db_text != MEMORY:
        db_text = os.path.abspath(os.path.expanduser(db_text))
    return Locations(Path(os.path.expanduser(os.fspath(tasks_file))).absolute(), db_text)


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
