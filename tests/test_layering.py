"""The architecture, checked: core modules never import the CLI's libraries, and each concern has
one owner (only the `store` package speaks SQL, only `runner` starts processes)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cronctl"
UI_MODULES = {"typer", "rich", "click"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def module_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def is_ui(path: Path) -> bool:
    return "cli" in path.relative_to(PACKAGE).parts or path.name == "render.py"


@pytest.mark.parametrize("path", [p for p in module_files() if not is_ui(p)], ids=rel)
def test_core_does_not_import_typer_or_rich(path):
    assert not imports_of(path) & UI_MODULES


@pytest.mark.parametrize("path", module_files(), ids=rel)
def test_nobody_imports_click_directly(path):
    assert "click" not in imports_of(path)


@pytest.mark.parametrize("path", module_files(), ids=rel)
def test_only_the_store_package_speaks_sql(path):
    if path.relative_to(PACKAGE).parts[0] != "store":
        assert "sqlite3" not in imports_of(path)


def test_the_store_package_is_where_the_sql_is():
    """The rule above guards something: the store's modules are there and use sqlite3."""
    store = PACKAGE / "store"
    assert (store / "__init__.py").is_file()
    assert "sqlite3" in imports_of(store / "database.py")
    assert not (PACKAGE / "store.py").exists()


@pytest.mark.parametrize("path", module_files(), ids=rel)
def test_only_runner_starts_processes(path):
    if "runner" not in path.relative_to(PACKAGE).parts:
        assert "subprocess" not in imports_of(path)


@pytest.mark.parametrize("path", [p for p in module_files() if not is_ui(p)], ids=rel)
def test_core_takes_time_as_an_argument(path):
    source = path.read_text()
    if path.name == "clock.py":
        return
    for forbidden in ("datetime.now(", "time.sleep(", "time.time(", "datetime.utcnow("):
        assert forbidden not in source, f"{rel(path)} calls {forbidden}) instead of using a Clock"
