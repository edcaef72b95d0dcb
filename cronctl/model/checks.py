"""The checks of raw TOML values, and of the `notify` and [defaults.smtp] tables: each returns
the value a Task holds, or raises TaskFileError(task=..., key=...); the task file module adds
the path and the line.

A check is `check(task, key, value)`: `task` is None for [defaults], `key` is the dotted key the
error names (`notify.timeout`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

from cronctl.durations import ALLOWED as DURATION_ALLOWED
from cronctl.durations import MAX_DURATION, format_duration, parse_duration
from cronctl.errors import TaskFileError, UsageError, excerpt
from cronctl.locations import POSTGRES_SCHEMES, is_url
from cronctl.model.task import (
    ENV_NAME,
    MAX_AFTER_FAILURES,
    NAME_RULE,
    TASK_NAME,
    NotifySettings,
    SmtpSettings,
    Task,
    suggest,
)

Check = Callable[[str | None, str, Any], Any]


def fail(task: str | None, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise TaskFileError(message, task=task, key=key, hint=hint)


def check_keys(
    table: Mapping[str, Any],
    allowed: tuple[str, ...],
    task: str | None,
    where: str,
    prefix: str = "",
) -> None:
    """Refuse a key of `table` that is not in `allowed`, suggesting the nearest one. `prefix`
    is the table's own key (`notify.`): the error names the key's path, hence its line."""
    for key in table:
        if key not in allowed:
            near = suggest(key, allowed)
            hint = f"did you mean '{near}'?" if near else f"allowed keys: {', '.join(allowed)}"
            fail(task, prefix + key, f"unknown key in {where}", hint)


def string(task: str | None, key: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        fail(task, key, f"must be a string, not {type(value).__name__}")
    if not empty_ok and not value.strip():
        fail(task, key, "must not be empty")
    if "\x00" in value:
        fail(task, key, "must not contain a NUL character")
    return value


def whole_number(
    task: str | None,
    key: str,
    value: Any,
    low: int,
    high: int | None = None,
    *,
    cap: int | None = None,
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(task, key, f"must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        fail(task, key, f"must be {span}, not {value}")
    if cap is not None and value > cap:
        fail(task, key, f"must be at most {cap}, not {value}")
    return value


def boolean(task: str | None, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        fail(task, key, f"must be true or false, not {value!r}")
    return value


def duration(task: str | None, key: str, value: Any, minimum: int = 0) -> int:
    """Return the seconds of a duration (`45s`, `1h30m` or a whole number of seconds)."""
    try:
        seconds = parse_duration(value)
    except UsageError:
        fail(task, key, f"{value!r} is not {DURATION_ALLOWED}")
    if seconds < minimum:
        fail(task, key, f"must be at least {minimum}s")
    if seconds > MAX_DURATION:
        fail(task, key, f"{value!r} is longer than the limit of {MAX_DURATION // 86400}d")
    return seconds


def choice(task: str | None, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        fail(task, key, f"{value!r} is not one of {', '.join(choices)}")
    return str(value)


_KNOWN_ZONES: set[str] = set()
"""Zone names found valid: a file of 100,000 tasks names a few zones, each checked once (the
check was 0.3 s of the load: docs/performance.md, "100,000 tasks", round 2)."""


def zone(task: str | None, key: str, value: Any) -> str:
    if type(value) is str and value in _KNOWN_ZONES:
        return value
    # Imported here: every command imports the model, and the schedule package that holds the
    # zone rules is loaded only by commands that read a schedule or a zone (as parsed_schedule).
    from cronctl.schedule.zones import is_valid_zone, zone_hint

    name = string(task, key, value)
    if not is_valid_zone(name):
        fail(task, key, f"unknown time zone {name!r}", zone_hint(name))
    _KNOWN_ZONES.add(name)
    return name


def url(task: str | None, key: str, value: Any) -> str:
    text = string(task, key, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(task, key, f"{text!r} is not an http(s) URL")
    return text


def environment(task: str | None, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        fail(task, key, 'must be a table of NAME = "value"')
    result = {}
    for name, text in value.items():
        # Each variable's error names its own key (`env.NAME`): the line of the variable.
        if not ENV_NAME.fullmatch(name):
            fail(task, f"{key}.{name}", f"{name!r} is not a valid environment variable name")
        if not isinstance(text, str):
            fail(task, f"{key}.{name}", f'{name} must be a string (quote it: {name} = "{text}")')
        result[name] = text
    return result


def env_files(task: str | None, key: str, value: Any) -> tuple[str, ...]:
    """`env_file`: one path or a list; absolute or in the home folder (`~/`), since a job's
    files must not depend on the folder a command was typed in."""
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        fail(task, key, "must be a path or a list of paths")
    for path in paths:
        string(task, key, path)
        if not (path.startswith("/") or path == "~" or path.startswith("~/")):
            fail(
                task,
                key,
                f"{excerpt(path)!r} is a relative path",
                "give an absolute path or one in the home folder (~/...)",
            )
    return tuple(paths)


def lock_names(task: str | None, key: str, value: Any) -> tuple[str, ...]:
    """`lock`: one name or a list; a name follows the task-name rule (it names a file)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        fail(task, key, 'must be a lock name or a list of them, e.g. "db"')
    for name in names:
        if not TASK_NAME.fullmatch(name):
            fail(
                task,
                key,
                f"{excerpt(name)!r} is not a valid lock name",
                f"a name matches {NAME_RULE}",
            )
    return tuple(dict.fromkeys(names))


