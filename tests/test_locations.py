import os
import stat

import platformdirs

from cronctl.locations import ensure_private_dir, resolve


def test_home_puts_everything_in_one_folder(tmp_path):
    found = resolve(environ={"CRONCTL_HOME": str(tmp_path)})
    assert found.tasks_file == tmp_path / "tasks.toml"
    assert found.db == str(tmp_path / "history.db")
    assert found.serve_lock == tmp_path / "serve.lock"


def test_specific_variables_beat_home(tmp_path):
    env = {
        "CRONCTL_HOME": str(tmp_path),
        "CRONCTL_TASKS": str(tmp_path / "t.toml"),
        "CRONCTL_DB": str(tmp_path / "x" / "h.db"),
    }
    found = resolve(environ=env)
    assert found.tasks_file == tmp_path / "t.toml"
    assert found.db == str(tmp_path / "x" / "h.db")
    assert found.state_dir == tmp_path / "x"


def test_options_beat_variables(tmp_path):
    found = resolve(
        tmp_path / "a.toml",
        tmp_path / "b.db",
        environ={"CRONCTL_TASKS": "/nope", "CRONCTL_DB": "/nope"},
    )
    assert found.tasks_file == tmp_path / "a.toml"
    assert found.db == str(tmp_path / "b.db")


def test_platform_defaults():
    found = resolve(environ={})
    assert str(found.tasks_file) == os.path.join(
        platformdirs.user_config_dir("cronctl"), "tasks.toml"
    )
    assert found.db == os.path.join(platformdirs.user_state_dir("cronctl"), "history.db")


def test_memory_database():
    assert resolve(db=":memory:", environ={}).db == ":memory:"


def test_private_dirs_are_0700(tmp_path):
    target = tmp_path / "a" / "b"
    ensure_private_dir(target)
    for folder in (tmp_path / "a", target):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
