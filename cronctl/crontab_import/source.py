"""Reading the crontab to import: a file, or a pipe such as `crontab -l | cronctl import -`.

At most MAX_BYTES are read (the task file's own limit, README "The task file"): a crontab is a
few kilobytes, and `cronctl import /dev/zero` must end with one error, not fill the memory.
"""

from __future__ import annotations

from typing import BinaryIO

from cronctl.errors import UsageError
from cronctl.taskfile import MAX_BYTES

_CHUNK = 64 * 1024


def read_crontab(stream: BinaryIO, label: str) -> str:
    """Return the text of `stream`, read up to MAX_BYTES; a longer input is a UsageError.

    Bytes that are not UTF-8 are replaced (cron itself reads bytes; the reader then reports the
    lines it cannot import)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(_CHUNK, MAX_BYTES + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BYTES:
            raise UsageError(
                f"{label} is larger than {MAX_BYTES // (1024 * 1024)} MiB, "
                "the most cronctl reads of a crontab",
                hint="is it the right file? `crontab -l` is a few kilobytes",
            )
    return b"".join(chunks).decode("utf-8", errors="replace")
