"""The spool of a running job's output (cronctl/spool.py): format, bounds, readers, cleanup."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl import spool
from cronctl.spool import (
    SEGMENT_BYTES,
    SpoolReader,
    SpoolWriter,
    last_line,
    read_so_far,
    remove_leftovers,
    remove_spool,
    spool_path,
)


def spool_bytes(state_dir) -> int:
    return sum(f.stat().st_size for f in (state_dir / "running").rglob("*") if f.is_file())


def joined(chunks, stream):
    return b"".join(c.data for c in chunks if c.stream == stream)


def test_nothing_on_disk_until_the_first_byte(tmp_path):
    writer = SpoolWriter(tmp_path, 7)
    assert not (tmp_path / "running").exists()
    assert last_line(tmp_path, 7) is None and read_so_far(tmp_path, 7) is None
    writer.close()
    assert not (tmp_path / "running").exists()


def test_modes_are_private_and_the_spool_goes_on_close(tmp_path):
    writer = SpoolWriter(tmp_path, 7)
    writer.write("stdout", b"hello\n")
    folder = spool_path(tmp_path, 7)
    assert stat.S_IMODE((tmp_path / "running").stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "0").stat().st_mode) == 0o600
    writer.close()
    assert not folder.exists()


def test_streams_stay_apart_and_in_order(tmp_path):
    writer = SpoolWriter(tmp_path, 1)
    writes = [("stdout", b"a\n"), ("stderr", b"oops\n"), ("stdout", b"b\n")]
    for stream, data in writes:
        writer.write(stream, data)
    chunks = read_so_far(tmp_path, 1)
    assert [(c.stream, c.data) for c in chunks] == writes
    writer.close()


def test_a_job_printing_far_more_than_head_and_tail_stays_bounded(tmp_path):
    writer = SpoolWriter(tmp_path, 3)
    line = b"x" * 99 + b"\n"
    peak = 0
    for i in range(20_000):  # 2 MB
        writer.write("stdout" if i % 3 else "stderr", line)
        if i % 500 == 0:
            peak = max(peak, spool_bytes(tmp_path))
    peak = max(peak, spool_bytes(tmp_path))
    assert peak <= 3 * SEGMENT_BYTES
    chunks = read_so_far(tmp_path, 3)
    dropped = sum(c.dropped for c in chunks if c.stream is None)
    shown = sum(len(c.data) for c in chunks)
    assert dropped > 0 and shown + dropped == 20_000 * 100
    assert chunks[0].data == line  # the head is kept
    writer.close()


def test_a_reader_keeps_pace_across_segments_and_loses_nothing(tmp_path):
    writer = SpoolWriter(tmp_path, 4)
    reader = SpoolReader(tmp_path, 4)
    got = bytearray()
    sent = bytearray()
    for i in range(5000):
        data = b"%d\n" % i
        writer.write("stdout", data)
        sent += data
        if i % 100 == 0:
            got += joined(reader.read(), "stdout")
    got += joined(reader.read(), "stdout")
    assert bytes(got) == bytes(sent)
    reader.close()
    writer.close()


def test_a_reader_reads_a_segment_deleted_under_it_to_its_end(tmp_path):
    writer = SpoolWriter(tmp_path, 5)
    reader = SpoolReader(tmp_path, 5)
    writer.write("stdout", b"h" * (SEGMENT_BYTES - 100))
    writer.write("stdout", b"1" * 1000)  # starts segment 1
    first = joined(reader.read(), "stdout")
    assert first.endswith(b"1" * 1000)  # the reader is in segment 1 now
    writer.write("stdout", b"2" * 1000)  # still segment 1
    for _ in range(4):  # segments 2 to 5: segment 1 is deleted meanwhile
        writer.write("stdout", b"z" * (SEGMENT_BYTES - 5))
    assert not (spool_path(tmp_path, 5) / "1").exists()
    chunks = reader.read()
    assert chunks[0].data.startswith(b"2" * 1000)  # read from the deleted segment
    markers = [c for c in chunks if c.stream is None]
    assert len(markers) == 1 and markers[0].dropped > 0
    total = (SEGMENT_BYTES - 100) + 2000 + 4 * (SEGMENT_BYTES - 5)
    assert len(first) + sum(len(c.data) + c.dropped for c in chunks) == total
    reader.close()
    writer.close()


@settings(max_examples=40, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.sampled_from(["stdout", "stderr"]), st.binary(min_size=1, max_size=40_000)),
        max_size=30,
    ),
    read_every=st.integers(1, 10),
)
def test_what_a_reader_gets_is_the_output_less_one_counted_gap(
    tmp_path_factory, writes, read_every
):
    """Whatever the writes and however often the reader looks: per stream, what it gets is a
    prefix and a suffix of what was written, and the markers count exactly the bytes between."""
    state = tmp_path_factory.mktemp("spool")
    writer = SpoolWriter(state, 1)
    reader = SpoolReader(state, 1)
    chunks = []
    for i, (stream, data) in enumerate(writes):
        writer.write(stream, data)
        if i % read_every == 0:
            chunks += reader.read()
    chunks += reader.read()
    reader.close()
    writer.close()
    total = sum(len(d) for _, d in writes)
    shown = sum(len(c.data) for c in chunks)
    assert shown + sum(c.dropped for c in chunks) == total
    if not any(c.stream is None for c in chunks):
        for name in ("stdout", "stderr"):
            assert joined(chunks, name) == b"".join(d for s, d in writes if s == name)


@pytest.mark.parametrize(
    ("writes", "expected"),
    [
        ([("stdout", b"one\ntwo\n")], "two"),
        ([("stdout", b"one\ntwo")], "two"),
        ([("stdout", b"one\n\n  \n")], "one"),
        ([("stdout", b"out\n"), ("stderr", b"err line\n")], "err line"),
        ([("stderr", b"err\n"), ("stdout", b"out\n"), ("stderr", b"\n")], "out"),
        ([("stdout", b"10%\r50%\r90%")], "90%"),
        ([("stdout", b"\x1b[31mred\x1b[0m\n")], "\\x1b[31mred\\x1b[0m"),
        ([("stdout", b"\n\n")], ""),
    ],
)
def test_last_line(tmp_path, writes, expected):
    writer = SpoolWriter(tmp_path, 9)
    for stream, data in writes:
        writer.write(stream, data)
    assert last_line(tmp_path, 9) == expected
    writer.close()


def test_last_line_reads_the_newest_segment(tmp_path):
    writer = SpoolWriter(tmp_path, 9)
    for i in range(10_000):
        writer.write("stdout", b"line %d\n" % i)
    assert last_line(tmp_path, 9) == "line 9999"
    writer.close()


def test_an_unwritable_state_folder_gives_up_the_spool_not_the_run(tmp_path):
    blocked = tmp_path / "running"
    blocked.write_text("not a folder")
    writer = SpoolWriter(tmp_path, 2)
    writer.write("stdout", b"fine\n")  # does not raise
    writer.write("stdout", b"still fine\n")
    writer.close()
    assert blocked.read_text() == "not a folder"


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cronctl.spool import SpoolWriter
    writer = SpoolWriter(Path(sys.argv[1]), int(sys.argv[2]))
    writer.write("stdout", b"held\\n")
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_leftovers_of_dead_writers_go_and_live_ones_stay(tmp_path):
    """A writer killed -9 leaves a spool nobody holds: remove_leftovers takes it; a live
    writer's spool (another process) is left alone."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path), str(run_id)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for run_id in (1, 2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline() == "ready\n"
        procs[0].kill()
        procs[0].wait()
        assert remove_spool(tmp_path, 2) is False  # held
        assert remove_leftovers(tmp_path) == 1
        assert not spool_path(tmp_path, 1).exists()
        assert spool_path(tmp_path, 2).exists()
        assert last_line(tmp_path, 2) == "held"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert remove_spool(tmp_path, 2) is True
    assert remove_leftovers(tmp_path) == 0


def test_a_live_writer_past_its_head_is_not_a_leftover(tmp_path):
    """The lock moves to each new segment: segment 0 is free once the writer is past it."""
    writer = SpoolWriter(tmp_path, 6)
    for _ in range(5):
        writer.write("stdout", b"y" * SEGMENT_BYTES)
    reader = SpoolReader(tmp_path, 6)
    reader.read()
    assert remove_leftovers(tmp_path) == 0 and not reader.writer_gone()
    writer.close(remove=False)
    assert reader.writer_gone()
    reader.close()
    assert remove_leftovers(tmp_path) == 1


def test_a_folder_being_made_is_not_a_leftover(tmp_path):
    (tmp_path / "running" / "5").mkdir(parents=True)
    assert remove_leftovers(tmp_path) == 0
    assert (tmp_path / "running" / "5").exists()


def test_the_format_is_documented_where_it_is_owned():
    doc = spool.__doc__ or ""
    for word in ("0700", "0600", "flock", "header", "SEGMENT_BYTES"):
        assert word in doc
    assert os.path.basename(spool.__file__) == "spool.py"
