"""What one task is: its name, the Task, its notification settings, the file's [defaults], the
policies and limits.

Each field of Task is a key of the task file; the table of keys (cronctl.model.keys) says how
each is checked, shown and exported, and a test keeps the two in step.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cronctl.errors import UsageError

if TYPE_CHECKING:
    from cronctl.model.limits import Limits
    from cronctl.schedule import Schedule

NAME_RULE = "[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
TASK_NAME = re.compile(NAME_RULE)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

DEFAULT_RETRY_DELAY = 30
MAX_RETRY_DELAY = 3600
DEFAULT_KEEP_RUNS = 1000
DEFAULT_KEEP_DAYS = 90
DEFAULT_SHELL = "/bin/sh"
DEFAULT_NOTIFY_TIMEOUT = 10
# Upper bounds: beyond them a value is a typo, and it would overflow timers and SQLite integers.
MAX_KEEP_RUNS = 100_000_000
MAX_AFTER_FAILURES = 1000


def check_name(name: str) -> str:
    """Return `name` when it is a valid task name; raise UsageError otherwise."""
    if not isinstance(name, str) or not TASK_NAME.fullmatch(name):
        raise UsageError(
            f"invalid task name {name!r}",
            hint=(
                "a name is 1-63 letters, digits, '_', '.' or '-', starting with a letter or "
                f"digit ({NAME_RULE})"
            ),
        )
    return name


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


class Overlap(StrEnum):
    """What serve does when a run is due while the previous one still runs (README: serve)."""

    SKIP = "skip"
    QUEUE = "queue"
    ALLOW = "allow"
    REPLACE = "replace"


class CatchUp(StrEnum):
    """What serve does with the slots that passed while it was down (README: serve)."""

    SKIP = "skip"
    ONCE = "once"
    ALL = "all"


OVERLAP_POLICIES = tuple(policy.value for policy in Overlap)
CATCH_UP_POLICIES = tuple(policy.value for policy in CatchUp)


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
    allow_insecure_auth: bool = False  # log in without TLS (README.md#channels)


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
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.SKIP
    jitter: int = 0
    working_dir: str = "~"
    shell: str = DEFAULT_SHELL
    env: Mapping[str, str] = field(default_factory=dict)
    env_file: tuple[str, ...] = ()
    when: str | None = None
    after: tuple[str, ...] = ()
    keep_runs: int = DEFAULT_KEEP_RUNS
    lock: tuple[str, ...] = ()
    nice: int | None = None
    limits: Limits | None = None
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
        return min(self.retry_delay * (1 << max(0, attempt - 2)), MAX_RETRY_DELAY)

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


# The fields whose default is made for each task (a dict): every other default is a class
# attribute of Task, which an instance without its own value reads.
_MADE_DEFAULTS = {
    f.name: f.default_factory for f in fields(Task) if f.default_factory is not MISSING
}


def make_task(name: str, values: Mapping[str, Any]) -> Task:
    """`Task(name=name, **values)` for values already checked (model.parse_task): the same
    task, equal to it, made without the frozen dataclass's `__init__`. That sets each of 23
    fields with `object.__setattr__`: 0.27 s of 100,000 tasks, against 0.04 s to fill the
    instance's dict with the values given; a field left at its default is read from the
    class, so the instance is smaller too (docs/performance.md, "100,000 tasks", round 3)."""
    task: Task = object.__new__(Task)
    own = task.__dict__
    own["name"] = name
    own.update(values)
    for key, make in _MADE_DEFAULTS.items():
        if key not in own:
            own[key] = make()
    return task


@dataclass(frozen=True)
class Defaults:
    values: Mapping[str, Any] = field(default_factory=dict)
    notify: Mapping[str, Any] = field(default_factory=dict)
    smtp: SmtpSettings | None = None  # None: no [defaults.smtp], so mail goes via sendmail
