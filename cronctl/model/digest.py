"""A task's definition as digests: what each serve of a shared history records of the tasks it
runs, so that `status` and `check` can say where hosts' task files disagree
(README.md#more-than-one-machine, "Task files that differ").

Each key of the table of task keys (cronctl/model/keys.py, its task JSON) has a key digest:
blake2b, 8 bytes, in hex, of the key's value as canonical JSON (keys sorted, no spaces). The
value is the loaded Task's, so a key left out and a key written with its default value give
one digest, as do `"1h"` and `3600`. A task's digest is over all its key digests in key name
order (the defaults' as one prefix, then its own). Values are never kept: a command line or
an environment value may hold a secret.

Kept small: a key at its default is left out of `TaskDigest.keys` (its digest is the same
for every task), so a task usually carries two or three. Built for speed: only the keys a
task holds itself are encoded, strings with the json module's C encoder, the values many
tasks share digested once; the defaults' digests are computed once. 100,000 tasks take 0.3 s
of one core (3 us a task; serve computes them on its background writer, after READY=1).
BLAKE2 comes from CPython's own `_blake2`, not through `hashlib`, whose import loads OpenSSL's
libcrypto: measured for issue 18, serve's RSS with 1,000 tasks was 32.4 MB with it and 28.7
MB without (docs/performance.md, "Round 7").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from cronctl.model.keys import TASK_KEY_TABLE
from cronctl.model.task import Task, make_task

try:  # BLAKE2 built into CPython: `hashlib` would load OpenSSL, ~4.7 MB of serve's idle RSS
    from _blake2 import blake2b
except ImportError:  # an interpreter without it
    from hashlib import blake2b

DIGEST_BYTES = 8


class TaskDigest(NamedTuple):
    """A task's definition digest and the digests of its keys that differ from the default."""

    digest: str
    keys: Mapping[str, str]


def canonical_json(value: Any) -> str:
    """`value` as canonical JSON: keys sorted, no spaces, text as it is (not \\u-escaped)."""
    if type(value) is str:
        return str(encode_basestring(value))
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def value_digest(text: str) -> str:
    """blake2b of `text` (UTF-8), DIGEST_BYTES long, in hex."""
    return blake2b(text.encode(), digest_size=DIGEST_BYTES).hexdigest()


# Each key's value in the task JSON, by name.
_TO_JSON = {key.name: key.json for key in TASK_KEY_TABLE if key.json is not None}
KEY_NAMES = tuple(sorted(_TO_JSON))


# Each key's default, as JSON: a task with every key at its default (schedule and command
# have none: both are required).
_BLANK = make_task("default", {"schedule": "", "command": ""})
_DEFAULT_JSON = {name: to_json(_BLANK) for name, to_json in _TO_JSON.items()}
DEFAULT_DIGESTS: Mapping[str, str] = {
    name: value_digest(canonical_json(value)) for name, value in _DEFAULT_JSON.items()
}
# Every key's default digest, sorted by key name, as one prefix of each task's digest: a
# default that changes between versions of cronctl changes the digests of every task.
_DEFAULTS = blake2b(
    "".join(f"{name}={DEFAULT_DIGESTS[name]};" for name in KEY_NAMES).encode(),
    digest_size=DIGEST_BYTES,
)

# The digests of values seen recently, by (key, canonical JSON): many tasks share a zone,
# a shell, a command. Bounded; emptied when full.
_SEEN: dict[tuple[str, str], str] = {}
_SEEN_KEPT = 4096


def task_digest(task: Task) -> TaskDigest:
    """The digests of `task`'s definition (see the module docstring)."""
    own: dict[str, str] = {}
    seen = _SEEN
    # make_task keeps in the instance only the values the file (or [defaults]) gave; every
    # other key reads its default from the class, whose digest is DEFAULT_DIGESTS's.
    for name in task.__dict__:
        to_json = _TO_JSON.get(name)
        if to_json is None:
            continue
        value = to_json(task)
        default = _DEFAULT_JSON[name]
        if type(value) is type(default) and value == default:
            continue  # written with its default value: the default's digest
        text = encode_basestring(value) if type(value) is str else canonical_json(value)
        digest = seen.get((name, text))
        if digest is None:
            digest = value_digest(text)
            if len(seen) >= _SEEN_KEPT:
                seen.clear()
            seen[name, text] = digest
        if digest != DEFAULT_DIGESTS[name]:
            own[name] = digest
    # Over every key's digest, by key name: the defaults' then the task's own, sorted.
    combined = _DEFAULTS.copy()
    combined.update("".join([f"{name}={own[name]};" for name in sorted(own)]).encode())
    return TaskDigest(combined.hexdigest(), own)


def task_digests(tasks: Iterable[Task]) -> dict[str, TaskDigest]:
    """Each task's digests, by name: computed once per load of the task file."""
    return {task.name: task_digest(task) for task in tasks}
