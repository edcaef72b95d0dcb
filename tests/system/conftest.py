"""Fixtures for the system tests: tasks built through the real validation, and the real tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cronctl import model

DATA = Path(__file__).parent / "data"


def make_task(name: str, schedule: str, command: str = "true", **keys: Any) -> model.Task:
    """Return a Task validated exactly as the task file validates it (zone default UTC)."""
    table = {"schedule": schedule, "command": command, **keys}
    return model.parse_task(name, table, model.Defaults(), "UTC")


def assert_systemd_accepts(systemd_analyze: str, folder: Path, files: Any) -> None:
    """Write the exported unit `files` into `folder` and have `systemd-analyze verify` check
    them: no error, and not a word on stderr."""
    for item in files:
        (folder / item.name).write_text(item.text)
    checked = subprocess.run(
        [systemd_analyze, "verify", "--man=no", *sorted(str(p) for p in folder.iterdir())],
        capture_output=True,
        text=True,
        cwd=folder,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""


@pytest.fixture
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_CONFIG_HOME (and HOME), so unit files never land in the real home."""
    home = tmp_path / "home"
    config = home / ".config"
    config.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config
