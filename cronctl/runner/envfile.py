"""Environment files (the `env_file` key; README "The task file"): read at each run, so a
rotated secret takes effect at the next run without a reload.

The format is the common ground of systemd's EnvironmentFile= and docker's --env-file: one
`NAME=value` a line, an optional `export ` before the name, blank lines and lines starting
with `#` ignored. A value in matching single quotes is taken as written; in double quotes,
`\\"`, `\\\\` and `\\n` are unescaped. An unquoted value is the rest of the line, trimmed: a `#`
in it is part of the value (passwords contain them). Nothing is expanded.

The values are secrets: no message of this module quotes one, only the file and line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from cronctl.model import ENV_NAME

# A file of secrets, not a dump: a longer one (or /dev/zero) is refused before it is read.
MAX_BYTES = 1024 * 1024
_DOUBLE_QUOTED_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


class EnvFileError(Exception):
    """Why an env file cannot be used: the run ends `error` with this as its reason."""


def read_env_files(paths: Iterable[str]) -> dict[str, str]:
    """Return the variables of the files in order (a later file's value wins), or raise
    EnvFileError naming the file and line."""
    variables: dict[str, str] = {}
    for path in paths:
        variables.update(read_env_file(path))
    return variables


def read_env_file(path: str) -> dict[str, str]:
    text = _read(path)
    variables = {}
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            pair = parse_line(line)
        except ValueError as exc:
            raise EnvFileError(f"env_file {path}, line {number}: {exc}") from None
        if pair is not None:
            variables[pair[0]] = pair[1]
    return variables


def _read(path: str) -> str:
    full = os.path.expanduser(path)
    try:
        # O_NONBLOCK: opening a FIFO must not hang the run; fstat then refuses it.
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise EnvFileError(f"env_file {path}: cannot read it: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise EnvFileError(f"env_file {path}: not a regular file")
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise EnvFileError(f"env_file {path}: longer than {MAX_BYTES // 1024} KiB")
    # Bytes that are not UTF-8 reach the job as they are (os.environ's own convention).
    return data.decode("utf-8", "surrogateescape")


def parse_line(line: str) -> tuple[str, str] | None:
    """Return (name, value) of one line, None for a blank or comment line, or raise ValueError
    saying what is wrong without quoting the value."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("export") and text[6:7].isspace():
        text = text[6:].lstrip()
    name, equals, value = text.partition("=")
    name = name.rstrip()
    if not equals:
        raise ValueError("not NAME=value")
    if not ENV_NAME.fullmatch(name):
        raise ValueError(f"{name[:40]!r} is not a valid environment variable name")
    value = _unquote(value.strip())
    if "\x00" in value:
        raise ValueError(f"the value of {name} contains a NUL character")
    return name, value


def _unquote(value: str) -> str:
    if not value or value[0] not in "'\"":
        return value
    quote = value[0]
    if len(value) < 2 or value[-1] != quote or (quote == '"' and _escaped_end(value)):
        raise ValueError(f"the value's {quote} quote is not closed on its line")
    inner = value[1:-1]
    if quote == "'":
        return inner
    out, index = [], 0
    while index < len(inner):
        char = inner[index]
        if char == "\\" and index + 1 < len(inner) and inner[index + 1] in _DOUBLE_QUOTED_ESCAPES:
            out.append(_DOUBLE_QUOTED_ESCAPES[inner[index + 1]])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _escaped_end(value: str) -> bool:
    """Whether the closing `"` of a double-quoted value is itself escaped (`"abc\\"`)."""
    backslashes = len(value) - 1 - len(value[:-1].rstrip("\\"))
    return len(value) > 2 and backslashes % 2 == 1
