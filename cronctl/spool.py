"""The output of running jobs, readable by other processes as it is written (README.md#files).

The history receives a run's output when the run ends. Until then, whoever runs the job (serve,
`run-now`) writes each chunk it reads from the job's pipes to the run's spool, and `logs`,
`logs --follow` and `top` read it from there. One module owns the format and the lifecycle,
for the writer and the readers alike.

Layout: `<state folder>/running/` (0700) holds one folder per run, `<run_id>/` (0700), made
on the job's first output byte (a job that prints nothing costs nothing), holding numbered
segment files (0600): `0`, `1`, `2`, ... Each segment starts with an 8-byte header, the number
of output bytes written before it (big-endian), then records: one byte for the stream (`o`
stdout, `e` stderr), a 4-byte length, the bytes. The writer fills a segment up to
SEGMENT_BYTES, then starts the next one and never writes to the earlier one again.

Bounded as the stored output is (runner/capture.py: head + tail): segment 0 is the head and
stays; of the later ones only the two newest are kept (the current one and the one before), so
a spool never holds more than 3 x SEGMENT_BYTES, whatever the job prints. A reader follows the
segments by number; one it never reached before it was deleted shows as a
`[... N bytes dropped ...]` marker (the header of the next segment says how many).

Lifecycle: the writer holds an exclusive flock(2) on its newest segment while the run is open
(a segment is locked before it shows under its number, and the one before is released after);
the run's folder is removed once its output is recorded in the history. A spool whose lock is free
belongs to a writer that is gone (serve or `run-now` killed): serve's recovery removes those of
the runs it marks abandoned, and `prune` removes every such leftover.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cronctl.records import safe_text

SEGMENT_BYTES = 64 * 1024
"""Bytes of a segment file (header and records): the head is the first segment; the tail is
kept as the last two, 64 to 128 KiB of output (the stored output keeps 64 KiB of each)."""
KEPT_TAIL_SEGMENTS = 2
SPOOL_FOLDER = "running"
STDOUT = "stdout"
STDERR = "stderr"

_HEADER = struct.Struct(">Q")
_RECORD = struct.Struct(">cI")
_TAGS = {STDOUT: b"o", STDERR: b"e"}
_STREAMS = {b"o": STDOUT, b"e": STDERR}


def spool_root(state_dir: Path) -> Path:
    return state_dir / SPOOL_FOLDER


def spool_path(state_dir: Path, run_id: int) -> Path:
    """The folder of one run's spool (it exists only once the job has printed something)."""
    return spool_root(state_dir) / str(run_id)


def _segment_numbers(folder: Path) -> list[int]:
    try:
        names = os.listdir(folder)
    except OSError:  # no spool (never made, or removed)
        return []
    return sorted(int(name) for name in names if name.isdigit())


