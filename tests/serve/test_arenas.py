"""glibc's malloc arenas bounded at serve's start (cronctl/serve/arenas.py), seen from glibc's own
report (`malloc_stats`) of a real process whose threads allocate at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cronctl.serve.arenas import ARENA_MAX, bound_arenas

glibc_only = pytest.mark.skipif(
    not hasattr(os, "confstr") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)

PROBE = """
import ctypes, os, sys, threading
from cronctl.serve.arenas import bound_arenas
if sys.argv[1] == "bound":
    print("bound:", bound_arenas(os.environ), file=sys.stderr)
def churn():
    for _ in range(2000):
        blocks = [bytearray(2000) for _ in range(50)]
        del blocks
threads = [threading.Thread(target=churn) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def arenas_used(mode: str, **env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    arenas = sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))
    return arenas, done.stderr


@glibc_only
def test_the_arenas_are_bounded_where_glibc_would_make_more():
    free, _ = arenas_used("free")
    bound, report = arenas_used("bound")
    assert "bound: True" in report
    assert 1 <= bound <= ARENA_MAX < free


@glibc_only
def test_a_users_malloc_arena_max_wins():
    assert not bound_arenas({"MALLOC_ARENA_MAX": "4"})
    used, report = arenas_used("bound", MALLOC_ARENA_MAX="4")
    assert "bound: False" in report
    assert ARENA_MAX < used <= 4


TRIM_PROBE = """
from cronctl.serve.arenas import trim_heap
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
# 40 MB in glibc's heap (blocks above pymalloc's 512 bytes), then all but every 100th freed:
# the blocks kept pin the heap's top, so only a trim gives the free pages back.
blocks = [bytearray(4000) for _ in range(10_000)]
kept = blocks[::100]
del blocks
before = rss_kb()
print(trim_heap(), before - rss_kb())
"""


@glibc_only
def test_trim_heap_gives_the_free_pages_of_the_heap_back():
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", TRIM_PROBE],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    trimmed, freed_kb = done.stdout.split()
    assert trimmed == "True"
    assert int(freed_kb) > 20_000  # of about 39 MB freed
