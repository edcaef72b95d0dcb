"""BoundedCapture (head + tail + count) and safe_text."""

from __future__ import annotations

import itertools
import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.records import safe_text
from cronctl.runner.capture import BoundedCapture, CapturedOutput, drop_marker

H = T = 64 * 1024
_PATTERN = bytes(range(251)) * 2200  # 552 200 bytes; 251 is prime, so offsets are visible


def pattern(n: int) -> bytes:
    reps = n // len(_PATTERN) + 1
    return (_PATTERN * reps)[:n]


def expected(data: bytes, head: int, tail: int) -> CapturedOutput:
    """The reference result, computed the obvious way."""
    if len(data) <= head + tail:
        return CapturedOutput(data, len(data), 0)
    dropped = len(data) - head - tail
    kept_tail = data[len(data) - tail :] if tail else b""
    return CapturedOutput(data[:head] + drop_marker(dropped) + kept_tail, len(data), dropped)


def feed_in_chunks(cap: BoundedCapture, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        cap.feed(data[i : i + chunk])


SIZES = [0, 1, H - 1, H, H + 1, H + T - 1, H + T, H + T + 1, H + T + 4096, 3 * (H + T) + 17]
CHUNKS = [1 << 30, 65536, 4096, 1000, 7]


# 7-byte feeds of the largest size are only slow; larger chunks cover that size.
SIZE_CHUNKS = [(s, c) for s in SIZES for c in CHUNKS if not (c == 7 and s > 2 * (H + T))]


@pytest.mark.parametrize(("size", "chunk"), SIZE_CHUNKS)
def test_default_sizes_around_the_64k_boundaries(size: int, chunk: int) -> None:
    data = pattern(size)
    cap = BoundedCapture()
    feed_in_chunks(cap, data, chunk)
    result = cap.result()
    assert result == expected(data, H, T)
    assert result.total_bytes == size
    assert (result.dropped_bytes > 0) == (size > H + T)
    if size > H + T:
        assert result.dropped_bytes == size - H - T
        assert len(result.data) == H + T + len(drop_marker(size - H - T))


@pytest.mark.parametrize(
    ("head", "tail", "chunks", "data", "dropped"),
    [
        (3, 4, [b""], b"", 0),
        (3, 4, [b"abc"], b"abc", 0),
        (3, 4, [b"abcdefg"], b"abcdefg", 0),
        (3, 4, [b"abcdefgh"], b"abc\n[... 1 bytes dropped ...]\nefgh", 1),
        (3, 4, [b"ab", b"cd", b"ef", b"gh", b"ij"], b"abc\n[... 3 bytes dropped ...]\nghij", 3),
        (3, 4, [b"a"] * 10, b"aaa\n[... 3 bytes dropped ...]\naaaa", 3),
        (0, 4, [b"abcdef"], b"\n[... 2 bytes dropped ...]\ncdef", 2),
        (3, 0, [b"abcdef"], b"abc\n[... 3 bytes dropped ...]\n", 3),
        (0, 0, [b"abc"], b"\n[... 3 bytes dropped ...]\n", 3),
        (0, 0, [], b"", 0),
        (2, 2, [b"x" * 1000, b"yz"], b"xx\n[... 998 bytes dropped ...]\nyz", 998),
    ],
)
def test_exact_small_cases(
    head: int, tail: int, chunks: list[bytes], data: bytes, dropped: int
) -> None:
    cap = BoundedCapture(head, tail)
    for c in chunks:
        cap.feed(c)
    result = cap.result()
    assert result.data == data
    assert result.dropped_bytes == dropped
    assert result.total_bytes == sum(len(c) for c in chunks)


def test_marker_counts_bytes() -> None:
    assert drop_marker(209506304) == b"\n[... 209506304 bytes dropped ...]\n"


def test_accepts_bytearray_and_memoryview_and_copies_them() -> None:
    cap = BoundedCapture(2, 2)
    buf = bytearray(b"abcdef")
    cap.feed(buf)
    cap.feed(memoryview(b"gh"))
    buf[:] = b"XXXXXX"
    assert cap.result().data == b"ab\n[... 4 bytes dropped ...]\ngh"


def test_result_can_be_taken_twice_and_feeding_goes_on() -> None:
    cap = BoundedCapture(2, 2)
    cap.feed(b"abcd")
    assert cap.result().data == b"abcd"
    assert cap.result().data == b"abcd"
    cap.feed(b"e")
    assert cap.result().data == b"ab\n[... 1 bytes dropped ...]\nde"


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        BoundedCapture(-1, 10)
    with pytest.raises(ValueError):
        BoundedCapture(10, -1)


def test_memory_stays_bounded_whatever_is_fed() -> None:
    chunk = pattern(65536)
    cap = BoundedCapture()
    tracemalloc.start()
    try:
        for _ in range(1600):  # 100 MiB
            cap.feed(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    result = cap.result()
    assert result.total_bytes == 1600 * 65536
    assert result.dropped_bytes == 1600 * 65536 - H - T


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300),
    head=st.integers(0, 40),
    tail=st.integers(0, 40),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_any_chunking_gives_the_reference_result(
    data: bytes, head: int, tail: int, cuts: list[int]
) -> None:
    cap = BoundedCapture(head, tail)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for a, b in itertools.pairwise(bounds):
        cap.feed(data[a:b])
    assert cap.result() == expected(data, head, tail)


# --------------------------------------------------------------------------- safe_text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain text", "plain text"),
        (b"line\n\tindented\n", "line\n\tindented\n"),
        ("caf\u00e9 \u2713 \U0001f600".encode(), "caf\u00e9 \u2713 \U0001f600"),
        (b"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        (b"\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        (b"\xff\xfe", "\\xff\\xfe"),
        (b"bad \xc3( utf8", "bad \\xc3( utf8"),
        (b"nul\x00byte", "nul\\x00byte"),
        (b"over\rwrite", "over\\x0dwrite"),
        (b"back\x08space", "back\\x08space"),
        (b"del\x7f", "del\\x7f"),
        ("c1 \u009b31m csi".encode(), "c1 \\x9b31m csi"),
        ("bidi \u202egnp.exe".encode(), "bidi \\u202egnp.exe"),
        ("isolate \u2066x\u2069".encode(), "isolate \\u2066x\\u2069"),
        (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),  # an encoded surrogate is invalid UTF-8
    ],
)
def test_safe_text(raw: bytes, text: str) -> None:
    assert safe_text(raw) == text


_UNSAFE_CHARS = {chr(c) for c in range(0x20) if chr(c) not in "\n\t"}
_UNSAFE_CHARS |= {chr(c) for c in range(0x7F, 0xA0)}
_UNSAFE_CHARS |= {chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)}


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )
)
def test_safe_text_never_lets_a_control_through_and_is_valid_json(raw: bytes) -> None:
    text = safe_text(raw)
    assert not (set(text) & _UNSAFE_CHARS)
    text.encode("utf-8")  # no lone surrogates
    assert json.loads(json.dumps(text, ensure_ascii=False)) == text
