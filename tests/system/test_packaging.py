"""The wheel installs the man page and the completion scripts where man and the shells look."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = {
    "share/man/man1/cronctl.1": "man/cronctl.1",
    "share/bash-completion/completions/cronctl": "completions/cronctl.bash",
    "share/zsh/site-functions/_cronctl": "completions/_cronctl",
    "share/fish/vendor_completions.d/cronctl.fish": "completions/cronctl.fish",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling (the build backend) is not installed")
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: build with the hatchling installed here, offline.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("pip is not available")
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("cronctl-*.whl")
    return built


def test_wheel_has_man_page_and_completions_at_the_share_paths(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        data = [n for n in names if ".data/data/" in n]
        for target, source in SHARED.items():
            (entry,) = [n for n in data if n.endswith(".data/data/" + target)]
            assert archive.read(entry) == (ROOT / source).read_bytes()
        assert not any(n.startswith("tests/") or n.startswith("completions/") for n in names)
        assert any(n == "cronctl/cli/system.py" for n in names)
        assert any(n == "cronctl/export/k8s.py" for n in names)
