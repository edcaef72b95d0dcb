"""The checks of raw TOML values, and of the `notify` and [defaults.smtp] tables: each returns
the value a Task holds, or raises TaskFileError(task=..., key=...); the task file module adds
the path and the line.

A check is `check(task, key, value)`: `task` is None for [defaults], `key` is the dotted key the
error names (`notify.timeout`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from cronctl.durations import ALLOWED as DURATION_ALLOWED
from cronctl.durations import MAX_DURATION, parse_duration
from cronctl.errors import TaskFileError, UsageError
from cronctl.model.task import (
    ENV_NAME,
    MAX_AFTER_FAILURES,
    TASK_NAME,
    NotifySettings,
    SmtpSettings,
    suggest,
)

Check = Callable[[str | None, str, Any], Any]


def fail(task: str | None, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise TaskFileError(message, task=task, key=key, hint=hint)


def check_keys(
    table: Mapping[str, Any], allowed: tuple[str, ...], task: str | None, where: str
) -> None:
    """Refuse a key of `table` that is not in `allowed`, suggesting the nearest one."""
    for key in table:
        if key not in allowed:
            near = suggest(key, allowed)
            hint = f"did you mean '{near}'?" if near else f"allowed keys: {', '.join(allowed)}"
            fail(task, key, f"unknown key in {where}", hint)


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


def zone(task: str | None, key: str, value: Any) -> str:
    # Imported here: every command imports the model, and the schedule package that holds the
    # zone rules is loaded only by commands that read a schedule or a zone (as parsed_schedule).
    from cronctl.schedule.zones import is_valid_zone, zone_hint

    name = string(task, key, value)
    if not is_valid_zone(name):
        fail(task, key, f"unknown time zone {name!r}", zone_hint(name))
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
        if not ENV_NAME.fullmatch(name):
            fail(task, key, f"{name!r} is not a valid environment variable name")
        if not isinstance(text, str):
            fail(task, key, f'{name} must be a string (quote it: {name} = "{text}")')
        result[name] = text
    return result


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

NOTIFY_EVENTS = ("failure", "recovery", "success", "missed")
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
SMTP_KEYS = ("host", "port", "starttls", "ssl", "user", "password_env", "from", "timeout")


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
    check_keys(raw, NOTIFY_KEYS, task, "notify")
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
}


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
