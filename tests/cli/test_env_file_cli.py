"""`env_file` through the real `cronctl` (issue 16, item 1): `add --env-file`, `show` and
`--json` give the paths and never a value, `check` warns about a file others can read, and
`run-now` records a run that could not read its file as `error` with file and line."""

from __future__ import annotations

import json

from tests.reliability.cfg_helpers import cfg_run

SECRET = "hunter2-env-file"


def test_j1_add_show_json_and_check(tasks_path, cronctl_exe, tmp_path):
    secrets = tmp_path / "backup.env"
    secrets.write_text(f"TOKEN={SECRET}\n")
    secrets.chmod(0o644)
    added = cfg_run(
        cronctl_exe, "add", "backup", "@daily", 'test -n "$TOKEN"', "--env-file", str(secrets)
    )
    assert added.returncode == 0, added.stderr
    assert f"env_file {secrets} is readable by everyone: chmod 600 {secrets}" in added.stderr
    assert f'env_file = "{secrets}"' in tasks_path.read_text()
    shown = cfg_run(cronctl_exe, "show", "backup")
    assert ["env_file", str(secrets)] in [line.split() for line in shown.stdout.splitlines()]
    as_json = json.loads(cfg_run(cronctl_exe, "show", "backup", "--json").stdout)
    assert as_json["env_file"] == [str(secrets)]
    checked = cfg_run(cronctl_exe, "check")
    assert checked.returncode == 0 and "readable by everyone" in checked.stderr
    secrets.chmod(0o600)
    assert "env_file" not in cfg_run(cronctl_exe, "check").stderr
    ran = cfg_run(cronctl_exe, "run-now", "backup")
    assert ran.returncode == 0, ran.stderr
    for output in (shown.stdout, json.dumps(as_json), ran.stdout, ran.stderr):
        assert SECRET not in output


def test_j1_run_now_with_a_malformed_line_ends_error(tasks_path, cronctl_exe, tmp_path):
    secrets = tmp_path / "backup.env"
    secrets.write_text(f"OK=1\nTOKEN {SECRET}\n")
    secrets.chmod(0o600)
    tasks_path.parent.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(
        f'[tasks.backup]\nschedule = "@daily"\ncommand = "true"\nenv_file = ["{secrets}"]\n'
    )
    ran = cfg_run(cronctl_exe, "run-now", "backup")
    assert ran.returncode == 1, ran.stderr
    assert f"env_file {secrets}, line 2: not NAME=value" in ran.stderr
    history = json.loads(cfg_run(cronctl_exe, "history", "--json").stdout)
    [run] = history
    assert (
        run["status"] == "error" and run["reason"] == f"env_file {secrets}, line 2: not NAME=value"
    )
    assert SECRET not in ran.stdout + ran.stderr + json.dumps(history)
