"""Hot reload: notice changes to the task file by its (inode, mtime, size), or on SIGHUP.

Editors replace files (write a temporary file, rename it) or delete and recreate them, so we
watch the path with stat(2), not an open descriptor. The check is one stat call; the loop
makes it every POLL_INTERVAL seconds, which keeps "changes are picked up within 2 s"
(README.md#what-serve-guarantees, hot reload).

A change is read once it has settled: when a poll finds the file changed, the loop looks again
SETTLE seconds later and reads the file only if it is still the same. A burst of saves (an
editor's several writes, a script's loop) is then one reload of the final text, and a file
caught half-written is not reported as invalid. SIGHUP reads the file at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from cronctl import taskfile
from cronctl.errors import TaskFileError
from cronctl.taskfile import Stamp, stamp_of

log = logging.getLogger("cronctl.serve")

# One stat() of the task file every 1.5 s while nothing is due: edits are picked up within
# 2 s (POLL_INTERVAL + SETTLE) without waking the loop every second.
POLL_INTERVAL = 1.5
SETTLE = 0.3
"""Seconds a changed task file must stay unchanged before it is read."""
_NOTHING = "nothing"  # no change waiting to settle


load_regular = functools.partial(taskfile.load, regular_only=True)
"""How the watcher reads the task file: a FIFO or a device in its place is refused, not read."""


class TaskFileWatcher:
    """Returns a freshly loaded TaskFile when the file changed and is valid.

    An invalid edit is logged once (not at every poll) and the last good tasks stay in force.
    A task file that disappears is logged once and the last good tasks stay too: editors that
    delete and recreate the file, or a half-finished `mv`, would otherwise stop every task for a
    moment. To clear all tasks, empty the file instead of deleting it.
    """

    def __init__(
        self,
        path: Path,
        *,
        stamp: Stamp | None,
        loader: Callable[[Path], taskfile.TaskFile] = load_regular,
    ) -> None:
        self.path = path
        self.loader = loader
        self._stamp = stamp
        self._pending: Stamp | None | str = _NOTHING
        self._reported: Stamp | None | str = "none"

    @property
    def settling(self) -> bool:
        """True when a change was seen and waits to settle: poll again after SETTLE seconds."""
        return self._pending != _NOTHING

    def poll(self, *, force: bool = False) -> taskfile.TaskFile | None:
        current = stamp_of(self.path)
        if not force:
            if current == self._stamp:
                self._pending = _NOTHING
                return None
            if current != self._pending:  # changed since the last look: let it settle
                self._pending = current
                return None
        self._pending = _NOTHING
        self._stamp = current
        if current is None:
            if self._reported != current or force:
                log.warning(
                    "task file %s is gone; the tasks loaded from it keep running"
                    " (empty the file to clear them)",
                    self.path,
                )
                self._reported = current
            return None
        try:
            loaded = self.loader(self.path)
        except TaskFileError as exc:
            self._report(current, force, exc.message + (f" ({exc.hint})" if exc.hint else ""))
            return None
        except Exception as exc:
            # The loader raises TaskFileError for anything a file holds (the fuzz tests of
            # cronctl.taskfile hold it to that); were a file to find a bug in it, serve still
            # keeps running its last good tasks: nothing in the task file ends serve.
            self._report(current, force, f"{self.path}: cannot be loaded: {exc!r}")
            return None
        self._reported = "none"
        return loaded

    def _report(self, current: Stamp | None, force: bool, why: str) -> None:
        """Log why a change was not loaded: once per version of the file (or on SIGHUP)."""
        if self._reported != current or force:
            log.error("task file not reloaded, the last good tasks keep running: %s", why)
            self._reported = current
