"""Task files that differ between hosts, as data (cronctl/divergence.py) and as `check` words
them (cronctl/cli/fleet_render.py): which tasks, the hosts grouped by digest, which keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronctl.cli.fleet_render import finding_message
from cronctl.divergence import (
    Divergence,
    Variant,
    divergence_json,
    divergences,
    fleet_divergences,
    problem_lines,
    variants_text,
)
from cronctl.records import TaskDefinition

T0 = datetime(2026, 3, 1, tzinfo=UTC)
KEYS = {
    "base": {"command": "c1", "schedule": "s1"},
    "command": {"command": "c2", "schedule": "s1"},
    "timeout": {"command": "c1", "schedule": "s1", "timeout": "t1"},
    "both": {"command": "c2", "schedule": "s1", "timeout": "t1"},
}


def row(host: str, task: str, keys: str = "base") -> TaskDefinition:
    return TaskDefinition(host, task, f"d-{keys}", KEYS[keys], T0)


CASES = [
    ("all agree", [row("a", "t"), row("b", "t")], ("a", "b"), []),
    (
        "a command differs",
        [row("a", "t"), row("b", "t", "command")],
        ("a", "b"),
        [
            Divergence(
                "t", (Variant("d-base", ("a",)), Variant("d-command", ("b",))), ("command",), ()
            )
        ],
    ),
    (
        "a key set on one host only (the other at its default)",
        [row("a", "t", "timeout"), row("b", "t")],
        ("a", "b"),
        [
            Divergence(
                "t", (Variant("d-timeout", ("a",)), Variant("d-base", ("b",))), ("timeout",), ()
            )
        ],
    ),
    (
        "three hosts, two agree, keys of every variant",
        [row("a", "t"), row("b", "t", "both"), row("c", "t")],
        ("a", "b", "c"),
        [
            Divergence(
                "t",
                (Variant("d-base", ("a", "c")), Variant("d-both", ("b",))),
                ("command", "timeout"),
                (),
            )
        ],
    ),
    (
        "a task on one host only",
        [row("a", "t"), row("a", "only-a"), row("b", "t")],
        ("a", "b"),
        [Divergence("only-a", (Variant("d-base", ("a",)),), (), ("b",))],
    ),
    (
        "missing on one host and different on the others",
        [row("a", "t"), row("b", "t", "command")],
        ("a", "b", "c"),
        [
            Divergence(
                "t", (Variant("d-base", ("a",)), Variant("d-command", ("b",))), ("command",), ("c",)
            )
        ],
    ),
    (
        "rows of a host not live are left out",
        [row("a", "t"), row("dead", "t", "command"), row("dead", "old")],
        ("a",),
        [],
    ),
    (
        "digests differ, no key does: a default of another version",
        [row("a", "t"), TaskDefinition("b", "t", "d-other", KEYS["base"], T0)],
        ("a", "b"),
        [Divergence("t", (Variant("d-base", ("a",)), Variant("d-other", ("b",))), (), ())],
    ),
]


@pytest.mark.parametrize(("why", "rows", "hosts", "expected"), CASES, ids=[c[0] for c in CASES])
def test_divergences(why, rows, hosts, expected):
    assert divergences(rows, hosts) == expected, why


def test_divergences_come_by_task_name():
    rows = [row("a", name) for name in ("zeta", "alpha", "mid")]
    assert [d.task for d in divergences(rows, ("a", "b"))] == ["alpha", "mid", "zeta"]


def test_problem_lines_name_the_tasks_and_keys_then_count_the_rest():
    found = divergences(
        [row("a", f"t{i}") for i in range(7)]
        + [row("b", f"t{i}", "command") for i in range(7)]
        + [row("a", "only-a")],
        ("a", "b"),
    )
    assert problem_lines(found) == [
        "7 tasks defined differently on the hosts: t0 (command), t1 (command), t2 (command),"
        " t3 (command), t4 (command) and 2 more",
        "1 task not on every host: only-a (not on b)",
    ]
    assert problem_lines([]) == []


def test_the_json_and_the_table_cell_hold_digests_and_hosts():
    [found] = divergences([row("a", "t"), row("c", "t"), row("b", "t", "both")], ("a", "b", "c"))
    assert divergence_json(found) == {
        "task": "t",
        "keys": ["command", "timeout"],
        "definitions": [
            {"digest": "d-base", "hosts": ["a", "c"]},
            {"digest": "d-both", "hosts": ["b"]},
        ],
        "missing_on": [],
    }
    assert variants_text(found) == "a, c: d-base; b: d-both"


class NoDefinitions:
    def __init__(self):
        self.asked = []

    def task_definitions(self, hosts, *, divergent=False):
        self.asked.append((tuple(hosts), divergent))
        return [row("a", "t"), row("b", "t", "timeout")]


def test_status_reads_nothing_with_fewer_than_two_live_hosts():
    store = NoDefinitions()
    assert fleet_divergences(store, ["a"]) == [] and fleet_divergences(store, []) == []
    assert store.asked == []
    assert [d.keys for d in fleet_divergences(store, ["b", "a", "a"])] == [("timeout",)]
    assert store.asked == [(("a", "b"), True)]


MESSAGES = [
    (
        "defined differently elsewhere",
        [row("me", "t"), row("b", "t", "command"), row("c", "t", "command")],
        ("me", "b", "c"),
        "defined differently by the serve of b, c (differs in: command)",
    ),
    (
        "not run elsewhere",
        [row("me", "t")],
        ("me", "b"),
        "not run by the serve of b",
    ),
    (
        "not in this file",
        [row("b", "t"), row("c", "t")],
        ("me", "b", "c"),
        "not in this task file, but the serve of b, c runs it",
    ),
    (
        "both",
        [row("me", "t"), row("b", "t", "timeout")],
        ("me", "b", "c"),
        "defined differently by the serve of b (differs in: timeout); not run by the serve of c",
    ),
]


@pytest.mark.parametrize(
    ("why", "rows", "hosts", "message"), MESSAGES, ids=[m[0] for m in MESSAGES]
)
def test_check_words_a_divergence_from_this_host_s_side(why, rows, hosts, message):
    [found] = divergences(rows, hosts)
    assert finding_message(found, "me") == message, why
