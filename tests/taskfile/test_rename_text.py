"""The text of a rename (cronctl/taskfile/edits.py `renamed_text`): every line that names the
task changes, every other character stays."""

from __future__ import annotations

import tomllib

import pytest

from cronctl.taskfile.edits import renamed_text

BEFORE = '''\
# my tasks: backup first
[defaults]
timezone = "UTC"  # backup here stays

# the backup, nightly
[tasks.backup]   # keep this comment
schedule = "@daily"
command = "echo backup; echo [tasks.backup]"
description = "backup"

[tasks.backup.env]
HOME = "/tmp"

[ tasks . "backup" . notify ]
on = ["failure"]

[tasks.report]
schedule = "@daily"
command = "true"
after = ["backup", 'other']  # after "backup"

[tasks.multi]
schedule = "@daily"
command = """
backup
[tasks.backup]
after = ["backup"]
"""
after = [
  "report",
  'backup', # the backup
]

[tasks]
other.schedule = "@hourly"
other.command = "true"
other.after = "backup"
'''

AFTER = '''\
# my tasks: backup first
[defaults]
timezone = "UTC"  # backup here stays

# the backup, nightly
[tasks.backup-home]   # keep this comment
schedule = "@daily"
command = "echo backup; echo [tasks.backup]"
description = "backup"

[tasks.backup-home.env]
HOME = "/tmp"

[ tasks . "backup-home" . notify ]
on = ["failure"]

[tasks.report]
schedule = "@daily"
command = "true"
after = ["backup-home", 'other']  # after "backup"

[tasks.multi]
schedule = "@daily"
command = """
backup
[tasks.backup]
after = ["backup"]
"""
after = [
  "report",
  'backup-home', # the backup
]

[tasks]
other.schedule = "@hourly"
other.command = "true"
other.after = "backup-home"
'''


def test_golden_rename_keeps_every_other_character():
    assert renamed_text(BEFORE, "backup", "backup-home") == AFTER


def test_the_renamed_text_parses_as_the_same_file_with_one_name_changed():
    before = tomllib.loads(BEFORE)["tasks"]
    after = tomllib.loads(renamed_text(BEFORE, "backup", "backup-home"))["tasks"]
    assert after["backup-home"] == before["backup"]
    assert after["report"]["after"] == ["backup-home", "other"]
    assert after["multi"]["command"] == before["multi"]["command"]


@pytest.mark.parametrize(
    ("text", "new", "expected"),
    [
        ("[tasks.a]\nx = 1\n", "b", "[tasks.b]\nx = 1\n"),
        ("[tasks.a]\nx = 1\n", "a.b", '[tasks."a.b"]\nx = 1\n'),  # a dot needs quotes
        ("[tasks.'a']\nx = 1\n", "b", "[tasks.'b']\nx = 1\n"),  # the quoting kept
        ("[tasks]\na = { x = 1 }\n", "b", "[tasks]\nb = { x = 1 }\n"),  # an inline table
        ("tasks.a.x = 1\n", "b", "tasks.b.x = 1\n"),  # a dotted key at the top
        ("[tasks.ab]\n[tasks.a]\n", "b", "[tasks.ab]\n[tasks.b]\n"),  # only the whole name
        ('[tasks.c]\nafter = "a"\n', "b", '[tasks.c]\nafter = "b"\n'),  # after as a string
        ('[tasks.c]\ncommand = "a"\n', "b", '[tasks.c]\ncommand = "a"\n'),  # not an after
        ('[tasks.c.env]\nafter = "a"\n', "b", '[tasks.c.env]\nafter = "a"\n'),  # env var
    ],
)
def test_rename_cases(text, new, expected):
    assert renamed_text(text, "a", new) == expected
