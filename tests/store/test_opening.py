"""Which store a database setting names (cronctl/store/opening.py): a URL cronctl does not
support is refused before anything exists, PostgreSQL without its driver names the extra, and
no message shows a password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cronctl.errors import DatabaseSettingError, ExitCode
from cronctl.locations import masked
from cronctl.store import HistoryStore
from cronctl.store.opening import is_postgres, open_store


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ("postgresql://cron:s3cret@db/h", "postgresql://cron:***@db/h"),
        ("postgresql://cron:p@ss:w/rd@db/h", "postgresql://cron:***@db/h"),
        ("postgresql://:s3cret@db/h", "postgresql://:***@db/h"),
        ("postgresql://cron@db:5432/h", "postgresql://cron@db:5432/h"),
        (
            "postgresql://db/h?password=s3cret&sslmode=require",
            "postgresql://db/h?password=***&sslmode=require",
        ),
        (
            "postgresql://db/h?sslmode=require&PASSWORD=s3cret",
            "postgresql://db/h?sslmode=require&PASSWORD=***",
        ),
        ("/var/lib/user:pass@x/history.db", "/var/lib/user:pass@x/history.db"),  # a path
    ],
)
def test_messages_never_show_a_password(setting, shown):
    assert masked(setting) == shown


@pytest.mark.parametrize(
    ("setting", "postgres"),
    [
        ("postgresql://h/d", True),
        ("postgres://h/d", True),
        ("PostgreSQL://h/d", True),
        ("/tmp/history.db", False),
        (":memory:", False),
        ("relative/h.db", False),
    ],
)
def test_which_store(setting, postgres):
    assert is_postgres(setting) is postgres


@pytest.mark.parametrize("setting", ["mysql://u@h/d", "sqlite:///tmp/h.db", "http://h/d"])
def test_other_schemes_are_refused(setting):
    with pytest.raises(DatabaseSettingError) as caught:
        is_postgres(setting)
    assert caught.value.exit_code == ExitCode.USAGE
    assert setting.partition("://")[0] + ":// is not supported" in caught.value.message


def test_a_path_opens_the_sqlite_store(tmp_path):
    with open_store(str(tmp_path / "h.db")) as store:  # type: ignore[attr-defined]
        assert isinstance(store, HistoryStore)


def _cronctl(cwd, env, *args):
    return subprocess.run(
        [sys.executable, "-m", "cronctl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["history"], ["status"], ["run-now", "job"], ["top"]])
def test_an_unsupported_url_is_refused_and_creates_nothing(tmp_path, cronctl_home, command):
    # It used to become a folder `mysql:` holding a SQLite file, in the current folder.
    (cronctl_home).mkdir()
    (cronctl_home / "tasks.toml").write_text('[tasks.job]\nschedule = "@daily"\ncommand = "true"\n')
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "CRONCTL_DB": "mysql://cron:s3cret@db.example/history"}
    result = _cronctl(work, env, *command)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert result.stderr.startswith(
        "error: history database mysql://cron:***@db.example/history: cronctl keeps its history"
    ), result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in cronctl_home.iterdir()) == ["tasks.toml"]


def test_serve_refuses_an_unsupported_url_as_a_configuration_error(tmp_path, cronctl_home):
    cronctl_home.mkdir()
    env = {**os.environ, "CRONCTL_DB": "mysql://db.example/history"}
    result = _cronctl(tmp_path, env, "serve")
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert "mysql:// is not supported" in result.stderr
    assert not (tmp_path / "mysql:").exists()


# A Python in which `import psycopg` fails, as in an install without the postgres extra.
WITHOUT_DRIVER = (
    "import sys; sys.modules['psycopg'] = None; import importlib.util as u;"
    " u.find_spec = (lambda f: lambda name, *a: None if name == 'psycopg' else f(name, *a))"
    "(u.find_spec); from cronctl.cli import main; sys.argv[0] = 'cronctl'; main()"
)


@pytest.mark.parametrize(("command", "code"), [("history", 2), ("serve", 78)])
def test_postgresql_without_the_driver_names_the_extra(tmp_path, cronctl_home, command, code):
    cronctl_home.mkdir()
    env = {**os.environ, "CRONCTL_DB": "postgresql://cron@127.0.0.1:1/history"}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_DRIVER, command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: history database postgresql://cron@127.0.0.1:1/history:"
        " the PostgreSQL history needs psycopg, which is not installed"
    ), result.stderr
    assert "pip install 'cronctl[postgres]'" in lines[1]


@pytest.mark.parametrize(("where", "code"), [("variable", 2), ("task file", 2), ("serve", 78)])
def test_a_database_url_with_a_password_is_refused(tmp_path, cronctl_home, where, code):
    # Found by use: the task file's db with a password was reported by `check`, yet every
    # other command connected with it.
    cronctl_home.mkdir()
    url = "postgresql://cron:s3cret@127.0.0.1:1/history"
    env = dict(os.environ)
    tasks = '[tasks.a]\nschedule = "@daily"\ncommand = "true"\n'
    if where == "task file":
        tasks = f'[defaults]\ndb = "{url}"\n' + tasks
    else:
        env["CRONCTL_DB"] = url
    (cronctl_home / "tasks.toml").write_text(tasks)
    result = _cronctl(tmp_path, env, "serve" if where == "serve" else "history")
    assert result.returncode == code, result.stderr
    assert "history database postgresql://cron:***@127.0.0.1:1/history: the URL holds a" in (
        result.stderr
    )
    assert "s3cret" not in result.stderr + result.stdout