class SpoolWriter:
    """The spool of one run, written by the thread that reads the job's pipes.

    Nothing touches the disk before the first `write`; `close` removes the spool (the run's
    output is recorded) or only releases it (`remove=False`: left for recovery or prune).
    Holds one descriptor while the run goes (two for the moment of starting a segment): the
    current segment's, locked.
    """

    __slots__ = (
        "_broken",
        "_current",
        "_number",
        "_path",
        "_size",
        "_state_dir",
        "_written",
        "run_id",
    )

    def __init__(self, state_dir: Path, run_id: int) -> None:
        self.run_id = run_id
        # The path is built on the first write: most jobs print nothing, and building it for
        # each run grew the interpreter's table of interned strings by the run ids' parts
        # (docs/performance.md, "Findings: memory").
        self._state_dir = state_dir
        self._path: Path | None = None
        self._current: int | None = None  # the segment being written, open and locked
        self._number = 0
        self._size = 0
        self._written = 0  # output bytes written so far
        self._broken = False

    @property
    def _folder(self) -> Path:
        if self._path is None:
            self._path = spool_path(self._state_dir, self.run_id)
        return self._path

    def write(self, stream: str, chunk: bytes) -> None:
        """Append `chunk` of `stream` ("stdout" or "stderr"), across segments if it must.

        Never raises for the disk: a spool that cannot be written (state folder full or not
        writable, no descriptor left) is given up for this run, which runs on and is recorded
        as ever.
        """
        if self._broken:
            return
        try:
            self._append(_TAGS[stream], memoryview(chunk))
        except OSError:
            self._broken = True
            self.close()

    def _append(self, tag: bytes, view: memoryview) -> None:
        if self._current is None:
            self._create()
        while view:
            room = SEGMENT_BYTES - self._size - _RECORD.size
            if room <= 0:
                self._rotate()
                continue
            part = view[:room]
            assert self._current is not None
            # One writev(2) per record (no copy of the chunk): a reader sees a record whole or
            # (rarely) in part, never interleaved with another.
            os.writev(self._current, (_RECORD.pack(tag, len(part)), part))
            self._size += _RECORD.size + len(part)
            self._written += len(part)
            view = view[len(part) :]

    def _create(self) -> None:
        root = self._folder.parent
        if not root.is_dir():
            with contextlib.suppress(FileExistsError):
                root.mkdir(mode=0o700, parents=True)
        try:
            self._folder.mkdir(mode=0o700)
        except FileExistsError:  # a leftover of a run id used before (a database started anew)
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder.mkdir(mode=0o700)
        self._current = self._start_segment(0)

    def _start_segment(self, number: int) -> int:
        """Make segment `number`, locked before it shows under its name: the newest segment
        of a live writer is always locked (what `_is_released` relies on)."""
        making = self._folder / f"{number}.new"
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, _HEADER.pack(self._written))
            os.rename(making, self._folder / str(number))
        except OSError:
            os.close(fd)
            raise
        self._size = _HEADER.size
        self._number = number
        return fd

    def _rotate(self) -> None:
        fd = self._start_segment(self._number + 1)
        if self._current is not None:
            os.close(self._current)  # its lock goes; the new segment's holds
        self._current = fd
        old = self._number - KEPT_TAIL_SEGMENTS
        if old >= 1:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._folder / str(old))

    def close(self, *, remove: bool = True) -> None:
        """Remove the spool (or, with `remove=False`, leave it), then release it."""
        if remove and (self._current is not None or self._broken):
            shutil.rmtree(self._folder, ignore_errors=True)
        if self._current is not None:
            os.close(self._current)  # releases the lock
            self._current = None


@dataclass(frozen=True)
class Chunk:
    """What a reader gets: output of one stream, or (stream None) a drop marker's count."""

    stream: str | None
    data: bytes
    dropped: int = 0


