"""taskfile/plain.py: the fast reader of plain task files gives tomllib's document or nothing."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.taskfile import plain
from cronctl.taskfile.plain import read_plain

PLAIN = [
    "",
    "\n\n",
    "# a comment only\n",
    '[tasks.a]\nschedule = "*/5 * * * *"\ncommand = "echo #not a comment"\n',
    "[defaults]\ntimezone = 'Europe/Berlin'  # literal string, then a comment\n",
    "[tasks.a]\nretries = 3\ntimeout = -0\nenabled = false\nnice = +5\n",
    '[ tasks . a ]\nx="é ünïcode"\n[tasks.a.notify]\non = "failure"\n',
    "[a.b]\nx = 1\n[a]\ny = 2\n",  # a table after its sub-table: TOML allows it
    'true = "a bare key named true"\n',
    "\t[tasks.t]\t\n\tcommand\t=\t'tab'\t#\tok\n",
    '[tasks.a]\ncommand = "no newline at the end"',
    '[tasks.a]\ncommand = "a\tb"\n',  # a tab is allowed in a string
    # inline tables of plain values (bench_peers writes 100,000 tasks so)
    '[tasks.a]\nenv = { A = "1" }\n',
    '[tasks]\na={schedule="@yearly",command="true"}\nb = { x = 1, y = \'z, w = "v"\' } # c\n',
    "[tasks.a]\nenv = {}\nlimits = {\tcpu = 5 ,nice=-1, on = true , off=false}\n",
    "x = {a = 1}\n[y]\nx = {a = 2}\n[z.x]\n",
]

NOT_PLAIN = [
    # valid TOML beyond the plain part: tomllib reads it
    '[tasks.a]\nlock = ["db"]\n',
    '[tasks.a]\ncommand = "say \\"hi\\""\n',
    '[tasks.a]\ncommand = """two\nlines"""\n',
    "[tasks.a]\ntimeout = 1.5\n",
    "[tasks.a]\ntimeout = 1_000\n",
    "[tasks.a]\ntimeout = 0x10\n",
    "[tasks.a]\nwhen = 2026-12-06\n",
    "[tasks.a]\nnotify.on = 'failure'\n",
    '[tasks."a b"]\ncommand = "x"\n',
    "[tasks.a]\r\ncommand = 'x'\r\n",
    "[[tasks]]\nname = 'a'\n",
    "[tasks.a]\ntimeout = 1234567890123456789\n",
    # invalid TOML: tomllib words the error
    "[tasks.a]\ncommand = 'x'\ncommand = 'y'\n",
    "[tasks.a]\n[tasks.a]\n",
    "[a]\nb = 1\n[a.b]\n",
    "[tasks.a]\ncommand = 'x\x01'\n",
    "[tasks.a] command = 'x'\n",
    "[tasks.a]\ncommand = 'x'  # bell \x07\n",
    "[tasks.a]\ntimeout = 01\n",
    "[tasks.a]\ncommand = x\n",
    "[tasks.a\n",
    "[tasks.a]\ncommand = 'x'\rretries = 1\n",
    "[tasks]\na = {x = 1, x = 2}\n",
    "[tasks]\na = {x = 1,}\n",
    "[tasks]\na = {x = 1\n",
    "[tasks]\na = {x = 1, \ny = 2}\n",
    "[tasks]\na = {x = 1}\n[tasks.a]\n",
    "[tasks]\na = {x = 1}\n[tasks.a.notify]\n",
    "a = {}\n[a]\n",
    "[tasks]\na = {x = 1}\na = {y = 2}\n",
    "[tasks]\na = {x = 1} {y = 2}\n",
]


@pytest.mark.parametrize("text", PLAIN)
def test_a_plain_file_reads_as_tomllib_reads_it(text):
    assert read_plain(text) == tomllib.loads(text)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_anything_else_is_left_to_tomllib(text):
    assert read_plain(text) is None


PIECES = st.sampled_from(
    [
        "[tasks.a]",
        "[tasks.b]",
        "[ tasks . a . notify ]",
        "[defaults]",
        "[tasks]",
        "[a.b.c]",
        "[[tasks.a]]",
        "x = 1",
        "x = -0",
        "y = 'lit'",
        'z = "basic # not a comment"',
        "command = true",
        "a = [1]",
        "b = {c = 1}",
        "b = { c = 'x', d = 2, e = true }",
        "b = {}",
        "b = {c = 1, c = 2}",
        "b = {c = 1,}",
        "b = {c = {d = 1}}",
        "[b]",
        "[b.c]",
        "[tasks.a.b]",
        "c.d = 1",
        "e = 1.0",
        "f = 007",
        "g = 'un closed",
        '"q" = 1',
        "# comment",
        "",
        "  ",
        "\t",
        "\r",
        "x = 'é'",
        'h = "esc \\t"',
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_the_plain_reader_never_differs_from_tomllib(lines, newline):
    """Property: on any text, read_plain gives None or exactly tomllib's document; it gives
    None whenever tomllib refuses the text."""
    text = newline.join(lines)
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assert read_plain(text) is None
        return
    found = read_plain(text)
    assert found is None or found == expected


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_lines_are_read_a_chunk_at_a_time_without_changing_the_document(monkeypatch, chunk):
    """Big files are split a megabyte at a time; a chunk boundary anywhere changes nothing."""
    monkeypatch.setattr(plain, "_CHUNK", chunk)
    for text in PLAIN:
        assert read_plain(text) == tomllib.loads(text)
    for text in NOT_PLAIN:
        assert read_plain(text) is None
