"""The README for a newcomer (issue 14, item 12): the Python it needs is the one pyproject
requires, it installs from the checkout (cronctl is not on a package index), and its first
command leaves `cronctl` on PATH by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def first_command() -> str:
    block = re.search(r"^```[^\n]*\n(.*?)^```", README, re.MULTILINE | re.DOTALL)
    assert block is not None
    return block.group(1).splitlines()[0]


def test_c12_the_readme_states_the_python_pyproject_requires():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    required = pyproject["project"]["requires-python"]
    version = re.fullmatch(r">=\s*(\d+\.\d+)", required)
    assert version is not None, required
    intro = README[: README.index("## A five-minute tour")]
    assert f"Python {version[1]} or newer" in intro


@pytest.mark.parametrize(
    "by_name", ["pipx install cronctl", "uv tool install cronctl", "pip install cronctl"]
)
def test_c12_the_readme_installs_from_the_checkout_not_by_package_name(by_name):
    assert by_name not in README
    assert "pipx install ." in README and "uv tool install ." in README


def test_c12_the_first_command_installs_links_cronctl_onto_path_and_starts_serve(tmp_path):
    """The first command's link step, run as written in a fresh HOME whose ~/.cronctl is this
    environment: afterwards `cronctl` runs by name from ~/.local/bin."""
    line = first_command()
    steps = line.split(" && ")
    assert steps[0] == "python3 -m venv ~/.cronctl" and "pip install ." in steps[1]
    assert steps[-1] == "~/.cronctl/bin/cronctl serve"
    links = [step for step in steps if step.startswith(("mkdir", "ln "))]
    assert links, line
    home = tmp_path / "home"
    (home / ".cronctl").mkdir(parents=True)
    (home / ".cronctl" / "bin").symlink_to(Path(sys.executable).parent)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run(["/bin/sh", "-c", " && ".join(links)], env=env, check=True, timeout=30)
    env["PATH"] = f"{home}/.local/bin:/usr/bin:/bin"
    env["CRONCTL_HOME"] = str(tmp_path / "cronctl-home")
    found = subprocess.run(
        ["/bin/sh", "-c", "cronctl --version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert found.returncode == 0 and "cronctl" in found.stdout, found.stderr
    assert os.path.islink(home / ".local" / "bin" / "cronctl")
