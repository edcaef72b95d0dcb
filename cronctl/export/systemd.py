"""`export --format systemd`: a `cronctl-NAME.timer` and `cronctl-NAME.service` per task.

Cron schedules become `OnCalendar=` expressions in the task's zone. systemd ANDs the weekday
and the date of one expression while cron ORs a restricted day-of-month with a restricted
day-of-week, so such a schedule gets one `OnCalendar=` line per alternative. `L` becomes
`*-*~01` (last day of the month), `FRI#1` `Fri *-*-01..07`, `5L` `Fri *-*~07/1`
(calendar_days.py has every day form, and those without an exact equivalent).

Also here: quoting for unit files (systemd.syntax(7), systemd.service(5) "Command lines"),
shared with the `cronctl serve` user unit of cronctl.service.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from cronctl.durations import format_duration
from cronctl.export import (
    Export,
    NotExportable,
    OutputFile,
    Skipped,
    escape_quoted,
    every_step,
    one_line,
    refuse_control_characters,
)
from cronctl.export.calendar_days import calendar_days, two
from cronctl.model import Task
from cronctl.model.limits import CPU_KILL_AFTER, format_size

if TYPE_CHECKING:
    from cronctl.schedule.schedule import Schedule

UNIT_PREFIX = "cronctl-"
_SAFE_WORD = re.compile(r"[A-Za-z0-9_+=:,./@-]+")

# ---------------------------------------------------------------------------------------------
# Quoting for unit files


def _c_escape(text: str) -> str:
    return escape_quoted(text, lambda code: code < 0x20 or code == 0x7F, "\\x{:02x}")


def specifiers(text: str) -> str:
    """Return `text` with `%` doubled: systemd expands `%h`, `%u`... in most settings."""
    return text.replace("%", "%%")


def exec_word(text: str, *, first: bool = False) -> str:
    """Return one word of an `ExecStart=` command line, quoted so systemd reads back `text`.

    Arguments (not the program path) also go through `$VAR` expansion, so `$` is doubled.
    """
    if not text:
        return '""'
    if _SAFE_WORD.fullmatch(text) and not (first and text[0] in "@-:+!"):
        return text
    quoted = '"' + _c_escape(text) + '"'
    quoted = specifiers(quoted)
    return quoted if first else quoted.replace("$", "$$")


_UNSAFE_PROGRAM = re.compile(r"['\"\\\x00-\x1f\x7f]")


def exec_line(argv: Sequence[str]) -> str:
    """Return the value of `ExecStart=` that runs `argv` exactly.

    systemd refuses a program path with quotes, backslashes or control characters, reads
    `-`, `@`, `:`, `+` and `!` at the start of the program as prefixes even when quoted or
    escaped, and looks a name without `/` up in its own fixed path. So only an absolute path
    without those characters is written as the program; any other is started by
    `/bin/sh -c 'exec "$0" "$@"'`, which passes it every argument as is (and finds a bare
    name in PATH, as the job's own shell would).
    """
    argv = list(argv)
    if _UNSAFE_PROGRAM.search(argv[0]) or not argv[0].startswith("/"):
        argv = ["/bin/sh", "-c", 'exec "$0" "$@"', *argv]
    return " ".join(exec_word(word, first=index == 0) for index, word in enumerate(argv))


def env_assignment(name: str, value: str) -> str:
    """Return the value of an `Environment=` line setting `name` to `value` exactly."""
    return specifiers('"' + _c_escape(f"{name}={value}") + '"')


def path_setting(task: Task) -> str:
    """Return the task's folder for `WorkingDirectory=`: `~` for home, `%h/...` below it.

    systemd takes this value as it is written (no escapes; blanks at either end stripped, a
    trailing backslash continues the line, `..` refused): a folder it cannot read back
    exactly raises NotExportable."""
    if task.runs_in_home:
        return "~"
    path = task.working_dir
    refuse_control_characters("working_dir", path, "WorkingDirectory=")
    if path != path.strip() or path.endswith("\\") or ".." in path.split("/"):
        raise NotExportable(
            f"working_dir {path!r} has blanks at an end, a trailing backslash or a '..',"
            " which WorkingDirectory= cannot hold"
        )
    if path.startswith("~") and not path.startswith("~/"):
        raise NotExportable(f"working_dir {path!r}: another user's home has no unit equivalent")
    if path.startswith("~/"):
        return "%h/" + specifiers(path[2:])
    if not os.path.isabs(path):
        return "%h/" + specifiers(path)  # relative: cronctl resolves it from serve's folder
    return specifiers(path)


def env_file_setting(path: str) -> str:
    """Return an `EnvironmentFile=` value: the path, `~/` as `%h/` (systemd wants it absolute);
    systemd reads the file itself at each start, as cronctl does."""
    refuse_control_characters("env_file", path, "EnvironmentFile=")
    if path != path.strip() or path.endswith("\\"):
        raise NotExportable(
            f"env_file {path!r} has blanks at an end or a trailing backslash,"
            " which EnvironmentFile= cannot hold"
        )
    if path == "~" or path.startswith("~/"):
        return "%h/" + specifiers(path[2:])
    return specifiers(path)


def limit_settings(task: Task) -> list[str]:
    """`nice` and `limits` in systemd's words, which mean the same: Nice=, LimitCPU= and
    LimitNOFILE= per process (setrlimit, soft:hard as cronctl sets them), MemoryMax= and
    TasksMax= for the unit's cgroup, as cronctl's for the job's process group."""
    settings = [] if task.nice is None else [f"Nice={task.nice}"]
    limits = task.limits
    if limits is None:
        return settings
    if limits.memory is not None:
        settings.append(f"MemoryMax={format_size(limits.memory)}")
    if limits.cpu is not None:
        settings.append(f"LimitCPU={limits.cpu}:{limits.cpu + CPU_KILL_AFTER}")
    if limits.open_files is not None:
        settings.append(f"LimitNOFILE={limits.open_files}")
    if limits.processes is not None:
        settings.append(f"TasksMax={limits.processes}")
    return settings


def unit_name(task_name: str, suffix: str) -> str:
    return f"{UNIT_PREFIX}{task_name}.{suffix}"


# ---------------------------------------------------------------------------------------------
# Schedules


def calendar_specs(schedule: Schedule) -> list[str]:
    """Return `OnCalendar=` values (with the zone) that fire exactly when a cron schedule does."""
    cron = schedule.cron
    if cron is None:
        raise NotExportable(f"'{schedule.text}' is not a cron expression")
    minute, hour, dom, month, dow = cron.fields
    time = f"{two(hour.values, 0, 23)}:{two(minute.values, 0, 59)}:00"
    days = calendar_days(dom, dow, two(month.values, 1, 12), cron.days.combine_by_or)
    specs: list[str] = []
    for weekday_part, date in days:
        spec = f"{weekday_part + ' ' if weekday_part else ''}{date} {time} {schedule.timezone}"
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise NotExportable(f"'{schedule.text}' has no OnCalendar equivalent")
    return specs


def has_clock_changes(zone: tzinfo, years: Iterable[int] = range(2024, 2036)) -> bool:
    """Return whether `zone` changes its UTC offset within a year (daylight saving time)."""
    for year in years:
        offsets = {datetime(year, month, 1, 12, tzinfo=zone).utcoffset() for month in (1, 4, 7, 10)}
        if len(offsets) > 1:
            return True
    return False


def every_calendar(seconds: int) -> str | None:
    """Return an `OnCalendar=` value with exactly the slots of `@every seconds`, or None."""
    step = every_step(seconds)
    if step is None:
        return None
    unit, n = step
    value = "*" if n == 1 else f"00/{n}"
    if unit == "second":
        return f"*-*-* *:*:{value} UTC"
    if unit == "minute":
        return f"*-*-* *:{value}:00 UTC"
    if unit == "hour":
        return f"*-*-* {value}:00:00 UTC"
    return "*-*-* 00:00:00 UTC"


# ---------------------------------------------------------------------------------------------
# Units


def timer_lines(task: Task) -> tuple[list[str], list[str]]:
    """Return the `[Timer]` settings of `task` and comments about what systemd does differently."""
    schedule = task.parsed_schedule()
    settings: list[str] = []
    notes: list[str] = []
    if schedule.is_reboot:
        settings.append("OnStartupSec=0")
        notes.append(
            "@reboot: runs once each time your user manager starts (at boot with lingering, "
            "else at your first login)"
        )
    elif schedule.interval_seconds is not None:
        seconds = schedule.interval_seconds
        exact = every_calendar(seconds)
        if exact:
            settings.append(f"OnCalendar={exact}")
        else:
            settings.append(f"OnStartupSec={seconds}")
            settings.append(f"OnUnitActiveSec={seconds}")
            notes.append(
                f"{task.schedule}: every {format_duration(seconds)} after the last start, "
                "not aligned to the epoch as cronctl aligns it"
            )
    elif schedule.cron is None:
        raise NotExportable(f"'{task.schedule}' has no systemd timer equivalent")
    else:
        specs = calendar_specs(schedule)
        if len(specs) > 1 and schedule.cron.days.combine_by_or:
            notes.append(
                "cron runs on a day matching day-of-month OR day-of-week; one OnCalendar "
                "line per alternative"
            )
        settings.extend(f"OnCalendar={specifiers(spec)}" for spec in specs)
        if has_clock_changes(schedule.zone):
            if not schedule.is_wildcard:
                notes.append(
                    "daylight saving: when a clock change skips this time, systemd skips the "
                    "run (cronctl runs it just after the change)"
                )
            else:
                notes.append(
                    "daylight saving: in an hour that a clock change repeats, systemd runs "
                    "only the first pass (cronctl runs both)"
                )
    # Persistent= catches up on missed OnCalendar= slots only.
    calendar = any(setting.startswith("OnCalendar=") for setting in settings)
    settings.append("AccuracySec=1s")
    if task.jitter:
        settings.append(f"RandomizedDelaySec={task.jitter}")
    if task.catch_up != "skip" and calendar:
        settings.append("Persistent=true")
    if task.catch_up == "all":
        notes.append("catch_up all: systemd runs missed slots once, not each of them")
    elif task.catch_up == "once" and not calendar:
        notes.append("catch_up once: Persistent= works with OnCalendar only")
    return settings, notes


def service_lines(task: Task) -> tuple[list[str], list[str]]:
    settings = ["Type=oneshot", f"WorkingDirectory={path_setting(task)}"]
    notes: list[str] = []
    for path in task.env_file:
        settings.append(f"EnvironmentFile={env_file_setting(path)}")
    if task.env_file and task.env:
        notes.append(
            "env_file: systemd's EnvironmentFile= overrides Environment=, while cronctl's env"
            " overrides the file: a variable set in both takes the file's value there"
        )
    for name, value in task.env.items():
        settings.append(f"Environment={env_assignment(name, value)}")
    settings.append(f"Environment={env_assignment('CRONCTL_TASK', task.name)}")
    if task.when:
        settings.append(f"ExecCondition={exec_line([task.shell, '-c', task.when])}")
    settings.append(f"ExecStart={exec_line([task.shell, '-c', task.command])}")
    settings.extend(limit_settings(task))
    if task.timeout:
        settings.append(f"TimeoutStartSec={task.timeout}")
    if task.retries:
        notes.append(f"retries {task.retries}: not exported; a failed run is not retried")
    if task.overlap != "skip":
        notes.append(
            f"overlap {task.overlap}: systemd does not start a timer's service while it "
            "still runs (like skip)"
        )
    if task.notify is not None and task.notify.has_channels:
        notes.append("notify: not exported; see OnFailure= in systemd.unit(5)")
    if task.when:
        notes.append("when: ExecCondition= skips the run when the condition exits 1-254")
    if task.lock:
        notes.append(
            f"lock {', '.join(task.lock)}: not exported; wrap the command in flock(1) to keep"
            " tasks sharing it apart"
        )
    return settings, notes


def description_label(task: Task) -> str:
    """Return `Description=`'s label: "cronctl task NAME: DESCRIPTION" on one line (runs of
    whitespace, newlines included, as one space). systemd takes it as written (no escapes),
    so a label with another control character, or ending in a backslash (which would join
    the next line to it), raises NotExportable."""
    label = f"cronctl task {task.name}" + (f": {task.description}" if task.description else "")
    label = " ".join(label.split())
    refuse_control_characters("description", label, "Description=")
    if label.endswith("\\"):
        raise NotExportable(
            "description ends with a backslash, which a unit file reads as a line continuation"
        )
    return label


def checked_lines(lines: Sequence[str]) -> str:
    """Return the unit's text from its lines, after checking each is one line that ends the
    setting it holds: the last guard that nothing the task file says adds a line."""
    for line in lines:
        if any(ord(char) < 0x20 and char != "\t" or ord(char) == 0x7F for char in line):
            raise NotExportable(f"a unit line would hold a control character: {line!r}")
        if (len(line) - len(line.rstrip("\\"))) % 2:
            raise NotExportable(f"a unit line would end in a line continuation: {line!r}")
    return "\n".join(lines) + "\n"


def units_for(task: Task, tasks: Sequence[Task]) -> tuple[OutputFile, OutputFile]:
    """Return the timer and service units of `task` (`tasks` gives the `after` followers)."""
    timer_settings, timer_notes = timer_lines(task)
    service_settings, service_notes = service_lines(task)
    description = specifiers(description_label(task))
    header = [
        f"# Exported by `cronctl export --format systemd` from task '{task.name}'",
        f"# schedule: {' '.join(task.schedule.split())} ({task.timezone})",
    ]
    if not task.enabled:
        header.append("# disabled in cronctl: enable the timer only when you want it to run")
    timer = [
        *header,
        *(f"# {one_line(note)}" for note in timer_notes),
        "[Unit]",
        f"Description={description}",
        "",
        "[Timer]",
        *timer_settings,
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    followers = [t.name for t in tasks if task.name in t.after]
    unit_settings = (
        ["OnSuccess=" + " ".join(unit_name(n, "service") for n in followers)] if followers else []
    )
    service = [
        *header,
        *(f"# {one_line(note)}" for note in service_notes),
        "[Unit]",
        f"Description={description}",
        *unit_settings,
        "",
        "[Service]",
        *service_settings,
    ]
    return (
        OutputFile(unit_name(task.name, "timer"), checked_lines(timer)),
        OutputFile(unit_name(task.name, "service"), checked_lines(service)),
    )


def export(tasks: Iterable[Task]) -> Export:
    """Return a timer and a service per task; tasks systemd cannot express go to `skipped`."""
    tasks = list(tasks)
    result = Export()
    for task in tasks:
        try:
            timer, service = units_for(task, tasks)
        except NotExportable as exc:
            result.skipped.append(Skipped(task.name, exc.reason))
            continue
        result.files.extend([timer, service])
    return result
