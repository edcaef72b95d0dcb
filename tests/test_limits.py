"""The `nice` key and the `limits` table (issue 16, item 2): sizes, checks, [defaults.limits]
under a task's own (exports: tests/system/test_export_limits.py)."""

from __future__ import annotations

import pytest

from cronctl.errors import TaskFileError
from cronctl.model import Defaults, parse_defaults, parse_task
from cronctl.model.limits import Limits, format_size, parse_size

# written | bytes ("-": not a size)
SIZES = """
512M     | 536870912
512MiB   | 536870912
512mb    | 536870912
2G       | 2147483648
1T       | 1099511627776
64k      | 65536
1048576  | 1048576
100B     | 100
1.5G     | -
M        | -
-1M      | -
12Q      | -
５M      | -
"""


@pytest.mark.parametrize(
    ("written", "size"), [line.split("|") for line in SIZES.strip().splitlines()]
)
def test_j2_sizes(written, size):
    expected = None if size.strip() == "-" else int(size)
    assert parse_size(written.strip()) == expected
    if expected is not None:
        assert parse_size(format_size(expected)) == expected


def task(**keys):
    return parse_task("job", {"schedule": "@daily", "command": "x", **keys}, Defaults(), "UTC")


# key | value | error
BAD = [
    ("nice", 20, "must be between 0 and 19"),
    ("nice", -1, "must be between 0 and 19"),
    ("limits", {"memory": "12Q"}, "is not a size like"),
    ("limits", {"memory": "512K"}, "must be between 1M and"),
    ("limits", {"cpu": "0s"}, "must be at least 1s"),
    ("limits", {"open_files": 0}, "between 1 and"),
    ("limits", {"processes": "5"}, "must be a whole number"),
    ("limits", {"memroy": "1G"}, "unknown key in [tasks.job.limits]"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_j2_bad_values_are_one_clear_error(key, value, message):
    with pytest.raises(TaskFileError) as caught:
        task(**{key: value})
    assert message in caught.value.message


def test_j2_a_tasks_limits_extend_the_defaults():
    defaults = parse_defaults({"limits": {"memory": "1G", "cpu": "10m"}, "nice": 5})
    own = parse_task(
        "job", {"schedule": "@daily", "command": "x", "limits": {"cpu": "1m"}}, defaults, "UTC"
    )
    assert own.limits == Limits(memory=1024**3, cpu=60) and own.nice == 5
    inherited = parse_task("other", {"schedule": "@daily", "command": "x"}, defaults, "UTC")
    assert inherited.limits == Limits(memory=1024**3, cpu=600)
