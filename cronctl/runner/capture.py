"""Bounded capture of a job's output, and a safe way to show it.

A stream keeps its first `head_bytes` and its last `tail_bytes`; everything in between is
counted and replaced by one marker line. Memory stays O(head_bytes + tail_bytes) whatever the
job prints. Bytes are kept raw (invalid UTF-8, NUL, terminal escapes and all);
`cronctl.records.safe_text` turns them into text that cannot drive a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cronctl.records import Output
from cronctl.spool import SpoolWriter

DEFAULT_HEAD_BYTES = 64 * 1024
DEFAULT_TAIL_BYTES = 64 * 1024


def drop_marker(dropped_bytes: int) -> bytes:
    """The line put between head and tail when `dropped_bytes` (> 0) were dropped."""
    return b"\n[... %d bytes dropped ...]\n" % dropped_bytes


@dataclass(frozen=True)
class CapturedOutput(Output):
    """What was kept of one stream, in the form the history stores (a records.Output).

    `data` is the raw bytes: head + drop_marker(dropped_bytes) + tail when truncated;
    `total_bytes` everything the job printed on the stream; `dropped_bytes` the bytes left out
    of `data` (0 when nothing was dropped).
    """


EMPTY_OUTPUT = CapturedOutput(b"", 0, 0)


class BoundedCapture:
    """Head (first N bytes) + tail (last N bytes) + a byte count; O(N) memory."""

    __slots__ = ("_head", "_head_limit", "_tail", "_tail_limit", "_total")

    def __init__(
        self, head_bytes: int = DEFAULT_HEAD_BYTES, tail_bytes: int = DEFAULT_TAIL_BYTES
    ) -> None:
        if head_bytes < 0 or tail_bytes < 0:
            raise ValueError("head_bytes and tail_bytes must not be negative")
        self._head_limit = head_bytes
        self._tail_limit = tail_bytes
        self._head = bytearray()
        # The tail grows to at most 2 * tail_limit before its front is cut (amortised O(1)).
        self._tail = bytearray()
        self._total = 0

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if not n:
            return
        self._total += n
        room = self._head_limit - len(self._head)
        if room > 0:
            if n <= room:
                self._head += chunk
                return
            view = memoryview(chunk)
            self._head += view[:room]
            chunk = view[room:]
            n -= room
        limit = self._tail_limit
        if not limit:
            return
        if n >= limit:
            self._tail = bytearray(memoryview(chunk)[n - limit :])
            return
        self._tail += chunk
        if len(self._tail) > 2 * limit:
            del self._tail[: len(self._tail) - limit]

    def result(self) -> CapturedOutput:
        head = bytes(self._head)
        limit = self._tail_limit
        tail = bytes(self._tail[max(0, len(self._tail) - limit) :]) if limit else b""
        dropped = self._total - len(head) - len(tail)
        if dropped:
            return CapturedOutput(head + drop_marker(dropped) + tail, self._total, dropped)
        return CapturedOutput(head + tail, self._total, 0)


def spooled_output(
    spool: SpoolWriter, then: Callable[[str, bytes], None] | None
) -> Callable[[str, bytes], None]:
    """The output callback that spools each chunk, then passes it on to `then`."""
    if then is None:
        return spool.write

    def both(stream: str, chunk: bytes) -> None:
        spool.write(stream, chunk)
        then(stream, chunk)

    return both
