"""Running the external tools cronctl asks about the system: systemctl, loginctl, systemd-analyze.

One helper, `run_tool`, with a timeout, that never raises for a missing or unusable tool: it
returns an exit status and both outputs, so callers print one clear line instead of a
traceback when systemd is not there (containers, macOS, WSL without systemd).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import NamedTuple

DEFAULT_TIMEOUT = 15.0

NOT_FOUND = 127
"""Exit status when the tool is not installed (as a shell reports it)."""
NOT_EXECUTABLE = 126
"""Exit status when the tool exists but cannot be started."""
TIMED_OUT = 124
"""Exit status when the tool did not finish within the timeout (as timeout(1) reports it)."""


class ToolResult(NamedTuple):
    """What a tool did: unpacks as (code, stdout, stderr)."""

    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def message(self) -> str:
        """Return the tool's own explanation, one line: its stderr, else its stdout."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return text[0] if text else f"exit status {self.code}"


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> ToolResult:
    """Run `argv` to completion and return its status and output; never raise for a bad tool.

    The tool gets no terminal input (stdin is `input` or /dev/null) and no pager.
    """
    if not argv:
        return ToolResult(NOT_FOUND, "", "no command given")
    environment = dict(os.environ if env is None else env)
    environment.setdefault("SYSTEMD_PAGER", "")
    environment.setdefault("PAGER", "cat")
    try:
        completed = subprocess.run(
            list(argv),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=environment,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        return ToolResult(NOT_FOUND, "", f"{argv[0]}: command not found")
    except PermissionError as exc:
        return ToolResult(NOT_EXECUTABLE, "", f"{argv[0]}: {exc.strerror}")
    except subprocess.TimeoutExpired as exc:
        return ToolResult(TIMED_OUT, _text(exc.stdout), f"{argv[0]}: no answer within {timeout:g}s")
    except OSError as exc:
        return ToolResult(NOT_EXECUTABLE, "", f"{argv[0]}: {exc.strerror or exc}")
    return ToolResult(completed.returncode, completed.stdout, completed.stderr)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data
