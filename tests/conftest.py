"""Shared fixtures: every test gets its own CRONCTL_HOME, so nothing touches the real user's files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the slow reliability scenarios")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def cronctl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cronctl-home"
    monkeypatch.setenv("CRONCTL_HOME", str(home))
    for variable in ("CRONCTL_TASKS", "CRONCTL_DB", "NO_COLOR", "VISUAL", "EDITOR", "NOTIFY_SOCKET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TZ", "UTC")
    return home


@pytest.fixture
def tasks_path(cronctl_home: Path) -> Path:
    return cronctl_home / "tasks.toml"


@pytest.fixture
def cli():
    """Invoke the app in-process: cli("add", "x", ...) -> Result with .exit_code, .stdout, .stderr."""
    from cronctl.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def cronctl_exe() -> list[str]:
    """The real console script when installed, else `python -m cronctl`."""
    script = Path(sys.executable).with_name("cronctl")
    if script.exists() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cronctl"]
