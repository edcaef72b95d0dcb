"""The task model: what one task is, its defaults, and the rules each key must follow.

Validation errors carry the task and key; the task file module adds the path and line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronctl.durations import ALLOWED as DURATION_ALLOWED
from cronctl.durations import MAX_DURATION, parse_duration
from cronctl.errors import ScheduleError, TaskFileError, UsageError

if TYPE_CHECKING:
    from cronctl.schedule import Schedule

NAME_RULE = "[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
_NAME = re.compile(NAME_RULE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

OVERLAP_POLICIES = ("skip", "queue", "allow", "replace")
CATCH_UP_POLICIES = ("skip", "once", "all")
NOTIFY_EVENTS = ("failure", "recovery", "success", "missed")
WEBHOOK_FORMATS = ("json", "slack")

DEFAULT_RETRY_DELAY = 30
MAX_RETRY_DELAY = 3600
DEFAULT_KEEP_RUNS = 1000
DEFAULT_KEEP_DAYS = 90
DEFAULT_SHELL = "/bin/sh"
DEFAULT_NOTIFY_TIMEOUT = 10
# Upper bounds: beyond them a value is a typo, and it would overflow timers and SQLite integers.
MAX_KEEP_RUNS = 100_000_000
MAX_AFTER_FAILURES = 1000

# Keys in the order `add` writes them and `show` lists them.
TASK_KEYS = (
    "schedule",
    "command",
    "description",
    "enabled",
    "timezone",
    "timeout",
    "retries",
    "retry_delay",
    "overlap",
    "catch_up",
    "jitter",
    "working_dir",
    "shell",
    "env",
    "when",
    "after",
    "keep_runs",
    "notify",
)
REQUIRED_KEYS = ("schedule", "command")
DEFAULT_KEYS = tuple(k for k in TASK_KEYS if k not in REQUIRED_KEYS) + ("smtp",)
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


def machine_timezone(environ: Mapping[str, str] | None = None) -> str:
    """Return the IANA name of the machine's zone: TZ, else /etc/localtime, else UTC."""
    env = os.environ if environ is None else environ
    tz = _without_copy_folder(env.get("TZ", "").lstrip(":"))
    if tz and is_valid_zone(tz):
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "zoneinfo" + os.sep
        if marker in target:
            name = _without_copy_folder(target.split(marker, 1)[1])
            if is_valid_zone(name):
                return name
    except OSError:
        pass
    return "UTC"


def _without_copy_folder(name: str) -> str:
    """`posix/Europe/Berlin` (where some systems link /etc/localtime) is `Europe/Berlin`."""
    for folder in _COPY_FOLDERS:
        if name.startswith(folder):
            return name[len(folder) :]
    return name


# Files in the zoneinfo folder that are not IANA zone names: `localtime` is whatever the machine
# uses (a task would change zone with it), `posixrules` is a template, and posix/ and right/ are
# copies of the whole tree that systemd and Kubernetes do not know.
_NOT_ZONES = ("localtime", "posixrules")
_COPY_FOLDERS = ("posix/", "right/")
_OFFSET = r"(?:UTC|GMT|Z)?\s*([+-])(\d{1,2})(?::?(\d{2}))?"  # compiled when a hint needs it


