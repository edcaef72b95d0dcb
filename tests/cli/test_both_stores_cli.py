"""The commands on both stores (README.md#more-than-one-machine): the same session of real
`cronctl` commands against a SQLite file and against a real PostgreSQL database answers the
same, in every `--json` shape and in the plain text piped output, apart from what differs
between any two runs (times, durations, pids)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.pgserver import PostgresServer

TASKS = """\
[tasks.ok]
schedule = "@daily"
command = "echo out; echo err >&2"

[tasks.bad]
schedule = "*/5 * * * *"
command = "echo broken >&2; exit 3"

[tasks.quiet]
schedule = "@every 1s"
command = "true"
"""

# What differs between two runs of the same session on any store.
VOLATILE_KEYS = re.compile(r"(_at|_ms|_seconds|^pid|^uptime|^age|^duration|^next_run|^last_run)")
ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
NUMBERS_IN_TEXT = re.compile(r"\b\d+(\.\d+)?(ms|s|m|h)?\b")
NEXT_RUNS = re.compile(r"^next runs:\n.*?\n\n", re.M | re.S)


def _normal(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v, key) for v in value]
    if VOLATILE_KEYS.search(key) and value is not None:
        return type(value).__name__
    if isinstance(value, str):
        return ISO.sub("T", value)
    return value


def _session(cronctl_exe: list[str], home: Path, db: str) -> dict[str, Any]:
    env = {**os.environ, "CRONCTL_HOME": str(home), "CRONCTL_DB": db, "TZ": "UTC"}
    home.mkdir()
    (home / "tasks.toml").write_text(TASKS)

    def cronctl(*args: str, code: int = 0) -> str:
        done = subprocess.run(
            [*cronctl_exe, *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == code, (args, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stdout

    answers: dict[str, Any] = {}
    cronctl("run-now", "ok")
    cronctl("run-now", "bad", code=3)
    cronctl("ack", "bad", "--note", "known")
    cronctl("run-now", "bad", code=3)
    for command, code in (
        (["history"], 0),
        (["history", "--failed"], 0),
        (["logs", "1"], 0),
        (["logs", "2"], 0),
        (["show", "bad"], 0),
        (["list"], 0),
        (["status"], 1),  # unhealthy: serve never ran, and `bad` failed
        (["prune", "--keep-runs", "1", "--dry-run"], 0),
    ):
        answers[" ".join(command)] = _normal(json.loads(cronctl(*command, "--json", code=code)))
    answers["metrics"] = NUMBERS_IN_TEXT.sub("N", cronctl("metrics"))
    answers["history piped"] = ISO.sub("T", NUMBERS_IN_TEXT.sub("N", cronctl("history")))
    answers["prune"] = cronctl("prune", "--keep-runs", "1")
    answers["history after prune"] = _normal(json.loads(cronctl("history", "--json")))
    # `top`'s next runs come from the task file and the clock, not the store: which slots of
    # the `*/5` task make the list depends on the minute each session ran in.
    top = NEXT_RUNS.sub("next runs: (the clock's)\n\n", cronctl("top"))
    answers["top piped"] = NUMBERS_IN_TEXT.sub("N", ISO.sub("T", top))
    return answers


def test_a_session_answers_the_same_on_sqlite_and_postgresql(
    cronctl_exe, tmp_path, pg_url, pg_server: PostgresServer
):
    on_sqlite = _session(cronctl_exe, tmp_path / "sqlite", str(tmp_path / "history.db"))
    on_postgresql = _session(cronctl_exe, tmp_path / "postgresql", pg_url)
    for command, answer in on_sqlite.items():
        assert on_postgresql[command] == answer, command
    # And it was PostgreSQL that held the runs: three, less the one pruned.
    count = pg_server.psql("SELECT count(*) FROM runs", pg_url.rpartition("/")[2])
    assert count.strip() == "2"


def test_serve_on_postgresql_runs_each_slot_once(cronctl_exe, tmp_path, pg_url, pg_server):
    home = tmp_path / "home"
    home.mkdir()
    (home / "tasks.toml").write_text(
        "".join(f'[tasks.t{i}]\nschedule = "@every 1s"\ncommand = "true"\n' for i in range(5))
    )
    env = {**os.environ, "CRONCTL_HOME": str(home), "CRONCTL_DB": pg_url}
    serve = subprocess.Popen(
        [*cronctl_exe, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        time.sleep(4.5)
    finally:
        serve.terminate()
        log = serve.communicate(timeout=60)[0].decode()
    assert serve.returncode == 0, log
    database = pg_url.rpartition("/")[2]
    rows = pg_server.psql(
        "SELECT task, count(*), count(DISTINCT scheduled_at), min(status), max(status)"
        " FROM runs GROUP BY task ORDER BY task",
        database,
    ).split()
    assert len(rows) == 5, log
    for row in rows:
        task, runs, slots, low, high = row.split("|")
        assert int(runs) >= 2 and runs == slots, row  # every slot once
    # Every run succeeded, but a slot that fired as SIGTERM arrived: recorded `interrupted`
    # ("serve was stopped"), the newest of its task (README.md#what-serve-guarantees).
    ends = pg_server.psql(
        "SELECT task, status, reason, scheduled_at = max(scheduled_at) OVER (PARTITION BY task)"
        " FROM runs ORDER BY task, scheduled_at",
        database,
    ).split("\n")
    for end in filter(None, ends):
        task, status, reason, newest = end.split("|")
        assert status == "succeeded" or (
            (status, reason, newest) == ("interrupted", "serve was stopped", "t")
        ), ends
    assert "history in postgresql://" in log
    state = pg_server.psql("SELECT host, stopped_at IS NOT NULL FROM serves", database)
    assert state.strip().endswith("|t")
