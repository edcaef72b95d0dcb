"""`export --format crontab`: the tasks as crontab(5) lines.

Tasks sharing a time zone, shell and environment are written together under `CRON_TZ=`,
`SHELL=` and `NAME=value` lines (crontab assignments apply to every line below them). Each task
gets a `# cronctl: NAME` comment, which `cronctl import` reads back as the task's name, and a
comment for every setting crontab cannot express. Disabled tasks are written commented out.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cronctl import timefmt
from cronctl.durations import format_duration
from cronctl.export import (
    Export,
    NotExportable,
    OutputFile,
    Skipped,
    every_as_cron,
    one_line,
    refuse_control_characters,
    vixie_fields,
)
from cronctl.model import DEFAULT_SHELL, Task

NAME_COMMENT = "# cronctl: "
"""The comment before each line; `cronctl import` takes the name from it."""


def escape_command(command: str) -> str:
    """Return `command` as a crontab command field: `%` written `\\%` (cron reads `%` as newline).

    Vixie cron removes the backslash of `\\%` and passes other backslashes through, so a `%`
    that follows an odd number of backslashes cannot be written at all.
    """
    if "\n" in command or "\r" in command:
        raise NotExportable("the command spans several lines; a crontab entry is one line")
    if "\x00" in command:
        raise NotExportable("the command holds a NUL character, which cron cannot pass")
    out = []
    backslashes = 0
    for char in command:
        if char == "%":
            if backslashes % 2:
                raise NotExportable("the command has '\\%', which cron cannot pass to the shell")
            out.append("\\%")
        else:
            out.append(char)
        backslashes = backslashes + 1 if char == "\\" else 0
    return "".join(out)


def env_line(name: str, value: str) -> str:
    """Return a crontab assignment; cron strips one pair of matching quotes and outer blanks."""
    if "\n" in value or "\r" in value:
        raise NotExportable(f"env {name} spans several lines; a crontab assignment is one line")
    if "\x00" in value:
        raise NotExportable(f"env {name} holds a NUL character, which cron cannot pass")
    plain = value == value.strip() and not (value[:1] in "'\"" and value)
    if plain:
        return f"{name}={value}"
    quote = "'" if '"' in value else '"'
    return f"{name}={quote}{value}{quote}"


def working_dir_prefix(task: Task) -> str:
    """Return the `cd DIR && ` prefix that gives cron's job the task's folder ('' for home).

    It is part of the command field, so `escape_command` escapes its `%` too."""
    if task.runs_in_home:
        return ""
    working_dir = task.working_dir
    refuse_control_characters("working_dir", working_dir, "a crontab entry")
    if working_dir.startswith("~") and not working_dir.startswith("~/"):
        raise NotExportable(
            f"working_dir {working_dir!r}: another user's home has no crontab equivalent"
        )
    if working_dir.startswith("~/"):
        return f'cd "$HOME"/{shlex.quote(working_dir[2:])} && '
    if os.path.isabs(working_dir):
        return f"cd {shlex.quote(working_dir)} && "
    return f'cd "$HOME"/{shlex.quote(working_dir)} && '


GroupKey = tuple[str, str, tuple[tuple[str, str], ...]]
"""(zone, shell, env items): entries with the same key share their assignment lines."""


@dataclass(frozen=True)
class Entry:
    task: Task
    zone: str
    schedule: str  # the five fields, or a macro
    command: str
    notes: tuple[str, ...]  # settings crontab cannot express
    remarks: tuple[str, ...] = ()  # how a setting was expressed differently
    env_lines: Mapping[str, str] = field(default_factory=dict)  # env NAME -> its assignment
    shell_line: str = f"SHELL={DEFAULT_SHELL}"

    @property
    def key(self) -> GroupKey:
        return (self.zone, self.task.shell, tuple(sorted(self.task.env.items())))


def lost_settings(task: Task) -> list[str]:
    """Return one note for each setting of `task` that a crontab line cannot express."""
    notes = []
    if task.retries:
        notes.append(f"retries {task.retries}: cron runs each slot once")
    if task.timeout:
        notes.append(
            f"timeout {format_duration(task.timeout)}: cron does not stop long runs "
            "(wrap the command in timeout(1))"
        )
    if task.overlap in ("queue", "replace"):
        notes.append(f"overlap {task.overlap}: cron starts each run even while the last one runs")
    if task.catch_up != "skip":
        notes.append(f"catch_up {task.catch_up}: cron does not run slots missed while it was down")
    if task.jitter:
        notes.append(f"jitter {format_duration(task.jitter)}: cron starts on the minute")
    if task.when:
        notes.append(f"when {task.when!r}: cron has no run condition")
    if task.after:
        notes.append(f"after {', '.join(task.after)}: cron has no task dependencies")
    if task.env_file:
        notes.append("env_file: cron reads no env files; source it in the command (set -a; .)")
    if task.lock:
        notes.append(f"lock {', '.join(task.lock)}: cron shares no locks (flock(1) in the command)")
    if task.nice is not None:
        notes.append(
            f"nice {task.nice}: cron runs jobs at its own niceness (nice -n in the command)"
        )
    if task.limits is not None:
        notes.append("limits: cron sets none (ulimit in the command)")
    if task.notify is not None and task.notify.has_channels:
        notes.append("notify: cron only mails output to MAILTO")
    return notes


def entry_for(task: Task) -> Entry:
    """Return the crontab entry of `task`, or raise NotExportable."""
    schedule = task.parsed_schedule()
    notes = lost_settings(task)
    remarks = []
    zone = task.timezone
    if schedule.is_reboot:
        fields = "@reboot"
        remarks.append("@reboot: cron runs it at boot; cronctl ran it when serve started")
    elif schedule.interval_seconds is not None:
        cron = every_as_cron(schedule.interval_seconds)
        if cron is None:
            raise NotExportable(
                f"'{task.schedule}' is not a whole number of minutes dividing an hour, or of "
                "hours dividing a day, so no cron line has the same slots"
            )
        fields, zone = cron, "UTC"
    else:
        fields = " ".join(vixie_fields(schedule))
    if not _ZONE.fullmatch(zone):
        raise NotExportable(f"the time zone {zone!r} cannot be written as CRON_TZ")
    command = escape_command(working_dir_prefix(task) + task.command)
    if command.lstrip(" \t").startswith("-"):
        raise NotExportable(
            "the command starts with '-', which cron reads as its own option (-q), not as"
            " the command"
        )
    if not task.runs_in_home:
        remarks.append(f"working_dir {task.working_dir}: written as a cd before the command")
    env_lines = {name: env_line(name, value) for name, value in task.env.items()}
    refuse_control_characters("shell", task.shell, "a crontab SHELL= line")
    shell_line = env_line("SHELL", task.shell)
    return Entry(task, zone, fields, command, tuple(notes), tuple(remarks), env_lines, shell_line)


_ZONE = re.compile(r"[A-Za-z0-9_+./-]+")  # the names of the tz database


def export(tasks: Iterable[Task], *, source: str | None = None) -> Export:
    """Return the crontab text of `tasks` (one file, `crontab`) and the tasks left out."""
    result = Export()
    entries: list[Entry] = []
    for task in tasks:
        try:
            entries.append(entry_for(task))
        except NotExportable as exc:
            result.skipped.append(Skipped(task.name, exc.reason))
    lines = _header(source, len(entries), result.skipped)
    groups: dict[GroupKey, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.key, []).append(entry)
    env_state: dict[str, str] = {}
    zone_state: str | None = None
    shell_state = DEFAULT_SHELL
    # Tasks without env first: crontab cannot unset a variable, only set it empty.
    ordered = sorted(groups.items(), key=lambda item: bool(item[0][2]))
    for (zone, shell, env_items), group in ordered:
        lines.append("")
        if zone != zone_state:
            lines.append(f"CRON_TZ={zone}")
            zone_state = zone
        if shell != shell_state:
            lines.append(group[0].shell_line)
            shell_state = shell
        env = dict(env_items)
        for name in [n for n, v in env_state.items() if n not in env and v != ""]:
            lines.append(f"# {name} was set for the lines above; crontab cannot unset it")
            lines.append(f"{name}=")
            env_state[name] = ""
        for name, value in env.items():
            if env_state.get(name) != value:
                lines.append(group[0].env_lines[name])  # a group's entries share one env
                env_state[name] = value
        for entry in group:
            lines.extend(_entry_lines(entry))
    for line in lines:  # the last guard that nothing the task file says adds a line
        if "\n" in line or "\r" in line or "\x00" in line:
            raise ValueError(f"a crontab line would span several lines: {line!r}")
    result.files.append(OutputFile("crontab", "\n".join(lines).rstrip("\n") + "\n"))
    return result


def _entry_lines(entry: Entry) -> list[str]:
    task = entry.task
    title = NAME_COMMENT + task.name
    if task.description:
        title += f" - {one_line(task.description)}"
    lines = [title]
    if not task.enabled:
        lines.append("# disabled in cronctl: remove the '# ' below to enable it")
    if task.schedule.strip().startswith("@every"):
        lines.append(f"# schedule {one_line(task.schedule)} (UTC slots since the epoch)")
    elif entry.schedule != task.schedule and entry.schedule != "@reboot":
        lines.append(f"# schedule {one_line(task.schedule)}")
    for remark in entry.remarks:
        lines.append(f"# note: {one_line(remark)}")
    for note in entry.notes:
        lines.append(f"# lost: {one_line(note)}")
    line = f"{entry.schedule} {entry.command}"
    lines.append(line if task.enabled else f"# {line}")
    return lines


def _header(source: str | None, count: int, skipped: Sequence[Skipped]) -> list[str]:
    lines = [
        "# crontab written by `cronctl export --format crontab`"
        + (f" from {one_line(source)}" if source else ""),
        f"# {timefmt.counted(count, 'task')}. Install: crontab FILE (replaces your "
        "crontab) or append to `crontab -e`.",
        "# CRON_TZ needs cronie or another cron that reads it; Vixie/Debian cron uses the "
        "system zone.",
        "# Differences from cronctl for every line: no run history, output is mailed (MAILTO),",
        "# PATH is cron's minimal one, a run starts even while the previous one still runs,",
        "# and around daylight-saving changes the cron implementation's own rules apply.",
    ]
    for item in skipped:
        lines.append(f"# not exported: task {item.task}: {item.reason}")
    return lines
