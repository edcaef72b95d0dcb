"""`cronctl top`'s frame drawn: lines for a terminal of a given size, or plain text when piped
(README.md#watching-live).

On a terminal every line is cut to the width (never wrapped) and the sections share the
height by priority: serve's line always, then the jobs running now, the failures of the last
day, the next runs, the recent outcomes. Each section first gets its title and up to
`FIRST_ROWS` rows, in that order, as far as the height goes (a section that does not get its
title is left out, and so are those after it); the rows left are then given in the same
order. A section cut short says how many rows it hides in its last line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text

from cronctl import timefmt
from cronctl.cells import exit_text, status_style
from cronctl.records import FAILURE_STATUSES, Status, safe_text
from cronctl.render import one_line
from cronctl.top import TaskChart, TopFrame
from cronctl.upcoming import Fire

FIRST_ROWS = 3
UNICODE_MARKS = {"succeeded": "✓", "failure": "✗", "running": "…", "other": "·"}
ASCII_MARKS = {"succeeded": "+", "failure": "x", "running": ">", "other": "."}
UNICODE_SPARK = "▁▂▃▄▅▆▇█"
ASCII_SPARK = "_.-:=+*#"
NAME_WIDTH = (8, 24)  # the task column: as wide as the longest name shown, within these


@dataclass
class Section:
    title: str
    rows: list[Text] = field(default_factory=list)
    empty: str = "none"
    endless: bool = False  # the rows go on (the next runs): no count of those not shown


@dataclass(frozen=True)
class Glyphs:
    marks: dict[str, str]
    spark: str
    dash: str  # between the two ends of a jitter window
    ellipsis: str

    @classmethod
    def for_encoding(cls, encoding: str | None) -> Glyphs:
        """Unicode marks for a UTF-8 terminal, ASCII ones for any other encoding."""
        if encoding and encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig"):
            return cls(UNICODE_MARKS, UNICODE_SPARK, "–", "…")
        return cls(ASCII_MARKS, ASCII_SPARK, "-", "...")


def mark_of(status: Status, glyphs: Glyphs) -> tuple[str, str]:
    if status == Status.SUCCEEDED:
        return glyphs.marks["succeeded"], "green"
    if status in FAILURE_STATUSES:
        return glyphs.marks["failure"], "bold red"
    if status == Status.RUNNING:
        return glyphs.marks["running"], "cyan"
    return glyphs.marks["other"], "yellow"


def sparkline(values: Sequence[int], spark: str) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    step = (high - low) or 1
    top = len(spark) - 1
    return "".join(spark[min(top, round((v - low) / step * top))] for v in values)


# --------------------------------------------------------------------------------- sections


def _name(name: str, width: int, glyphs: Glyphs) -> Text:
    """A task's name in `width` cells: padded, or cut with a one-cell mark."""
    shown = Text(one_line(name))
    if shown.cell_len > width:
        shown.truncate(width - 1)
        shown.append(glyphs.ellipsis if len(glyphs.ellipsis) == 1 else "~")
    shown.truncate(width, pad=True)
    return shown


def _name_width(names: Sequence[str]) -> int:
    low, high = NAME_WIDTH
    return max(low, min(high, max((cell_len(n) for n in names), default=low)))


def serve_line(frame: TopFrame, rich: bool) -> Text:
    serve, now = frame.serve, frame.now
    if serve.running:
        text = Text("serve ", style="bold") + Text("running", style="green")
        text.append(
            f" pid {serve.pid}, up {timefmt.span(serve.uptime_seconds or 0)},"
            f" heartbeat {timefmt.span(serve.heartbeat_age_seconds or 0)} ago"
        )
        return text
    text = Text("serve ", style="bold") + Text("not running", style="bold red")
    if not serve.known:
        return text + Text(" (never ran with this database)")
    when = serve.stopped_at or serve.heartbeat_at
    said = timefmt.relative(when, now) if rich else f"at {timefmt.iso_seconds(when)}"
    what = "stopped" if serve.stopped_at is not None else "last heartbeat"
    return text + Text(f" ({what} {said}; was pid {serve.pid})")


def running_section(frame: TopFrame, glyphs: Glyphs) -> Section:
    section = Section(f"running now ({len(frame.running)})")
    names = _name_width([job.run.task for job in frame.running])
    for job in frame.running:
        row = Text("  ") + _name(job.run.task, names, glyphs)
        row.append(f" {timefmt.span(job.elapsed_seconds):>7}  ", style="cyan")
        if job.last_line:
            row.append(one_line(safe_text(job.last_line.encode())), style="dim")
        section.rows.append(row)
    return section