def is_valid_zone(name: str) -> bool:
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        return False  # never let a path-like key reach the file system
    if name in _NOT_ZONES or name.startswith(_COPY_FOLDERS):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def zone_hint(name: str) -> str:
    """Return the hint for a zone name that is_valid_zone refused: the nearest IANA name, the
    Etc/GMT form of a fixed offset, or how to install the zone data."""
    from zoneinfo import available_timezones

    known = {z for z in available_timezones() if z not in _NOT_ZONES}
    if not known:
        return "this machine has no time zone data: install it (apt install tzdata, or pip install tzdata)"
    text = name.strip() if isinstance(name, str) else ""
    if text in _NOT_ZONES:
        return f"name the zone itself, e.g. '{machine_timezone()}' (this machine's zone)"
    plain = _without_copy_folder(text)
    if plain != text and plain in known:
        folder = text[: len(text) - len(plain)]
        return f"did you mean '{plain}'? ({folder} holds copies of the zone files, not IANA names)"
    if text.upper() == "Z":
        return "did you mean 'UTC'?"
    offset = re.fullmatch(_OFFSET, text, re.IGNORECASE)
    if offset:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        if minutes == 0 and hours <= 14:
            etc = "Etc/UTC" if hours == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
            if etc in known:
                return (
                    f"a fixed offset is the zone '{etc}' (POSIX inverts the sign), or name a place "
                    "such as Europe/Berlin to follow its daylight saving time"
                )
        return "a zone is an IANA name such as Asia/Kolkata, not an offset"
    if text:
        by_case = {z.lower(): z for z in known}
        near = by_case.get(text.lower().replace(" ", "_"))
        ordered = sorted(known)
        if near is None:
            near = suggest(text, ordered)
        if near is None:
            cities: dict[str, str] = {}
            for zone in ordered:
                cities.setdefault(zone.rsplit("/", 1)[-1].lower(), zone)
            wanted = text.rsplit("/", 1)[-1].lower().replace(" ", "_")
            found = difflib.get_close_matches(wanted, sorted(cities), n=1, cutoff=0.8)
            near = cities[found[0]] if found else None
        if near is not None and near != name:
            return f"did you mean '{near}'?"
    return "use an IANA name such as Europe/Berlin or UTC"


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """Return the nearest of `choices` to `word`, for 'did you mean' hints."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def case_twins(names: Iterable[str]) -> list[tuple[str, ...]]:
    """Return the groups of task names that differ only in letter case, each sorted.

    Names are case-sensitive (`Backup` and `backup` are two tasks), which is rarely meant.
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    return [tuple(sorted(group)) for _, group in sorted(groups.items()) if len(group) > 1]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid task name {name!r}",
            hint=f"a name is 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit ({NAME_RULE})",
        )
    return name


@dataclass(frozen=True)
class NotifySettings:
    on: tuple[str, ...] = ("failure",)
    after_failures: int = 1
    command: str | None = None
    webhook: str | None = None
    format: str = "json"
    webhook_secret_env: str | None = None  # the variable holding the signing secret
    healthchecks: str | None = None
    email: tuple[str, ...] = ()
    timeout: int = DEFAULT_NOTIFY_TIMEOUT

    @property
    def has_channels(self) -> bool:
        return bool(self.command or self.webhook or self.healthchecks or self.email)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    user: str | None = None
    password_env: str | None = None
    sender: str | None = None
    timeout: int = DEFAULT_NOTIFY_TIMEOUT


@dataclass(frozen=True)
class Task:
    name: str
    schedule: str
    command: str
    description: str = ""
    enabled: bool = True
    timezone: str = "UTC"
    timeout: int | None = None
    retries: int = 0
    retry_delay: int = DEFAULT_RETRY_DELAY
    overlap: str = "skip"
    catch_up: str = "skip"
    jitter: int = 0
    working_dir: str = "~"
    shell: str = DEFAULT_SHELL
    env: Mapping[str, str] = field(default_factory=dict)
    when: str | None = None
    after: tuple[str, ...] = ()
    keep_runs: int = DEFAULT_KEEP_RUNS
    notify: NotifySettings | None = None

    @property
    def parsed_zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cwd(self) -> str:
        return os.path.expanduser(self.working_dir)

    @property
    def runs_in_home(self) -> bool:
        """Whether the task runs in the home folder: working_dir `~`, `~/` or empty."""
        return self.working_dir in ("~", "~/", "")

    def retry_delay_for(self, attempt: int) -> int:
        """Return the wait before `attempt` (2, 3, ...): retry_delay doubling, capped at 1h."""
        return min(self.retry_delay * 2 ** max(0, attempt - 2), MAX_RETRY_DELAY)

    def parsed_schedule(self) -> Schedule:
        """Return the task's Schedule, parsed once: validation parses it, `list`, `status` and
        serve reuse it (the schedule module is imported only when a schedule is needed)."""
        cached = self.__dict__.get("_parsed_schedule")
        if cached is None:
            from cronctl.schedule import Schedule

            cached = Schedule.parse(self.schedule, timezone=self.timezone, name=self.name)
            # Frozen: this is a cache of values the task already has, not new state.
            self.__dict__["_parsed_schedule"] = cached
        return cached


@dataclass(frozen=True)
class Defaults:
    values: Mapping[str, Any] = field(default_factory=dict)
    notify: Mapping[str, Any] = field(default_factory=dict)
    smtp: SmtpSettings | None = None  # None: no [defaults.smtp], so mail goes via sendmail


# ---------------------------------------------------------------------------------------------
# Validation of raw TOML tables. Each function raises TaskFileError(task=..., key=...).


def _fail(task: str | None, key: str | None, message: str, hint: str | None = None) -> None:
    raise TaskFileError(message, task=task, key=key, hint=hint)


