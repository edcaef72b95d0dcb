"""Resource limits of a task's job (README "Resource limits"): `nice` and the
`[tasks.NAME.limits]` table, its sizes, and its checks.

Two kinds of limit, named as systemd names them so that an export means the same thing:

- `cpu` and `open_files` hold for each process of the job, as setrlimit(2) does and as
  systemd's `LimitCPU=` and `LimitNOFILE=` do;
- `memory` and `processes` hold for the job's whole process group together (the sum of its
  resident memory, the count of its processes), as `MemoryMax=` and `TasksMax=` hold for a
  unit's cgroup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from cronctl.durations import format_duration
from cronctl.model.checks import check_keys, duration, fail, whole_number
from cronctl.model.kinds import DURATION, WHOLE_NUMBER, shape, table_of

LIMIT_KEYS = ("memory", "cpu", "open_files", "processes")
# `add`'s option for each limit, in LIMIT_KEYS order.
LIMIT_OPTIONS = tuple(f"--limit-{key.replace('_', '-')}" for key in LIMIT_KEYS)
LIMIT_HELP = {
    "memory": "Most resident memory of the job's processes together, e.g. 512M.",
    "cpu": "Most CPU time of each process of the job, e.g. 10m.",
    "open_files": "Most open files of each process of the job.",
    "processes": "Most processes of the job at once.",
}
CPU_KILL_AFTER = 5
"""Seconds of CPU time between SIGXCPU (the `cpu` limit) and SIGKILL, for a process that
ignores SIGXCPU; an export sets the same soft:hard pair."""
NICE_RANGE = (0, 19)  # a job may be made nicer than serve, never less nice (that needs root)

_SIZE = re.compile(r"([0-9]{1,20}) ?(?:([KMGT])(?:I?B)?|B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SIZE_ALLOWED = 'a size like "512M", "2G" (K, M, G, T: powers of 1024) or a number of bytes'
MIN_MEMORY = 1024 * 1024  # less than a MiB cannot hold a shell
MAX_MEMORY = 1024**5
MAX_COUNT = 1_048_576  # the kernel's own ceiling for open files (fs.nr_open default)

SIZE = shape(f"{SIZE_ALLOWED}", "string", "integer")
LIMIT_SHAPES = {
    "memory": SIZE,
    "cpu": DURATION,
    "open_files": WHOLE_NUMBER,
    "processes": WHOLE_NUMBER,
}
LIMITS_TABLE = table_of("a table ([tasks.NAME.limits])", LIMIT_SHAPES)
DEFAULT_LIMITS_TABLE = table_of("a table ([defaults.limits])", LIMIT_SHAPES)


@dataclass(frozen=True)
class Limits:
    """What a job may use; None: no limit of that kind."""

    memory: int | None = None  # bytes of resident memory, the process group together
    cpu: int | None = None  # seconds of CPU time, each process
    open_files: int | None = None  # open file descriptors, each process
    processes: int | None = None  # processes of the group at once

    def over(self, other: Limits) -> Limits:
        """These limits with `other`'s set ones over them (a task's table over [defaults])."""
        return Limits(
            **{
                f.name: getattr(other, f.name)
                if getattr(other, f.name) is not None
                else getattr(self, f.name)
                for f in fields(self)
            }
        )

    def as_json(self) -> dict[str, int]:
        """The set limits in plain units: bytes, seconds, counts."""
        return {key: getattr(self, key) for key in LIMIT_KEYS if getattr(self, key) is not None}

    def items(self) -> list[tuple[str, str]]:
        """(key, value as written) of the set limits, in LIMIT_KEYS order."""
        shown = []
        for key in LIMIT_KEYS:
            value = getattr(self, key)
            if value is not None:
                shown.append((key, describe_limit(key, value)))
        return shown


def describe_limit(key: str, value: int) -> str:
    if key == "memory":
        return format_size(value)
    if key == "cpu":
        return format_duration(value)
    return str(value)


def parse_size(value: Any) -> int | None:
    """Return the bytes of `value` ("512M", "2G", "512MiB", 1048576), or None when it is not
    a size. Units are powers of 1024, as systemd's MemoryMax= reads them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value.isascii():
        return None
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[(match.group(2) or "").upper()]


def format_size(size: int) -> str:
    """The shortest exact form: 536870912 is "512M"; a size of no whole unit stays in bytes."""
    for unit in ("T", "G", "M", "K"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def parse_limits(raw: Mapping[str, Any], task: str | None) -> Limits:
    """Return the Limits of a `limits` table, or raise TaskFileError naming `limits.KEY`."""
    where = f"[tasks.{task}.limits]" if task else "[defaults.limits]"
    check_keys(raw, LIMIT_KEYS, task, where, "limits.")
    values: dict[str, int] = {}
    for key, value in raw.items():
        name = f"limits.{key}"
        if key == "memory":
            size = parse_size(value)
            if size is None:
                fail(task, name, f"{value!r} is not {SIZE_ALLOWED}")
            if not MIN_MEMORY <= size <= MAX_MEMORY:
                fail(task, name, f"must be between 1M and {format_size(MAX_MEMORY)}")
            values[key] = size
        elif key == "cpu":
            values[key] = duration(task, name, value, 1)
        else:
            values[key] = whole_number(task, name, value, 1, MAX_COUNT)
    return Limits(**values)


def nice_value(task: str | None, key: str, value: Any) -> int:
    return whole_number(task, key, value, *NICE_RANGE)
