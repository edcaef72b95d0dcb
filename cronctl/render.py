"""Rendering in one place: Rich tables on a terminal, stable plain text when piped, JSON.

Plain text is tab-separated with a header line, so `cut -f` and `awk -F'\\t'` work on it.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text

from cronctl import timefmt
from cronctl.cells import exit_text, percent, sparkline, status_strip, status_style
from cronctl.columns import Column, fit_columns
from cronctl.model import Task, show_lines
from cronctl.records import FINISHED_STATUSES, Run

if TYPE_CHECKING:
    from rich.console import Console

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Return `text` with control characters other than tab and newline shown as `\\xNN`.

    Values from the task file, job output and error messages are shown through this, so none
    of them can colour, retitle or clear the user's terminal, and piped output stays text.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """Return `text` as printable() does, with tab and newline too shown as `\\t` and `\\n`:
    for a value on a line of its own (`show`'s settings), which must stay one line however it
    is piped or cut (README.md#a-five-minute-tour: plain text is one line a row)."""
    return printable(text).replace("\t", "\\t").replace("\n", "\\n")


def is_terminal(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `stream` gets the terminal form (Rich tables, colour) rather than plain text.

    Rich's own rule (TTY_COMPATIBLE=0/1 first, then a non-empty FORCE_COLOR, then isatty),
    decided here so that plain output never has to load Rich's console module, and handed to
    the console when one is made, so that both always agree.
    """
    compatible = environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force_color = environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def to_devnull(stream: IO[str]) -> None:
    """Point `stream`'s file descriptor at /dev/null, when it has one.

    For a stream whose reader went away: what is still buffered, and whatever is written
    later, then goes nowhere instead of failing again, and the interpreter's flush at exit
    prints no "Exception ignored ... BrokenPipeError".
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _console(*, stderr: bool, terminal: bool, no_color: bool) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away (`cronctl show x | head -1`). Rich would exit with status
            1; we point the stream at /dev/null and let the command's wrapper end quietly."""
            self.quiet = True
            to_devnull(self.file)
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    # NO_COLOR / --no-color: no escape sequences at all (not even bold), only text. Emoji
    # codes stay as typed: ":warning:" in a job's output is not ours to turn into a picture.
    plain: dict[str, Any] = {"color_system": None} if no_color else {}
    return _Console(
        stderr=stderr,
        force_terminal=terminal,
        highlight=False,
        emoji=False,
        no_color=no_color or None,
        soft_wrap=True,
        **plain,
    )


# ---------------------------------------------------------------------------------------------


class Renderer:
    """The two streams (stdout for results, stderr for messages) and every view.

    A stream that is not a terminal gets plain text written straight to it; the Rich console
    of a stream is made the first time terminal output needs it (loading Rich's console
    module would add 6 ms to every piped `cronctl list`).
    """

    def __init__(self, *, no_color: bool = False) -> None:
        self.no_color = no_color

    @property
    def stdout(self) -> IO[str]:
        return sys.stdout  # looked up each time, as Rich does, so tests may swap it

    @property
    def stderr(self) -> IO[str]:
        return sys.stderr

    @property
    def rich(self) -> bool:
        return is_terminal(self.stdout)

    @cached_property
    def out(self) -> Console:
        return _console(stderr=False, terminal=self.rich, no_color=self.no_color)

    @cached_property
    def err(self) -> Console:
        return _console(stderr=True, terminal=is_terminal(self.stderr), no_color=self.no_color)

    # -- primitives ------------------------------------------------------------------------

    def json(self, data: Any) -> None:
        # json (1.3 ms) only for --json (docs/architecture.md#start-up-lazy-imports)
        from cronctl.jsontext import indented_json

        self.write(indented_json(data) + "\n")

    def write(self, text: str) -> None:
        """Write text to stdout as it is (already plain: JSON, logs, metrics)."""
        self.stdout.write(text)
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        if self.rich:  # wrapped at word boundaries in the terminal's width
            self.out.print(Text(printable(text)), soft_wrap=False)
        else:
            self.write(printable(text) + "\n")

    def note(self, text: str) -> None:
        """A message for the person, on stderr so that stdout stays data."""
        self._message(Text(printable(text)))

    def warning(self, text: str) -> None:
        self._message(Text("warning: ", style="yellow") + Text(printable(text)))

    def error(self, message: str, hint: str | None = None) -> None:
        self._message(Text("error: ", style="bold red") + Text(printable(message)))
        if hint:
            self._message(Text("hint: ", style="dim") + Text(printable(hint)))

    def _message(self, text: Text) -> None:
        if is_terminal(self.stderr):
            self.err.print(text)
        else:
            self.stderr.write(text.plain + "\n")
            self.stderr.flush()

    def table(
        self,
        headers: Sequence[str | Column],
        rows: Sequence[Sequence[str | Text]],
        title: str | None = None,
    ) -> None:
        """Plain: every column, tab-separated, after a header line. Terminal: one line a row
        in the terminal's width, the columns of `Column` rank dropped or shortened with an
        ellipsis as `fit_columns` decides (plain strings for headers: rank by position, each
        column shortenable to 10)."""
        columns = [
            h if isinstance(h, Column) else Column(h, rank, shrink_to=10)
            for rank, h in enumerate(headers)
        ]
        cells = [[_cell_text(c) for c in row] for row in rows]
        if not self.rich:
            lines = ["\t".join(c.header.lower().replace(" ", "_") for c in columns)]
            lines += ["\t".join(row) for row in cells]
            self.write("\n".join(lines) + "\n")
            return
        natural = [
            max([cell_len(c.header)] + [cell_len(row[i]) for row in cells])
            for i, c in enumerate(columns)
        ]
        widths = fit_columns(columns, natural, self.out.size.width)
        # Here: piped output and serve never draw a table (0.9 MB and 3.7 ms of every start).
        from rich.table import Table

        table = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
        for i in sorted(widths):
            table.add_column(columns[i].header, width=widths[i], no_wrap=True, overflow="ellipsis")
        for row, texts in zip(rows, cells, strict=True):
            shown = []
            for i in sorted(widths):
                cell = row[i]
                text = cell.copy() if isinstance(cell, Text) else Text(texts[i])
                text.truncate(widths[i], overflow="ellipsis")
                shown.append(text)
            table.add_row(*shown)
        self.out.print(table)

    def pairs(self, items: Sequence[tuple[str, str]]) -> None:
        """`key  value` lines; on a terminal a long value wraps at word boundaries under
        itself, in the terminal's width."""
        width = max((len(k) for k, _ in items), default=0)
        if not self.rich:
            self.write("".join(f"{key:<{width}}  {one_line(value)}\n" for key, value in items))
            return
        indent = width + 2
        room = max(20, self.out.size.width - indent)
        for key, value in items:
            pieces = Text(one_line(value)).wrap(self.out, room, overflow="fold") or [Text("")]
            heads = [Text(f"{key:<{width}}  ", style="bold")] + [Text(" " * indent)] * len(pieces)
            for head, piece in zip(heads, pieces, strict=False):
                piece.rstrip()
                self.out.print(head + piece, soft_wrap=True)

    # -- views -----------------------------------------------------------------------------

    def status_text(self, status: str) -> Text:
        return Text(status, style=status_style(status))

    def moment(self, moment: datetime | None, zone: str, now: datetime, seconds: bool) -> str:
        """A timestamp as a table cell: short on a terminal, ISO 8601 when piped."""
        if self.rich:
            return timefmt.short(moment, zone, now, seconds)
        return timefmt.iso_seconds(moment, zone)

    def tasks(self, rows: Sequence[Any], now: datetime) -> None:
        if not rows and self.rich:
            self.note("No tasks yet. Add one: cronctl add NAME SCHEDULE COMMAND")
            return
        if self.rich:
            self.table(TASK_COLUMNS, [self._task_cells(row, now) for row in rows])
            return
        # Plain: the same columns, times as ISO 8601, and the last run's status apart. Tasks
        # of one schedule share their next run (overview.task_rows): it is written once a zone.
        stamps: dict[tuple[datetime | None, str], str] = {}
        body: list[list[str]] = []
        for row in rows:
            task, last = row.task, row.stats.last
            if task.enabled:
                moment = (row.next_run, task.timezone)
                next_run = stamps.get(moment)
                if next_run is None:
                    next_run = stamps[moment] = timefmt.iso_seconds(*moment)
            else:
                next_run = "-"
            body.append(
                [
                    task.name,
                    task.schedule,
                    row.summary,
                    task.timezone,
                    next_run,
                    timefmt.iso_seconds(last.started_at, task.timezone) if last else "-",
                    percent(row.stats.success_rate),
                    "yes" if task.enabled else "no",
                    last.status if last else "-",
                ]
            )
        self._plain_table([*(c.header for c in TASK_COLUMNS), "Last status"], body)

    def _plain_table(self, headers: Sequence[str], rows: list[list[str]]) -> None:
        """`table`'s plain output of rows of strings, in one write: a row whose cells are all
        printable is joined as it is (`_cell_text` of each of 900,000 cells was a tenth of
        `list` of 100,000 tasks)."""
        lines = ["\t".join(header.lower().replace(" ", "_") for header in headers)]
        for row in rows:
            if all(map(str.isprintable, row)):
                lines.append("\t".join(row))
            else:
                lines.append("\t".join(map(_cell_text, row)))
        self.write("\n".join(lines) + "\n")

    def _task_cells(self, row: Any, now: datetime) -> list[str | Text]:
        task, stats = row.task, row.stats
        last: Text | str = "-"
        if stats.last:
            last = self.status_text(stats.last.status) + Text(
                f" {timefmt.relative(stats.last.started_at, now)}"
            )
        return [
            task.name,
            task.schedule,
            row.summary,
            task.timezone,
            timefmt.relative(row.next_run, now) if task.enabled else "disabled",
            last,
            percent(stats.success_rate),
            "yes" if task.enabled else Text("no", style="dim"),
        ]

    def task_settings(self, task: Task) -> list[tuple[str, str]]:
        """The settings lines of `show` and `add`: the name, then the keys (model.keys)."""
        return [("name", task.name), *show_lines(task)]

    def upcoming(
        self, moments: Sequence[datetime], zone: str, now: datetime, seconds: bool
    ) -> None:
        """The `next runs:` lines: `2026-12-05 14:08 UTC  (in 5m)` on a terminal, ISO 8601
        when piped."""
        for moment in moments:
            if self.rich:
                when = timefmt.stamp(moment, zone, seconds)
                self.line(f"  {when}  ({timefmt.relative(moment, now)})")
            else:
                self.line(f"  {timefmt.iso_seconds(moment, zone)}")

    def task_added(
        self, task: Task, upcoming: Sequence[datetime], replaced: bool, now: datetime
    ) -> None:
        self.note(f"{'Replaced' if replaced else 'Added'} task '{task.name}'.")
        self.pairs(self.task_settings(task))
        self.line("next runs:")
        self.upcoming(upcoming, task.timezone, now, _seconds(task))
        if not task.enabled:
            self.line("  (the task is disabled)")

    def task_detail(self, detail: Any, now: datetime) -> None:
        task, stats = detail.row.task, detail.row.stats
        duration_ms = timefmt.duration_ms
        # The rate is of the finished runs among the last 50: "of 8 runs" while there are fewer.
        finished = timefmt.counted(sum(s in FINISHED_STATUSES for s in stats.recent), "run")
        last = "the last " if len(stats.recent) >= 50 else ""
        success = (
            "-"
            if stats.success_rate is None
            else f"{percent(stats.success_rate)} of {last}{finished}"
        )
        self.pairs(
            [
                *self.task_settings(task),
                ("means", detail.description),
                ("success", success),
                ("duration", f"p50 {duration_ms(stats.p50_ms)}, p95 {duration_ms(stats.p95_ms)}"),
                ("recent", status_strip(stats.recent[:30]) or "-"),
                ("durations", sparkline(detail.durations_ms) or "-"),
            ]
        )
        self.line("next runs:")
        self.upcoming(detail.upcoming, task.timezone, now, _seconds(task))
        if not detail.upcoming:
            self.line("  none (disabled)" if not task.enabled else "  none")
        self.line("last runs:")
        if detail.runs:
            # One task's runs: its name on every row would say nothing (on a terminal).
            self.runs(detail.runs, now, lambda _name: task, one_task=True)
        else:
            self.line("  none yet")

    def runs(
        self,
        runs: Sequence[Run],
        now: datetime,
        task_of: Callable[[str], Task | None],
        one_task: bool = False,
    ) -> None:
        """The runs table of `history` and `show`. `task_of` gives a run's task (its zone, and
        whether its times need seconds), None for a task no longer in the file (UTC)."""
        body: list[list[str | Text]] = []
        for run in runs:
            task = task_of(run.task)
            zone = task.timezone if task else "UTC"
            seconds = not self.rich or (task is not None and _seconds(task))
            body.append(
                [
                    str(run.id),
                    run.task,
                    run.trigger,
                    str(run.attempt),
                    self.moment(run.scheduled_at, zone, now, seconds),
                    self.moment(run.started_at, zone, now, seconds),
                    timefmt.duration_ms(run.duration_ms),
                    self.status_text(run.status),
                    exit_text(run),
                ]
            )
        columns = RUN_COLUMNS
        if len({run.host for run in runs} - {None}) > 1:
            # Runs of several hosts (a shared history, README.md#more-than-one-machine): which
            # ran each. One machine's history shows no column that would say the same.
            columns = [*RUN_COLUMNS, HOST_COLUMN]
            for row, run in zip(body, runs, strict=True):
                row.append(run.host or "-")
        if not self.rich:
            self.table([c.header for c in columns], body)
            return
        if one_task:
            self.table(columns[:1] + columns[2:], [row[:1] + row[2:] for row in body])
        else:
            self.table(columns, body)

    def findings(self, findings: Sequence[Any]) -> None:
        for finding in findings:
            subject = f"task '{finding.task}': " if finding.task else ""
            if finding.level == "error":
                self.error(subject + finding.message)
            else:
                self.warning(subject + finding.message)


# Terminal tables' column ranks (0 stays longest): what a person looks for first stays.
TASK_COLUMNS = [
    Column("Name", 0, shrink_to=12),
    Column("Schedule", 4),  # whole or not at all: a cut `*/5 * * *…` says nothing
    Column("Means", 5, shrink_to=12),
    Column("Zone", 6, shrink_to=8),
    Column("Next run", 1),
    Column("Last run", 2),
    Column("Success", 3),
    Column("Enabled", 7),  # `Next run` says `disabled` too: the first to go
]
RUN_COLUMNS = [
    Column("ID", 2),
    Column("Task", 0, shrink_to=10),
    Column("Trigger", 6),
    Column("Attempt", 7),
    Column("Scheduled", 5),
    Column("Started", 1),
    Column("Duration", 4),
    Column("Status", 0),
    Column("Exit", 3),
]
HOST_COLUMN = Column("Host", 8, shrink_to=8)  # the first to go at 80 columns


def _seconds(task: Task) -> bool:
    """Whether the task's times are shown with seconds (`@every 90s`: slots off the minute)."""
    try:
        return not task.parsed_schedule().on_whole_minutes
    except ValueError:
        return True


def _cell_text(cell: str | Text) -> str:
    """A cell as one line of printable text (a tab or a newline becomes a space)."""
    if type(cell) is str and cell.isprintable():
        return cell  # most cells: 900,000 of them in `list` of 100,000 tasks
    text = printable(cell.plain if isinstance(cell, Text) else str(cell))
    return text.replace("\t", " ").replace("\n", " ")
