"""runner.tools: external tools with a timeout, never an exception for a bad tool."""

from __future__ import annotations

import sys

from cronctl.runner.tools import NOT_FOUND, TIMED_OUT, run_tool


def test_returns_status_and_both_outputs():
    code, out, err = run_tool(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        ]
    )
    assert (code, out, err) == (3, "out\n", "err\n")


def test_missing_tool_is_127_not_an_exception():
    result = run_tool(["cronctl-no-such-tool-xyz", "--version"])
    assert result.code == NOT_FOUND
    assert "not found" in result.message()


def test_a_tool_that_hangs_is_stopped_at_the_timeout():
    result = run_tool([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert result.code == TIMED_OUT
    assert "no answer within 0.5s" in result.stderr


def test_a_file_that_is_not_executable(tmp_path):
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho hi\n")
    result = run_tool([str(script)])
    assert result.code == 126


def test_input_and_no_terminal():
    result = run_tool(
        [sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], input="abc"
    )
    assert result.stdout == "ABC\n"
    result = run_tool([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"])
    assert result.stdout == "''\n"
