"""Bound glibc's malloc arenas for serve's process, before its threads exist.

Measured for issue 18 (docs/performance.md, "Findings: memory"): most of serve's RSS above its
start is memory glibc keeps free in its arenas, one per thread that allocated at a moment of
contention, up to 8 a core. With `MALLOC_ARENA_MAX=2` the real serve held 5.6 MB less at 300 s
(34.5 MB against 40.1 MB, 20 runs a second) with no difference in CPU per run or lateness.
`mallopt(M_ARENA_MAX, 2)` does the same from inside, so that a serve started without the
variable (most are) gets it too. It must run before the job threads start: an arena is never
given back once made.

`trim_heap` gives back what loading the task file left free in glibc's heap: the file's text,
its TOML document and the checks' garbage are freed when planning is done, but glibc keeps the
freed pages mapped (docs/performance.md, "Idle memory").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Mapping

log = logging.getLogger("cronctl.serve")

M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""
ARENA_MAX = 2
ENV_VARIABLE = "MALLOC_ARENA_MAX"


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (mallopt and malloc_trim are glibc's), else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):  # not glibc: the name is unknown
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def trim_heap() -> bool:
    """Return the free pages of glibc's heap to the system (`malloc_trim(0)`); whether it gave
    any back. False where the C library is not glibc."""
    libc = _glibc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return bool(trim(0))


def bound_arenas(environ: Mapping[str, str], limit: int = ARENA_MAX) -> bool:
    """Limit glibc's malloc to `limit` arenas; return whether the limit was set here.

    Skipped (False) where the C library is not glibc, and when the user set MALLOC_ARENA_MAX
    (glibc read it at the process's start: theirs wins)."""
    if ENV_VARIABLE in environ:
        return False
    mallopt = getattr(_glibc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, limit) != 1:  # mallopt returns 1 on success
        log.debug("mallopt(M_ARENA_MAX, %d) refused", limit)
        return False
    return True