class SpoolReader:
    """Follows one run's spool as it grows: each `read` returns what came since the last.

    The reader keeps its current segment open, so a segment the writer deletes meanwhile is
    still read to its end.
    """

    def __init__(self, state_dir: Path, run_id: int) -> None:
        self.folder = spool_path(state_dir, run_id)
        self._fd: int | None = None
        self._number = -1
        self._offset = 0  # output bytes read so far, counted as the headers count them
        self._pending = b""
        self.seen = False
        """Whether the spool was ever found."""

    def read(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        if self._fd is None and not self._open_next(chunks):
            return chunks
        while True:
            self._read_current(chunks)
            if not self._open_next(chunks):
                return chunks

    def _open_next(self, chunks: list[Chunk]) -> bool:
        """Move to the next segment there is, when the writer has started one; False if none."""
        later = [n for n in _segment_numbers(self.folder) if n > self._number]
        for number in later:
            try:
                fd = os.open(self.folder / str(number), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # deleted between the listing and the open
            if self._fd is not None:
                self._read_current(chunks)  # whatever came before the writer moved on
                os.close(self._fd)
            header = os.read(fd, _HEADER.size)
            if len(header) < _HEADER.size:  # just made: its header not yet written
                os.close(fd)
                return False
            (start,) = _HEADER.unpack(header)
            if start > self._offset:
                chunks.append(Chunk(None, b"", start - self._offset))
                self._offset = start
            self._fd, self._number, self._pending = fd, number, b""
            self.seen = True
            return True
        return False

    def _read_current(self, chunks: list[Chunk]) -> None:
        assert self._fd is not None
        data = self._pending + _read_all(self._fd)
        at = 0
        while len(data) - at >= _RECORD.size:
            tag, length = _RECORD.unpack_from(data, at)
            end = at + _RECORD.size + length
            if end > len(data):
                break  # the rest of this record is still being written
            payload = data[at + _RECORD.size : end]
            chunks.append(Chunk(_STREAMS.get(tag, STDOUT), payload))
            self._offset += length
            at = end
        self._pending = data[at:]

    @property
    def offset(self) -> int:
        """Output bytes passed on so far, counting those a drop marker stood for."""
        return self._offset

    def writer_gone(self) -> bool:
        """Whether the spool was found and its writer released it (ended, or was killed)."""
        if self._fd is None:
            return False
        if _is_locked(self._fd):
            return False
        return _segment_numbers(self.folder)[-1:] in ([self._number], [])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_all(fd: int) -> bytes:
    parts: list[bytes] = []
    while True:
        data = os.read(fd, SEGMENT_BYTES)
        if not data:
            return b"".join(parts)
        parts.append(data)


def read_so_far(state_dir: Path, run_id: int) -> list[Chunk] | None:
    """Everything the spool holds now, in order (with drop markers); None when there is none."""
    reader = SpoolReader(state_dir, run_id)
    try:
        chunks = reader.read()
        return chunks if reader.seen else None
    finally:
        reader.close()


def last_line(state_dir: Path, run_id: int) -> str | None:
    """The last non-empty line the running run has written so far, as safe text
    (records.safe_text: no terminal escapes); None when there is no spool.

    Read from the newest segment only (at most SEGMENT_BYTES), and from the stream written
    last; a line redrawn with carriage returns (a progress bar) shows its last state.
    """
    folder = spool_path(state_dir, run_id)
    numbers = _segment_numbers(folder)
    if not numbers:
        return None
    texts: dict[str, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
    latest: str | None = None
    for chunk in _records_of(folder / str(numbers[-1])):
        assert chunk.stream is not None
        texts[chunk.stream] += chunk.data
        if chunk.data.strip():
            latest = chunk.stream
    if latest is None:
        return ""
    for line in reversed(bytes(texts[latest]).splitlines()):
        shown = line.rsplit(b"\r", 1)[-1] if line.strip(b"\r") else b""
        if shown.strip():
            return safe_text(shown)
    return ""


def _records_of(path: Path) -> Iterator[Chunk]:
    try:
        data = path.read_bytes()
    except OSError:
        return
    at = _HEADER.size
    while len(data) - at >= _RECORD.size:
        tag, length = _RECORD.unpack_from(data, at)
        end = at + _RECORD.size + length
        if end > len(data):
            return
        yield Chunk(_STREAMS.get(tag, STDOUT), data[at + _RECORD.size : end])
        at = end


def _is_locked(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _is_released(folder: Path) -> bool:
    """Whether nobody writes the spool in `folder`: its newest segment's lock is free, and no
    newer one showed up meanwhile (a live writer locks a new segment before it lets go of the
    one before)."""
    while True:
        numbers = _segment_numbers(folder)
        if not numbers:
            return True
        newest = numbers[-1]
        try:
            fd = os.open(folder / str(newest), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # removed meanwhile: look again
        try:
            if _is_locked(fd):
                return False
        finally:
            os.close(fd)
        if _segment_numbers(folder)[-1:] in ([newest], []):
            return True


def remove_spool(state_dir: Path, run_id: int) -> bool:
    """Remove the spool of a run that is closed (abandoned, interrupted) when its writer is
    gone; True when one was removed."""
    folder = spool_path(state_dir, run_id)
    if not folder.exists() or not _is_released(folder):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def remove_leftovers(state_dir: Path) -> int:
    """Remove every spool whose writer is gone (prune); return how many were removed.

    A writer alive holds its newest segment's lock; a folder still without segment 0 is one
    being made right now and is left alone.
    """
    root = spool_root(state_dir)
    try:
        names = os.listdir(root)
    except OSError:
        return 0
    removed = 0
    for name in names:
        folder = root / name
        if name.isdigit() and (folder / "0").exists() and _is_released(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
