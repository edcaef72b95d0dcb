"""`export --output DIR`: files written whole, through no symbolic link, private (0600)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

TASKS = """\
[tasks.a]
schedule = "0 2 * * *"
command = "backup"
env = { TOKEN = "s3cret" }
"""

# (format and its options, the file it writes that the test plants a link at)
FORMATS = [
    (["--format", "crontab"], "crontab"),
    (["--format", "systemd"], "cronctl-a.service"),
    (["--format", "k8s", "--image", "jobs:1"], "cronjobs.yaml"),
]


def export_to(cronctl_exe: list[str], home: Path, folder: Path, options: list[str]):
    home.mkdir(parents=True, exist_ok=True)
    (home / "tasks.toml").write_text(TASKS)
    return subprocess.run(
        [*cronctl_exe, "export", *options, "--output", str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "CRONCTL_HOME": str(home), "NO_COLOR": "1"},
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(("options", "name"), FORMATS)
@pytest.mark.parametrize("link", ["to a file", "dangling"])
def test_h7_output_never_writes_through_a_planted_link(
    options, name, link, cronctl_exe, cronctl_home, tmp_path
):
    """Decided: each file is written to a new temporary file in DIR and renamed over its
    name, so a symbolic link planted at that name is replaced by the file and what it points
    at is left as it was (a dangling link creates nothing). Before: the link was followed and
    its target overwritten with the export."""
    folder = tmp_path / "out"
    folder.mkdir()
    outside = tmp_path / "precious.txt"
    if link == "to a file":
        outside.write_text("keep me\n")
    (folder / name).symlink_to(outside)
    result = export_to(cronctl_exe, cronctl_home, folder, options)
    assert result.returncode == 0, result.stderr
    if link == "to a file":
        assert outside.read_text() == "keep me\n"
    else:
        assert not outside.exists()
    written = folder / name
    assert not written.is_symlink() and written.is_file()
    assert "s3cret" in written.read_text()
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(("options", "name"), FORMATS)
def test_h7_exported_files_are_private(options, name, cronctl_exe, cronctl_home, tmp_path):
    """Decided: every exported file is 0600, as private as the task file it comes from (units
    and crontab lines carry `env` values), also when it replaces a 0644 file. Before: 0644
    (the umask's), so any local user could read a task's secrets."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / name).write_text("old\n")
    (folder / name).chmod(0o644)
    result = export_to(cronctl_exe, cronctl_home, folder, options)
    assert result.returncode == 0, result.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes and set(modes.values()) == {0o600}, modes
    assert name in modes