def _check_keys(
    table: Mapping[str, Any], allowed: tuple[str, ...], task: str | None, where: str
) -> None:
    for key in table:
        if key not in allowed:
            near = suggest(key, allowed)
            hint = f"did you mean '{near}'?" if near else f"allowed keys: {', '.join(allowed)}"
            _fail(task, key, f"unknown key in {where}", hint)


def _string(task: str | None, key: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        _fail(task, key, f"must be a string, not {type(value).__name__}")
    if not empty_ok and not value.strip():
        _fail(task, key, "must not be empty")
    if "\x00" in value:
        _fail(task, key, "must not contain a NUL character")
    return value


def _int(
    task: str | None,
    key: str,
    value: Any,
    low: int,
    high: int | None = None,
    *,
    cap: int | None = None,
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(task, key, f"must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        _fail(task, key, f"must be {span}, not {value}")
    if cap is not None and value > cap:
        _fail(task, key, f"must be at most {cap}, not {value}")
    return value


def _bool(task: str | None, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(task, key, f"must be true or false, not {value!r}")
    return value


def _duration(task: str | None, key: str, value: Any, minimum: int = 0) -> int:
    try:
        seconds = parse_duration(value)
    except UsageError:
        _fail(task, key, f"{value!r} is not {DURATION_ALLOWED}")
    if seconds < minimum:
        _fail(task, key, f"must be at least {minimum}s")
    if seconds > MAX_DURATION:
        _fail(task, key, f"{value!r} is longer than the limit of {MAX_DURATION // 86400}d")
    return seconds


def _choice(task: str | None, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        _fail(task, key, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _zone(task: str | None, key: str, value: Any) -> str:
    name = _string(task, key, value)
    if not is_valid_zone(name):
        _fail(task, key, f"unknown time zone {name!r}", zone_hint(name))
    return name


def _url(task: str | None, key: str, value: Any) -> str:
    url = _string(task, key, value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _fail(task, key, f"{url!r} is not an http(s) URL")
    return url


def _env(task: str | None, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        _fail(task, key, 'must be a table of NAME = "value"')
    result = {}
    for name, text in value.items():
        if not _ENV_NAME.fullmatch(name):
            _fail(task, key, f"{name!r} is not a valid environment variable name")
        if not isinstance(text, str):
            _fail(task, key, f'{name} must be a string (quote it: {name} = "{text}")')
        result[name] = text
    return result


def _env_name(task: str | None, key: str, value: Any) -> str:
    name = _string(task, key, value)
    if not _ENV_NAME.fullmatch(name):
        _fail(task, key, f"{name!r} is not a valid environment variable name")
    return name


def _names(task: str | None, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(task, key, 'must be a list of task names, e.g. ["extract"]')
    for name in value:
        if not _NAME.fullmatch(name):
            _fail(task, key, f"{name!r} is not a valid task name")
    return tuple(value)


def parse_notify(raw: Any, task: str | None) -> NotifySettings:
    if not isinstance(raw, Mapping):
        _fail(task, "notify", "must be a table ([tasks.NAME.notify])")
    if "webhook_secret" in raw:
        _fail(
            task,
            "notify.webhook_secret",
            "secrets are never stored in the task file",
            "name an environment variable with webhook_secret_env",
        )
    _check_keys(raw, NOTIFY_KEYS, task, "notify")
    values: dict[str, Any] = {}
    if "on" in raw:
        events = raw["on"]
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not events:
            _fail(task, "notify.on", f"must be a list of events: {', '.join(NOTIFY_EVENTS)}")
        for event in events:
            _choice(task, "notify.on", event, NOTIFY_EVENTS)
        values["on"] = tuple(events)
    if "after_failures" in raw:
        values["after_failures"] = _int(
            task, "notify.after_failures", raw["after_failures"], 1, cap=MAX_AFTER_FAILURES
        )
    if "command" in raw:
        values["command"] = _string(task, "notify.command", raw["command"])
    for key in ("webhook", "healthchecks"):
        if key in raw:
            values[key] = _url(task, f"notify.{key}", raw[key])
    if "format" in raw:
        values["format"] = _choice(task, "notify.format", raw["format"], WEBHOOK_FORMATS)
    if "webhook_secret_env" in raw:
        values["webhook_secret_env"] = _env_name(
            task, "notify.webhook_secret_env", raw["webhook_secret_env"]
        )
    if "email" in raw:
        email = raw["email"]
        if isinstance(email, str):
            email = [email]
        if not isinstance(email, list) or not all(isinstance(e, str) and "@" in e for e in email):
            _fail(task, "notify.email", "must be an address or a list of addresses")
        values["email"] = tuple(email)
    if "timeout" in raw:
        values["timeout"] = _duration(task, "notify.timeout", raw["timeout"], 1)
    return NotifySettings(**values)


def parse_smtp(raw: Any) -> SmtpSettings:
    if not isinstance(raw, Mapping):
        _fail(None, "smtp", "must be a table ([defaults.smtp])")
    if "password" in raw:
        _fail(
            None,
            "smtp.password",
            "passwords are never stored in the task file",
            "name an environment variable with password_env",
        )
    _check_keys(raw, SMTP_KEYS, None, "[defaults.smtp]")
    values: dict[str, Any] = {}
    if "host" in raw:
        values["host"] = _string(None, "smtp.host", raw["host"])
    if "port" in raw:
        values["port"] = _int(None, "smtp.port", raw["port"], 1, 65535)
    for key in ("starttls", "ssl"):
        if key in raw:
            values[key] = _bool(None, f"smtp.{key}", raw[key])
    if "user" in raw:
        values["user"] = _string(None, "smtp.user", raw["user"])
    if "password_env" in raw:
        values["password_env"] = _string(None, "smtp.password_env", raw["password_env"])
    if "from" in raw:
        values["sender"] = _string(None, "smtp.from", raw["from"])
    if "timeout" in raw:
        values["timeout"] = _duration(None, "smtp.timeout", raw["timeout"], 1)
    return SmtpSettings(**values)


_SIMPLE_CHECKS = {
    "description": lambda t, k, v: _string(t, k, v, empty_ok=True),
    "enabled": _bool,
    "timezone": _zone,
    "timeout": lambda t, k, v: _duration(t, k, v, 1),
    "retries": lambda t, k, v: _int(t, k, v, 0, 100),
    "retry_delay": lambda t, k, v: _duration(t, k, v, 0),
    "overlap": lambda t, k, v: _choice(t, k, v, OVERLAP_POLICIES),
    "catch_up": lambda t, k, v: _choice(t, k, v, CATCH_UP_POLICIES),
    "jitter": lambda t, k, v: _duration(t, k, v, 0),
    "working_dir": _string,
    "shell": _string,
    "env": _env,
    "when": _string,
    "after": _names,
    "keep_runs": lambda t, k, v: _int(t, k, v, 1, cap=MAX_KEEP_RUNS),
    "schedule": _string,
    "command": _string,
}


def parse_defaults(raw: Any) -> Defaults:
    if not isinstance(raw, Mapping):
        _fail(None, "defaults", "must be a table ([defaults])")
    _check_keys(raw, DEFAULT_KEYS, None, "[defaults]")
    values = {}
    for key, value in raw.items():
        if key == "notify":
            parse_notify(value, None)
        elif key == "smtp":
            continue
        else:
            values[key] = _SIMPLE_CHECKS[key](None, key, value)
    notify = dict(raw.get("notify", {}))
    smtp = parse_smtp(raw["smtp"]) if "smtp" in raw else None
    return Defaults(values=values, notify=notify, smtp=smtp)


def parse_task(name: str, raw: Any, defaults: Defaults, default_zone: str) -> Task:
    """Return the Task for table `raw`, with `defaults` applied, or raise TaskFileError."""
    if not _NAME.fullmatch(name):
        _fail(name, None, "invalid task name", f"a name matches {NAME_RULE}")
    if not isinstance(raw, Mapping):
        _fail(name, None, "must be a table ([tasks.NAME])")
    _check_keys(raw, TASK_KEYS, name, f"[tasks.{name}]")
    for key in REQUIRED_KEYS:
        if key not in raw:
            _fail(name, key, "is required")
    values: dict[str, Any] = {"timezone": default_zone, **defaults.values}
    for key, value in raw.items():
        if key != "notify":
            values[key] = _SIMPLE_CHECKS[key](name, key, value)
    notify_raw = (
        {**defaults.notify, **raw.get("notify", {})}
        if (defaults.notify or "notify" in raw)
        else None
    )
    if notify_raw is not None:
        values["notify"] = parse_notify(notify_raw, name)
    if "after" in values and name in values["after"]:
        _fail(name, "after", "a task cannot run after itself")
    task = Task(name=name, **values)
    try:
        task.parsed_schedule()
    except ScheduleError as exc:
        _fail(name, "schedule", f"{task.schedule!r}: {exc.message}", exc.hint)
    return task
