"""Shared fixtures: every test gets its own CRONCTL_HOME: nothing touches the user's files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# The session's PostgreSQL server and a database per test (`pg_server`, `pg_url`).
pytest_plugins = ("tests.pgserver",)

# What pyproject.toml installs: cronctl's dependencies and the test extra (import names;
# Typer carries its own Click, typer._click, so click is not among them).
INSTALLED_BY_THE_PROJECT = frozenset(
    {
        "typer",
        "rich",
        "croniter",
        "dateutil",
        "tomli_w",
        "platformdirs",
        "hypothesis",
        "aiosmtpd",
        "kubernetes_validate",
        "yaml",
        "hatchling",
        "psycopg",
    }
)
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"


class _Module(pytest.Module):
    """A test module that needs a package the project installs, in a Python that lacks it (a
    bare `python3 -m pytest`), is skipped with the line that installs it, instead of failing
    collection; modules that need only the standard library (schedules, the store, the task
    model) still run. In the README's test command everything is installed: nothing skips."""

    def _getobj(self):  # type: ignore[no-untyped-def]
        try:
            return super()._getobj()
        except self.CollectError as exc:
            cause = exc.__cause__
            if isinstance(cause, ModuleNotFoundError) and cause.name is not None:
                package = cause.name.partition(".")[0]
                if package in INSTALLED_BY_THE_PROJECT:
                    raise pytest.skip.Exception(
                        f"needs {package}, which is not installed: {INSTALL}",
                        allow_module_level=True,
                    ) from None
            raise


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    if module_path.name == "__init__.py":
        return None  # a package: pytest's own
    return _Module.from_parent(parent, path=module_path)


def pytest_report_header(config: pytest.Config) -> str | None:
    import importlib.util

    missing = sorted(p for p in INSTALLED_BY_THE_PROJECT if importlib.util.find_spec(p) is None)
    if missing:
        return (
            f"not installed: {', '.join(missing)}; the tests that need them skip."
            f" Install: {INSTALL}"
        )
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", help="also run the slow reliability scenarios"
    )


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
    for variable in (
        "CRONCTL_TASKS",
        "CRONCTL_DB",
        "NO_COLOR",
        "VISUAL",
        "EDITOR",
        "NOTIFY_SOCKET",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TZ", "UTC")
    return home


@pytest.fixture
def tasks_path(cronctl_home: Path) -> Path:
    return cronctl_home / "tasks.toml"


@pytest.fixture
def cli():
    """Invoke the app in-process: cli("add", "x", ...) -> Result (.exit_code, .stdout, .stderr)."""
    from typer.testing import CliRunner

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