def env_name(task: str | None, key: str, value: Any) -> str:
    name = string(task, key, value)
    if not ENV_NAME.fullmatch(name):
        fail(task, key, f"{name!r} is not a valid environment variable name")
    return name


def task_names(task: str | None, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(task, key, 'must be a list of task names, e.g. ["extract"]')
    for name in value:
        if not TASK_NAME.fullmatch(name):
            fail(task, key, f"{name!r} is not a valid task name")
    return tuple(value)


# ---------------------------------------------------------------------------------------------
# The notify table of a task (README: Notifications) and [defaults.smtp]. Secrets are never in
# the file: only the names of the variables that hold them.

NOTIFY_EVENTS = ("failure", "recovery", "success", "missed", "output")
WEBHOOK_FORMATS = ("json", "slack")
NOTIFY_KEYS = (
    "on",
    "after_failures",
    "command",
    "webhook",
    "format",
    "webhook_secret_env",
    "healthchecks",
    "email",
    "timeout",
)
SMTP_KEYS = (
    "host",
    "port",
    "starttls",
    "ssl",
    "user",
    "password_env",
    "from",
    "timeout",
    "allow_insecure_auth",
)


def _events(task: str | None, key: str, value: Any) -> tuple[str, ...]:
    events = [value] if isinstance(value, str) else value
    if not isinstance(events, list) or not events:
        fail(task, key, f"must be a list of events: {', '.join(NOTIFY_EVENTS)}")
    return tuple(choice(task, key, event, NOTIFY_EVENTS) for event in events)


def _addresses(task: str | None, key: str, value: Any) -> tuple[str, ...]:
    email = [value] if isinstance(value, str) else value
    if not isinstance(email, list) or not all(isinstance(e, str) and "@" in e for e in email):
        fail(task, key, "must be an address or a list of addresses")
    return tuple(email)


# Each key of a notify table and its check, in the order errors are reported.
_NOTIFY_CHECKS: dict[str, Check] = {
    "on": _events,
    "after_failures": lambda t, k, v: whole_number(t, k, v, 1, cap=MAX_AFTER_FAILURES),
    "command": string,
    "webhook": url,
    "healthchecks": url,
    "format": lambda t, k, v: choice(t, k, v, WEBHOOK_FORMATS),
    "webhook_secret_env": env_name,
    "email": _addresses,
    "timeout": lambda t, k, v: duration(t, k, v, 1),
}


def parse_notify(raw: Any, task: str | None) -> NotifySettings:
    if not isinstance(raw, Mapping):
        fail(task, "notify", "must be a table ([tasks.NAME.notify])")
    if "webhook_secret" in raw:
        fail(
            task,
            "notify.webhook_secret",
            "secrets are never stored in the task file",
            "name an environment variable with webhook_secret_env",
        )
    check_keys(raw, NOTIFY_KEYS, task, "notify", "notify.")
    values = {
        key: check(task, f"notify.{key}", raw[key])
        for key, check in _NOTIFY_CHECKS.items()
        if key in raw
    }
    return NotifySettings(**values)


# [defaults.smtp]: each key, the field of SmtpSettings it sets, and its check.
_SMTP_CHECKS: dict[str, tuple[str, Check]] = {
    "host": ("host", string),
    "port": ("port", lambda t, k, v: whole_number(t, k, v, 1, 65535)),
    "starttls": ("starttls", boolean),
    "ssl": ("ssl", boolean),
    "user": ("user", string),
    "password_env": ("password_env", string),
    "from": ("sender", string),
    "timeout": ("timeout", lambda t, k, v: duration(t, k, v, 1)),
    "allow_insecure_auth": ("allow_insecure_auth", boolean),
}


def database_setting(raw: Any) -> str:
    """[defaults] db: the history database of everything that uses this task file (a path,
    beside the task file when relative, or a postgresql:// URL; README.md#files). A password
    has no place in the task file: libpq reads it from PGPASSWORD, ~/.pgpass or a service file."""
    value = string(None, "db", raw)
    if not is_url(value):
        return value
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in POSTGRES_SCHEMES:
        fail(
            None,
            "db",
            f"{scheme}:// is not supported",
            "a file path, or postgresql://USER@HOST/DB",
        )
    authority = rest.partition("/")[0]
    if ":" in authority.rpartition("@")[0] or "password=" in rest.lower():
        fail(
            None,
            "db",
            "passwords are never stored in the task file",
            "libpq reads it from PGPASSWORD, ~/.pgpass or a service file (PGSERVICEFILE)",
        )
    return value


def parse_smtp(raw: Any) -> SmtpSettings:
    if not isinstance(raw, Mapping):
        fail(None, "smtp", "must be a table ([defaults.smtp])")
    if "password" in raw:
        fail(
            None,
            "smtp.password",
            "passwords are never stored in the task file",
            "name an environment variable with password_env",
        )
    check_keys(raw, SMTP_KEYS, None, "[defaults.smtp]")
    values = {
        field: check(None, f"smtp.{key}", raw[key])
        for key, (field, check) in _SMTP_CHECKS.items()
        if key in raw
    }
    return SmtpSettings(**values)


def insecure_login(smtp: SmtpSettings | None) -> str | None:
    """Return why mail through `smtp` is refused: a login (`user`) without TLS (neither
    `starttls` nor `ssl`) would send the password in clear text, unless the file says
    `allow_insecure_auth = true` (README.md#channels). None when nothing is refused."""
    if smtp is None or not smtp.user or smtp.starttls or smtp.ssl or smtp.allow_insecure_auth:
        return None
    return (
        f"an SMTP login of {smtp.user!r} to {smtp.host}:{smtp.port} without TLS would send the"
        " password in clear text; set starttls = true (or ssl = true) in [defaults.smtp],"
        " or allow_insecure_auth = true to log in anyway"
    )


# ---------------------------------------------------------------------------------------------
# Warnings: what is valid but cannot work as written. `check` lists each one, `add` prints one
# `warning:` line each and still writes the task (README.md#commands). Not errors: the rest of
# the file runs as it is.

# At most this many fire times are looked at for the shortest gap between two of a cron
# schedule's slots: one day of every minute, and the first slot of the next day.
GAP_SAMPLE = 1441


def shortest_gap(task: Task, now: datetime, longest: int) -> int | None:
    """Return a gap of `longest` seconds or less between two consecutive slots of `task`, the
    first one found; None when there is none (also for @reboot, and a schedule that fires at
    most once).

    `@every N` is N. A cron schedule's slots are the product of its fields, so every day it
    fires on has the same hours and minutes: its shortest gap is within a day, or over the
    night between two days it fires on (23:50, then 00:10), or at a DST change. The gaps are
    measured over the slots of the next 366 days (every month, weekday and DST change of a
    year), at most GAP_SAMPLE of them (a full day of every minute), and the search stops at the
    first gap of `longest` or less: cheap, and exact but for leap days.
    """
    schedule = task.parsed_schedule()
    if schedule.interval_seconds is not None:
        return schedule.interval_seconds if schedule.interval_seconds <= longest else None
    if schedule.is_reboot or longest < 60:
        return None  # cron slots are whole minutes apart
    horizon = now + timedelta(days=366)
    previous = schedule.next_after(now)
    for _ in range(GAP_SAMPLE):
        if previous is None or previous > horizon:
            return None
        current = schedule.next_after(previous)
        if current is None:
            return None
        gap = int(current.timestamp() - previous.timestamp())  # not wall time: DST counts
        if gap <= longest:
            return gap
        previous = current
    return None


def _jitter_warning(task: Task, now: datetime) -> str | None:
    if task.jitter <= 0:
        return None
    gap = shortest_gap(task, now, task.jitter)
    if gap is None:
        return None
    return (
        f"jitter {format_duration(task.jitter)} is not shorter than the gap between two of"
        f" its slots ({format_duration(gap)}): a start may come after the next slot's"
    )


def _notify_warnings(notify: NotifySettings | None, environ: Mapping[str, str]) -> list[str]:
    if notify is None:
        return []
    found = []
    if not notify.has_channels:
        found.append(
            f"notify.on ({', '.join(notify.on)}) has no channel to send to: set notify.command,"
            " webhook, healthchecks or email (`add --notify-command ...`)"
        )
    secret = notify.webhook_secret_env
    if notify.webhook and secret and not environ.get(secret):
        found.append(
            f"notify.webhook_secret_env: the variable {secret} is not set here; without it"
            " every webhook of this task is dropped (set it where serve runs)"
        )
    return found


def task_warnings(
    task: Task,
    now: datetime,
    environ: Mapping[str, str],
    smtp: SmtpSettings | None = None,
) -> list[str]:
    """Return the warnings about one valid task: a jitter as long as the gap between its slots,
    notifications that go nowhere, a webhook secret that is not set, a working folder that
    does not exist (every run would end `error`), and with `smtp`, mail that is refused."""
    found = [warning for warning in (_jitter_warning(task, now),) if warning]
    found += _notify_warnings(task.notify, environ)
    if not os.path.isdir(task.cwd):
        found.append(
            f"working_dir {task.working_dir} does not exist (or is not a folder) here:"
            " every run would end `error`"
        )
    found += _env_file_warnings(task)
    refused = insecure_login(smtp) if task.notify and task.notify.email else None
    if refused:
        found.append(f"its email is never sent: {refused}")
    return found


def _env_file_warnings(task: Task) -> list[str]:
    """An env file that is missing here (every run would end `error`), or that others can read
    (it holds secrets: `chmod 600` is what systemd and docker ask for too)."""
    found = []
    for path in task.env_file:
        try:
            mode = os.stat(os.path.expanduser(path)).st_mode
        except OSError as exc:
            found.append(
                f"env_file {path} cannot be read here ({exc.strerror}): every run would end `error`"
            )
            continue
        if mode & 0o044:
            who = "everyone" if mode & 0o004 else "its group"
            found.append(f"env_file {path} is readable by {who}: chmod 600 {path}")
    return found
