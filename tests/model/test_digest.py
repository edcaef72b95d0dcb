"""The digests of a task's definition (cronctl/model/digest.py, README.md#task-files-that-differ):
equal definitions written differently give equal digests, each key changes its own key digest
and no other, and only digests and key names come out, never a value."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.model.digest import DEFAULT_DIGESTS, KEY_NAMES, TaskDigest, task_digest, task_digests
from cronctl.model.keys import TASK_KEY_TABLE
from cronctl.taskfile.reading import parse_text

BASE = 'schedule = "@hourly"\ncommand = "backup.sh --to s3://bucket"\n'
HEX16 = re.compile(r"[0-9a-f]{16}")


def digest_of(body: str, defaults: str = "", name: str = "x") -> TaskDigest:
    text = (f"[defaults]\n{defaults}\n" if defaults else "") + f"[tasks.{name}]\n{body}"
    text += '\n[tasks.other]\nschedule = "@daily"\ncommand = "true"\n'  # for `after`
    loaded = parse_text(text, Path("tasks.toml"), default_zone="UTC")
    return task_digest(loaded.tasks[name])


def changed_keys(first: TaskDigest, second: TaskDigest) -> set[str]:
    return {
        k for k in first.keys.keys() | second.keys.keys() if first.keys.get(k) != second.keys.get(k)
    }


# Two ways to write one definition (after BASE's schedule and command unless they hold their own).
SAME_DEFINITION = [
    ("a duration in seconds or in words", 'timeout = "1h"', "timeout = 3600"),
    ("a duration's two spellings", 'jitter = "90m"', 'jitter = "1h30m"'),
    ("retries at the default", "", "retries = 0"),
    ("retry_delay at the default", "", 'retry_delay = "30s"'),
    ("overlap at the default", "", 'overlap = "skip"'),
    ("catch_up at the default", "", 'catch_up = "skip"'),
    ("jitter at the default", "", "jitter = 0"),
    ("enabled at the default", "", "enabled = true"),
    ("description at the default", "", 'description = ""'),
    ("working_dir at the default", "", 'working_dir = "~"'),
    ("shell at the default", "", 'shell = "/bin/sh"'),
    ("timezone at the file's zone", "", 'timezone = "UTC"'),
    ("keep_runs at the default", "", "keep_runs = 1000"),
    ("env empty", "", "env = {}"),
    ("env_file empty", "", "env_file = []"),
    ("after empty", "", "after = []"),
    ("lock empty", "", "lock = []"),
    ("a lock alone or in a list", 'lock = "db"', 'lock = ["db"]'),
    ("an env file alone or in a list", 'env_file = "/etc/app.env"', 'env_file = ["/etc/app.env"]'),
    ("env in another order", 'env = { A = "1", B = "2" }', 'env = { B = "2", A = "1" }'),
    (
        "notify's default `on` left out or written",
        'notify = { command = "page.sh" }',
        'notify = { command = "page.sh", on = ["failure"] }',
    ),
    (
        "keys in another order",
        'schedule = "@daily"\ncommand = "a"\ntimeout = "5m"',
        'timeout = "5m"\ncommand = "a"\nschedule = "@daily"',
    ),
]


@pytest.mark.parametrize(
    ("why", "first", "second"), SAME_DEFINITION, ids=[c[0] for c in SAME_DEFINITION]
)
def test_equal_definitions_written_differently_give_equal_digests(why, first, second):
    def body(extra: str) -> str:
        return extra + "\n" if "schedule" in extra else BASE + extra + "\n"

    assert digest_of(body(first)) == digest_of(body(second)), why


def test_a_key_from_defaults_is_the_same_as_the_task_s_own():
    assert digest_of(BASE, defaults='timeout = "1h"') == digest_of(BASE + 'timeout = "1h"\n')


def test_a_task_s_name_is_not_part_of_its_definition():
    assert digest_of(BASE, name="a") == digest_of(BASE, name="b")


# A value other than the default, for every key of the table (a new key needs a row here).
OTHER_VALUE = {
    "schedule": 'schedule = "@daily"',
    "command": 'command = "backup.sh --to s3://other"',
    "description": 'description = "nightly"',
    "enabled": "enabled = false",
    "timezone": 'timezone = "Europe/Paris"',
    "timeout": 'timeout = "10m"',
    "retries": "retries = 2",
    "retry_delay": 'retry_delay = "1m"',
    "overlap": 'overlap = "queue"',
    "catch_up": 'catch_up = "once"',
    "jitter": 'jitter = "5m"',
    "working_dir": 'working_dir = "/srv"',
    "shell": 'shell = "/bin/bash"',
    "env": 'env = { TOKEN = "hunter2" }',
    "env_file": 'env_file = "/etc/app.env"',
    "when": 'when = "test -f /ready"',
    "after": 'after = ["other"]',
    "keep_runs": "keep_runs = 50",
    "lock": 'lock = "db"',
    "nice": "nice = 10",
    "limits": 'limits = { memory = "512M" }',
    "notify": 'notify = { command = "page.sh" }',
}


def test_every_key_of_the_table_has_a_digest_and_a_case_here():
    assert set(KEY_NAMES) == {key.name for key in TASK_KEY_TABLE if key.json is not None}
    assert set(OTHER_VALUE) == set(KEY_NAMES)


@pytest.mark.parametrize("key", sorted(OTHER_VALUE))
def test_each_key_changes_its_own_key_digest_and_no_other(key):
    lines = [line for line in BASE.splitlines() if not line.startswith(f"{key} =")]
    base = digest_of(BASE)
    changed = digest_of("\n".join([*lines, OTHER_VALUE[key]]) + "\n")
    assert changed_keys(base, changed) == {key}
    assert changed.digest != base.digest
    assert HEX16.fullmatch(changed.keys[key])


def test_only_digests_and_key_names_come_out_never_a_value():
    found = digest_of(BASE + "\n".join(OTHER_VALUE[k] for k in ("env", "when", "notify")) + "\n")
    assert set(found.keys) <= set(KEY_NAMES)
    assert all(HEX16.fullmatch(value) for value in found.keys.values())
    assert HEX16.fullmatch(found.digest)
    assert "hunter2" not in repr(found) and "backup.sh" not in repr(found)


def test_a_key_at_its_default_is_left_out_of_the_key_digests():
    found = digest_of(BASE + "retries = 0\n")
    assert set(found.keys) == {"schedule", "command"}
    assert set(DEFAULT_DIGESTS) == set(KEY_NAMES)


def test_task_digests_are_by_name():
    loaded = parse_text(
        f"[tasks.a]\n{BASE}[tasks.b]\n{BASE}timeout = 5\n", Path("t.toml"), default_zone="UTC"
    )
    found = task_digests(loaded.tasks.values())
    assert list(found) == ["a", "b"]
    assert changed_keys(found["a"], found["b"]) == {"timeout"}


# -- properties --------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1)


def task_text(table: dict[str, object], order: list[str]) -> str:
    return tomli_w.dumps({"tasks": {"x": {key: table[key] for key in order}}})


@settings(max_examples=60, deadline=None)
@given(
    command=texts,
    other=texts,
    timeout=st.integers(1, 10**6),
    retries=st.integers(0, 100),
    env=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), texts, max_size=3),
    seed=st.integers(0, 2**32),
)
def test_digests_follow_the_values_not_how_the_table_is_written(
    command, other, timeout, retries, env, seed
):
    table = {"schedule": "@hourly", "command": command, "timeout": timeout, "retries": retries}
    table["env"] = env
    order = list(table)
    shuffled = order[:]
    random.Random(seed).shuffle(shuffled)

    def parsed(text: str) -> TaskDigest:
        return task_digest(parse_text(text, Path("t.toml"), default_zone="UTC").tasks["x"])

    first, second = parsed(task_text(table, order)), parsed(task_text(table, shuffled))
    assert first == second
    changed = parsed(task_text({**table, "command": other}, order))
    assert changed_keys(first, changed) == (set() if other == command else {"command"})
    assert (changed.digest == first.digest) == (other == command)
    assert all(HEX16.fullmatch(value) for value in first.keys.values())


def test_a_digest_is_blake2b_of_the_canonical_json_as_hashlib_computes_it():
    # Histories written before keep their digests comparable: the same function, from
    # CPython's own BLAKE2 instead of through hashlib.
    import hashlib

    from cronctl.model.digest import value_digest

    for text in ("", '"@hourly"', '{"a":1}', "é ünïcode"):
        assert value_digest(text) == hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def test_the_digests_do_not_load_openssl():
    # hashlib's import loads OpenSSL's libcrypto: 4.7 MB of serve's RSS with 1,000 tasks.
    import subprocess
    import sys

    code = (
        "import sys; from cronctl.model.digest import task_digests;print('_hashlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