def failures_section(frame: TopFrame, glyphs: Glyphs) -> Section:
    counted = [g for g in frame.failures if g.counted]
    section = Section(f"failures in the last day ({timefmt.counted(len(counted), 'task')})")
    names = _name_width([g.task for g in counted])
    for group in counted:
        run = group.last.run
        zone = frame.zones.get(run.task, "UTC")
        row = Text("  ") + _name(group.task, names, glyphs)
        row.append(f" {group.last_hour:>3} in 1h {group.last_day:>4} in 1d  ")
        row.append(timefmt.short(run.started_at, zone, frame.now) + " ")
        row.append(run.status, style=status_style(run.status))
        row.append(f" {exit_text(run)}  ")
        row.append(group.last.stderr_first_line or run.reason or "", style="dim")
        section.rows.append(row)
    return section


def fire_when(fire: Fire, now: datetime, dash: str, machine_zone: str) -> str:
    """`14:00`, `Dec 6 14:00`, `14:00–14:05` with a jitter, `14:00 EST` in a zone other than
    the machine's; seconds for a schedule off the minute."""
    zone = fire.timezone
    seconds = not fire.task.parsed_schedule().on_whole_minutes
    clock = "%H:%M:%S" if seconds else "%H:%M"
    start, today = timefmt.local(fire.at, zone), timefmt.local(now, zone)
    if start.date() == today.date():
        text = start.strftime(clock)
    elif start.year == today.year:
        text = f"{start.strftime('%b')} {start.day} {start.strftime(clock)}"
    else:
        text = start.strftime("%Y-%m-%d " + clock)
    if fire.window_end is not None:
        end = timefmt.local(fire.window_end, zone)
        text += dash + end.strftime(clock if end.date() == start.date() else "%b %d " + clock)
    here = timefmt.local(fire.at, machine_zone)
    if (start.utcoffset(), start.tzname()) != (here.utcoffset(), here.tzname()):
        text += f" {start.tzname()}"
    return text


def next_section(frame: TopFrame, glyphs: Glyphs, machine_zone: str) -> Section:
    section = Section("next runs", endless=True)
    whens = [fire_when(f, frame.now, glyphs.dash, machine_zone) for f in frame.next_runs]
    wide = max((cell_len(w) for w in whens), default=0)
    names = _name_width([f.task.name for f in frame.next_runs])
    for fire, when in zip(frame.next_runs, whens, strict=True):
        row = Text(f"  {when:<{wide}}  ")
        row.append(f"{timefmt.relative(fire.at, frame.now):>10}  ", style="cyan")
        row += _name(fire.task.name, names, glyphs)
        row.append(f"  {fire.summary}", style="dim")
        section.rows.append(row)
    return section


def chart_row(chart: TaskChart, names: int, marks: int, width: int, glyphs: Glyphs) -> Text:
    """`  name  ✓✓✗✓  ▁▃▇▂  p50 3.1s`: `marks` cells of outcomes, then the durations in the
    room left (the p50 keeps 12 cells), the newest at the right of both."""
    row = Text("  ") + _name(chart.task, names, glyphs) + Text("  ")
    shown = chart.statuses[max(0, len(chart.statuses) - marks) :]
    for status in shown:
        mark, style = mark_of(status, glyphs)
        row.append(mark, style=style)
    row.append(" " * (marks - len(shown) + 2))
    durations = chart.durations_ms[-max(1, width - row.cell_len - 12) :]
    row.append(sparkline(durations, glyphs.spark), style="blue")
    if chart.durations_ms:
        ordered = sorted(chart.durations_ms)
        row.append(f"  p50 {timefmt.duration_ms(ordered[len(ordered) // 2])}", style="dim")
    return row


