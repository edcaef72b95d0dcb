"""`nice` and `limits` in exports (issue 16, item 2): systemd's own settings (checked by the
real systemd-analyze), Kubernetes' memory limit (checked by the official schema), and one line
for what a target cannot hold."""

from __future__ import annotations

import pytest

from cronctl.export import crontab as crontab_export
from cronctl.export import k8s as k8s_export
from cronctl.export import systemd as sd

from .conftest import assert_systemd_accepts, make_task

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed"
)


def task(**keys):
    return make_task("job", "@daily", "x", **keys)


EVERY_LIMIT = {"memory": "512M", "cpu": "10m", "open_files": 1024, "processes": 64}


def test_j2_systemd_says_each_limit_in_its_own_words(tmp_path, systemd_analyze):
    job = task(limits=EVERY_LIMIT, nice=10)
    files = sd.export([job]).files
    service = next(f.text for f in files if f.name.endswith(".service")).splitlines()
    for line in (
        "Nice=10",
        "MemoryMax=512M",
        "LimitCPU=600:605",
        "LimitNOFILE=1024",
        "TasksMax=64",
    ):
        assert line in service
    assert_systemd_accepts(systemd_analyze, tmp_path, files)


def test_j2_kubernetes_keeps_memory_and_names_what_it_loses():
    job = task(limits=EVERY_LIMIT, nice=10)
    [container] = k8s_export.cronjob(job, image="busybox")["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]["containers"]
    assert container["resources"] == {"limits": {"memory": "512Mi"}}
    kubernetes_validate.validate(
        k8s_export.cronjob(job, image="busybox"), kubernetes_validate.latest_version(), strict=True
    )
    lost = k8s_export.lost_settings(job)
    assert any(n.startswith("limits.cpu 10m: CPU time has no equivalent") for n in lost)
    assert any(n.startswith("limits.open_files 1024") for n in lost)
    assert any(n.startswith("limits.processes 64") for n in lost)
    assert any(n.startswith("nice 10") for n in lost)


def test_j2_crontab_names_what_it_loses():
    lost = crontab_export.lost_settings(task(limits={"memory": "1G"}, nice=3))
    assert "limits: cron sets none (ulimit in the command)" in lost
    assert any(n.startswith("nice 3:") for n in lost)


def test_j3_a_lock_is_noted_by_every_target():
    job = task(lock=["db", "net"])
    service = next(f.text for f in sd.export([job]).files if f.name.endswith(".service"))
    assert "lock db, net: not exported; wrap the command in flock(1)" in service
    assert "lock db, net: CronJobs share no locks" in k8s_export.lost_settings(job)
    assert any(
        n.startswith("lock db, net: cron shares no locks")
        for n in crontab_export.lost_settings(job)
    )
