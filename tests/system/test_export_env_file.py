"""`env_file` in exports (issue 16, item 1): systemd reads the same file (`EnvironmentFile=`),
checked by the real systemd-analyze; crontab and Kubernetes say in one line what is lost."""

from __future__ import annotations

from cronctl.export import crontab as crontab_export
from cronctl.export import k8s as k8s_export
from cronctl.export import systemd as sd

from .conftest import assert_systemd_accepts, make_task


def _service(task) -> str:
    return {f.name: f.text for f in sd.export([task]).files}[f"cronctl-{task.name}.service"]


def test_j1_systemd_reads_the_same_env_files(tmp_path, systemd_analyze):
    task = make_task(
        "backup", "0 2 * * *", "restic backup", env_file=["/etc/backup.env", "~/.config/b%.env"]
    )
    service = _service(task)
    assert service.splitlines().count("EnvironmentFile=/etc/backup.env") == 1
    assert "EnvironmentFile=%h/.config/b%%.env" in service.splitlines()
    assert_systemd_accepts(systemd_analyze, tmp_path, sd.export([task]).files)


def test_j1_systemd_notes_that_its_files_override_environment():
    both = make_task("b", "0 2 * * *", "x", env_file="/etc/b.env", env={"A": "1"})
    alone = make_task("a", "0 2 * * *", "x", env_file="/etc/b.env")
    assert "EnvironmentFile= overrides Environment=" in _service(both)
    assert "overrides" not in _service(alone)


def test_j1_crontab_and_kubernetes_say_what_is_lost():
    task = make_task("backup", "0 2 * * *", "restic backup", env_file="/etc/backup.env")
    assert any(
        n.startswith("env_file: cron reads no env files")
        for n in crontab_export.lost_settings(task)
    )
    assert (
        "env_file: not exported; put its variables in a Secret (envFrom)"
        in k8s_export.lost_settings(task)
    )
