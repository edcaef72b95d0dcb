import os
import stat

import platformdirs
import pytest

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


# --- A URL for the database (README.md#more-than-one-machine) ---------------------------------

URL = "postgresql://cron@db.example:5432/history"


def test_a_url_is_kept_as_given_and_state_goes_to_home(tmp_path):
    found = resolve(environ={"CRONCTL_HOME": str(tmp_path), "CRONCTL_DB": URL})
    assert found.db == URL
    assert not found.db_is_file
    assert found.state_dir == tmp_path  # serve.lock, spools: never a folder named `postgresql:`
    assert found.serve_lock == tmp_path / "serve.lock"


def test_a_url_without_home_keeps_state_in_the_platform_folder():
    found = resolve(db=URL, environ={})
    assert found.state_dir == platformdirs.user_state_path("cronctl")


def test_any_scheme_is_a_url_not_a_relative_path(tmp_path, monkeypatch):
    # Refusing the schemes cronctl does not know is the store's (tests/store/test_opening.py);
    # here: none becomes a path under the current folder.
    monkeypatch.chdir(tmp_path)
    for value in ("mysql://u@h/d", "sqlite:///x.db", "postgres://h/d", "HTTP://h"):
        assert resolve(db=value, environ={}).db == value
    assert resolve(db="file.db", environ={}).db == str(tmp_path / "file.db")
    assert resolve(db="c:/x.db", environ={}).db == str(tmp_path / "c:" / "x.db")


def _task_file(tmp_path, text):
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    return {"CRONCTL_HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'[defaults]\ndb = "{URL}"\n', URL),
        (f'defaults.db = "{URL}"\n', URL),
        (f'defaults = {{ timezone = "UTC", db = "{URL}" }}\n', URL),
        (f'[tasks.a]\nschedule = "@daily"\ncommand = "x"\n[defaults]\n"db" = "{URL}"\n', URL),
        ('[defaults]\ndb = "runs/h.db"\n', "{folder}/runs/h.db"),  # beside the task file
        ('[defaults]\ntimezone = "UTC"\n', "{folder}/history.db"),
        ('[tasks.a]\ncommand = "echo defaults db = 1"\n', "{folder}/history.db"),
        ('[tasks.db]\nschedule = "@daily"\ncommand = "x"\n', "{folder}/history.db"),
        ("[defaults]\ndb = 'unclosed\n", "{folder}/history.db"),  # invalid: `check` says why
        ("[defaults]\ndb = 5\n", "{folder}/history.db"),
    ],
)
def test_the_task_file_can_name_the_database(tmp_path, text, expected):
    found = resolve(environ=_task_file(tmp_path, text))
    assert found.db == expected.format(folder=tmp_path)


def test_option_and_variable_beat_the_task_files_database(tmp_path):
    env = _task_file(tmp_path, f'[defaults]\ndb = "{URL}"\n')
    assert resolve(db=tmp_path / "o.db", environ=env).db == str(tmp_path / "o.db")
    assert resolve(environ={**env, "CRONCTL_DB": str(tmp_path / "v.db")}).db == str(
        tmp_path / "v.db"
    )


def test_a_large_file_whose_commands_say_db_names_no_database(tmp_path):
    # 20,000 tasks whose commands say "db" everywhere: no [defaults] db, so the default.
    body = "".join(
        f'[tasks.t{i}]\nschedule = "@daily"\ncommand = "mongodb db = {i}"\n' for i in range(20000)
    )
    found = resolve(environ=_task_file(tmp_path, '[defaults]\ntimezone = "UTC"\n' + body))
    assert found.db == str(tmp_path / "history.db")


def test_a_task_file_that_is_no_regular_file_names_no_database(tmp_path):
    # Read before any command: a FIFO must not block, /dev/zero not fill memory (the loader
    # refuses both with its own error later).
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero", tmp_path):
        found = resolve(path, environ={"CRONCTL_HOME": str(tmp_path)})
        assert found.db == str(tmp_path / "history.db")