def charts_section(frame: TopFrame, width: int, glyphs: Glyphs) -> Section:
    section = Section("recent outcomes and durations (oldest to newest)", empty="no runs yet")
    names = _name_width([c.task for c in frame.charts])
    room = max(4, width - names - 6)
    marks = min(room // 2, max((len(c.statuses) for c in frame.charts), default=0))
    section.rows = [chart_row(c, names, marks, width, glyphs) for c in frame.charts]
    return section


# ----------------------------------------------------------------------------------- layout


def _share(sections: Sequence[Section], room: int) -> list[int]:
    """How many rows each section shows (-1: left out) within `room` lines, by priority."""
    shown = [-1] * len(sections)
    for i, section in enumerate(sections):
        if room < 1:
            break
        room -= 1  # the title (with `none` on it when there are no rows)
        shown[i] = min(len(section.rows), FIRST_ROWS, room)
        room -= shown[i]
    # The rows left go one a section in turn, in the same order: a long list of next runs
    # does not take every line from the outcomes below it.
    wanting = [i for i, section in enumerate(sections) if 0 <= shown[i] < len(section.rows)]
    while room > 0 and wanting:
        for i in list(wanting):
            if room == 0:
                break
            shown[i] += 1
            room -= 1
            if shown[i] == len(sections[i].rows):
                wanting.remove(i)
    return shown


def _section_lines(section: Section, count: int, glyphs: Glyphs) -> list[Text]:
    title = Text(section.title, style="bold reverse")
    if not section.rows:
        return [title + Text(f"  {section.empty}")]
    if count == 0:
        return [title + Text(f"  {len(section.rows)} not shown", style="dim")]
    rows = section.rows[:count]
    hidden = len(section.rows) - count
    if hidden > 0 and not section.endless:
        rows[-1] = Text(f"  {glyphs.ellipsis} and {hidden + 1} more", style="dim")
    return [title, *rows]


def terminal_lines(
    frame: TopFrame, width: int, height: int, encoding: str | None, machine_zone: str
) -> list[Text]:
    """The frame as at most `height` lines of at most `width` cells."""
    glyphs = Glyphs.for_encoding(encoding)
    # serve's state first: on a narrow terminal it is what stays of the line.
    head = serve_line(frame, True) + Text(
        f"  {timefmt.counted(frame.task_count, 'task')}  "
        + timefmt.local(frame.now, machine_zone).strftime("%H:%M:%S")
    )
    lines = [head]
    if frame.task_file_error:
        lines.append(Text("task file invalid: ", style="bold red") + Text(frame.task_file_error))
    sections = [
        running_section(frame, glyphs),
        failures_section(frame, glyphs),
        next_section(frame, glyphs, machine_zone),
        charts_section(frame, width, glyphs),
    ]
    footer = Text("q quits", style="dim")
    room = height - len(lines) - 1
    for section, count in zip(sections, _share(sections, room), strict=True):
        if count >= 0:
            lines += _section_lines(section, count, glyphs)
    lines = lines[: max(1, height - 1)] + [footer]
    for line in lines:
        _cut(line, width, glyphs.ellipsis)
    return lines[:height]


def _cut(line: Text, width: int, ellipsis: str) -> None:
    """Cut `line` to `width` cells in place, ending in `ellipsis` when it was longer."""
    line.no_wrap = True
    line.rstrip()
    if line.cell_len <= width:
        return
    line.truncate(max(0, width - cell_len(ellipsis)))
    line.append(ellipsis[:width])


# ------------------------------------------------------------------------------------ plain


def plain_text(frame: TopFrame, encoding: str | None) -> str:
    """The whole frame for a pipe: stable lines, ISO 8601 times, tab-separated rows under a
    header line per section, nothing cut."""
    glyphs = Glyphs.for_encoding(encoding)
    iso = timefmt.iso_seconds
    out = [f"time\t{iso(frame.now)}", f"tasks\t{frame.task_count}"]
    out.append("serve\t" + serve_line(frame, False).plain.removeprefix("serve "))
    if frame.task_file_error:
        out.append(f"task_file_error\t{one_line(frame.task_file_error)}")
    out += ["", "running now:", "id\ttask\tstarted\telapsed_seconds\tlast_line"]
    for job in frame.running:
        zone = frame.zones.get(job.run.task, "UTC")
        line = one_line(safe_text(job.last_line.encode())) if job.last_line else "-"
        out.append(
            f"{job.run.id}\t{job.run.task}\t{iso(job.run.started_at, zone)}"
            f"\t{int(job.elapsed_seconds)}\t{line}"
        )
    out += ["", "failures in the last day:", "task\tlast_hour\tlast_day\tlast_failure\tstatus"]
    for group in (g for g in frame.failures if g.counted):
        run = group.last.run
        zone = frame.zones.get(run.task, "UTC")
        out.append(
            f"{group.task}\t{group.last_hour}\t{group.last_day}"
            f"\t{iso(run.started_at, zone)}\t{run.status}"
        )
    out += ["", "next runs:", "at\twindow_end\ttask\tmeans"]
    for fire in frame.next_runs:
        end = iso(fire.window_end, fire.timezone) if fire.window_end else "-"
        out.append(f"{iso(fire.at, fire.timezone)}\t{end}\t{fire.task.name}\t{fire.summary}")
    out += ["", "recent outcomes:", "task\toutcomes\tdurations"]
    for chart in frame.charts:
        marks = "".join(mark_of(s, glyphs)[0] for s in chart.statuses)
        out.append(f"{chart.task}\t{marks}\t{sparkline(chart.durations_ms, glyphs.spark)}")
    return "\n".join(out) + "\n"
