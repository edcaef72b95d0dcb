"""Exporting tasks to other schedulers: crontab lines, systemd timers, Kubernetes CronJobs.

Pure functions from `Task` objects to text. Each format says, in the text it writes, what it
could not express; a task it cannot express at all is left out and reported in `skipped`.

This module holds what the formats share: cron fields rewritten for engines that do not know
cronctl's extensions (`H`, names, day-of-week 7), and `@every` intervals that a cron line can
express exactly.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cronctl.errors import UsageError

if TYPE_CHECKING:
    from cronctl.schedule.fields import Field, FieldKind
    from cronctl.schedule.schedule import Schedule


def one_line(text: str) -> str:
    """Return `text` fit for one line of a comment or a message: runs of whitespace (newlines
    included) become one space, and other control characters (and Unicode's line and
    paragraph separators) are written as `\\xNN` / `\\uNNNN`, so nothing the task file says
    can start a line of its own."""
    out = []
    for char in " ".join(text.split()):
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\x{code:02x}")
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


class NotExportable(Exception):
    """This task (or this feature of it) has no equivalent in the target format. The reason
    is made one line (`one_line`): it is written into comments and warnings."""

    def __init__(self, reason: str) -> None:
        reason = one_line(reason)
        super().__init__(reason)
        self.reason = reason


def refuse_control_characters(key: str, value: str, target: str) -> None:
    """Raise NotExportable when `value` holds a character no line of `target` can carry:
    a line break (\\n, \\r), NUL, or another control character."""
    if "\n" in value or "\r" in value:
        raise NotExportable(f"{key} spans several lines, and {target} is a single line")
    if any(ord(char) < 0x20 and char != "\t" or ord(char) == 0x7F for char in value):
        raise NotExportable(f"{key} holds a control character, which {target} cannot carry")


@dataclass(frozen=True)
class Skipped:
    task: str
    reason: str


@dataclass(frozen=True)
class OutputFile:
    name: str
    text: str


@dataclass
class Export:
    """The result of one export: files (one for crontab and k8s), and the tasks left out."""

    files: list[OutputFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Cron fields


BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_WORD = re.compile(r"[A-Za-z]+")


def _name_to_number(kind: FieldKind, word: str) -> str:
    upper = word.upper()
    if upper in kind.names:
        return str(kind.low + kind.names.index(upper))
    return word


def _names_as_numbers(kind: FieldKind, item: str) -> str:
    return _WORD.sub(lambda match: _name_to_number(kind, match.group(0)), item)


_TO_LAST = re.compile(r"-L(?=/|$)", re.IGNORECASE)


def day_form(fld: Field) -> str | None:
    """Name the first day form of `fld` that Vixie cron lacks (README.md#schedules), or None:
    `L`, `L-n`, `nW`, `LW`, `DOW#N`, `DOWL`. (`a-L` is Vixie's a-31.)"""
    forms = fld.month_days
    if fld.last_day:
        return "'L' (last day of the month)"
    if forms.before_last:
        return "'L-n' (n days before the last day of the month)"
    if 0 in forms.nearest_weekday_before_last:
        return "'LW' (last weekday of the month)"
    if forms.nearest_weekday_before_last:
        return "'L-nW' (weekday nearest n days before the last day of the month)"
    if forms.nearest_weekday:
        return "'nW' (weekday nearest day n of the month)"
    if fld.nth_weekdays:
        return "'DOW#N' (nth weekday of the month)"
    if fld.last_weekdays:
        return "'DOWL' (last given weekday of the month)"
    return None


def vixie_fields(schedule: Schedule) -> tuple[str, ...]:
    """Return the five fields of a cron schedule as plain Vixie cron understands them.

    Names become numbers, each `H` item becomes the values it resolved to for this task;
    everything else is kept as written, so a field that starts with `*` still does (that
    decides how cron combines day-of-month and day-of-week). `L`, `L-n`, `nW`, `LW`, `DOW#N`
    and `DOWL` have no Vixie equivalent, and neither has a schedule that is not a cron
    expression: NotExportable.
    """
    # Imported here (docs/architecture.md#start-up-lazy-imports): `cronctl service` loads this
    # package for its quoting alone (the schedule package costs 15 ms), and whoever
    # parsed `schedule` has loaded the schedule package already.
    from cronctl.schedule.fields import KINDS

    cron = schedule.cron
    if cron is None:
        raise NotExportable(f"'{schedule.text}' is not a cron expression")
    fields = []
    for kind, fld in zip(KINDS, cron.fields, strict=True):
        form = day_form(fld)
        if form is not None:
            raise NotExportable(f"{form} is not crontab syntax")
        hashed = dict(fld.hashed)
        items = []
        for item in fld.text.split(","):
            if item in hashed:
                items.append(",".join(str(v) for v in hashed[item]))
            else:
                # `a-L` is a-31 in cron, which runs a day only when the month has it.
                items.append(_names_as_numbers(kind, _TO_LAST.sub("-31", item)))
        fields.append(",".join(items))
    return tuple(fields)


def compress(values: Iterable[int], low: int, high: int, *, sep: str = "-", width: int = 0) -> str:
    """Return `values` as a short cron-style list: `*`, `a-b/s`, `a-b`, `a,b` (`sep` for ranges)."""
    ordered = sorted(set(values))
    if not ordered:
        raise ValueError("no values")
    if ordered == list(range(low, high + 1)):
        return "*"

    def num(v: int) -> str:
        return str(v).zfill(width)

    # One arithmetic progression of 3 or more values: */s, a/s (to the end), a-b/s.
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], ordered[-1] + 1, step)):
            if ordered[-1] + step > high:
                if sep == "-" and ordered[0] == low:
                    return f"*/{step}"
                if sep == "..":  # systemd: a/s repeats up to the end of the field
                    return f"{num(ordered[0])}/{step}"
            return f"{num(ordered[0])}{sep}{num(ordered[-1])}/{step}"
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start >= 2:
            parts.append(f"{num(start)}{sep}{num(previous)}")
        else:
            parts.extend(num(v) for v in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


# @every's units that a calendar can step through: (unit, its seconds, how many make the next).
_EVERY_UNITS = (("second", 1, 60), ("minute", 60, 60), ("hour", 3600, 24))


def every_step(seconds: int) -> tuple[str, int] | None:
    """Return (unit, n) when `@every seconds` is a calendar step of n seconds, minutes or
    hours (n divides the next unit), ("day", 1) for a day, else None.

    `@every` slots are whole multiples of the interval since the epoch, which is midnight UTC,
    so a step that divides the next unit evenly lands on the same instants as a calendar step
    in UTC (`*/n` in cron, `00/n` in systemd).
    """
    for unit, size, per_next in _EVERY_UNITS:
        if seconds % size == 0 and seconds < size * per_next:
            steps = seconds // size
            return (unit, steps) if per_next % steps == 0 else None
    return ("day", 1) if seconds == 86400 else None


def every_as_cron(seconds: int) -> str | None:
    """Return the 5-field cron line (in UTC) with exactly the slots of `@every seconds`, or None
    (cron's finest step is a minute)."""
    step = every_step(seconds)
    if step is None or step[0] == "second":
        return None
    unit, n = step
    if unit == "minute":
        return "* * * * *" if n == 1 else f"*/{n} * * * *"
    if unit == "hour":
        return "0 * * * *" if n == 1 else f"0 */{n} * * *"
    return "0 0 * * *"


# ---------------------------------------------------------------------------------------------
# Writing the files

EXPORT_MODE = 0o600
"""Exported files are private like the task file they come from: units and crontab lines may
carry `env` values (tokens, passwords) and commands."""


def replace_file(target: Path, text: str, mode: int) -> None:
    """Write `text` to `target` whole: into a new temporary file beside it (created with
    O_EXCL, so through no link), synced, given `mode`, then renamed over `target`.

    The rename replaces whatever has the name, a symbolic link included, and never writes
    into what a link points at. Before (`export --output`): an existing link was followed and
    its target overwritten."""
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_files(folder: Path, files: Sequence[OutputFile]) -> None:
    """Write the files of an export into `folder` (created if missing), each 0600 and through
    no symbolic link (`replace_file`); UsageError when the folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for item in files:
            replace_file(folder / item.name, item.text, EXPORT_MODE)
    except OSError as exc:
        raise UsageError(f"cannot write to {folder}: {exc.strerror or exc}") from None


__all__ = [
    "BOUNDS",
    "EXPORT_MODE",
    "Export",
    "NotExportable",
    "OutputFile",
    "Skipped",
    "compress",
    "every_as_cron",
    "every_step",
    "one_line",
    "refuse_control_characters",
    "replace_file",
    "vixie_fields",
    "write_files",
]


_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape_quoted(text: str, needs_code: Callable[[int], bool], code_format: str) -> str:
    """Return `text` escaped for a double-quoted string (systemd's C-style, YAML's): backslash,
    quote, newline, tab and return as short escapes; each other character that `needs_code`
    picks as its code point written with `code_format` (e.g. "\\x{:02x}")."""
    out = []
    for char in text:
        short = _SHORT_ESCAPES.get(char)
        if short is not None:
            out.append(short)
        elif needs_code(ord(char)):
            out.append(code_format.format(ord(char)))
        else:
            out.append(char)
    return "".join(out)
