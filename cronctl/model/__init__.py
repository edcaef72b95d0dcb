"""The task model: what one task is, the table of its keys, and the rules each key follows.

- `task`: the name rule, the Task, its notification and SMTP settings, [defaults], the overlap
  and catch-up policies, the limits.
- `keys`: the table of task keys (type, default, check, help, `show` line, JSON), from which
  the checks, `show` and the task JSON are derived; parse_task and parse_defaults.
- `checks`: the checks of raw TOML values, and of the notify and [defaults.smtp] tables.

Validation errors carry the task and key; the task file module adds the path and line. Zone
names are checked by cronctl.schedule.zones, where every zone rule lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cronctl.model.checks import (
    NOTIFY_EVENTS,
    NOTIFY_KEYS,
    SMTP_KEYS,
    WEBHOOK_FORMATS,
    Check,
    parse_notify,
    parse_smtp,
)
from cronctl.model.keys import (
    DEFAULT_KEYS,
    REQUIRED_KEYS,
    TASK_KEY,
    TASK_KEY_TABLE,
    TASK_KEYS,
    TaskKey,
    json_fields,
    parse_defaults,
    parse_task,
    show_lines,
)
from cronctl.model.task import (
    CATCH_UP_POLICIES,
    DEFAULT_KEEP_DAYS,
    DEFAULT_KEEP_RUNS,
    DEFAULT_NOTIFY_TIMEOUT,
    DEFAULT_RETRY_DELAY,
    DEFAULT_SHELL,
    ENV_NAME,
    MAX_AFTER_FAILURES,
    MAX_KEEP_RUNS,
    MAX_RETRY_DELAY,
    NAME_RULE,
    OVERLAP_POLICIES,
    TASK_NAME,
    CatchUp,
    Defaults,
    NotifySettings,
    Overlap,
    SmtpSettings,
    Task,
    case_twins,
    check_name,
    suggest,
)

if TYPE_CHECKING:
    from cronctl.schedule.zones import is_valid_zone, machine_timezone, zone_hint

_ZONE_HELPERS = ("machine_timezone", "is_valid_zone", "zone_hint")


def __getattr__(name: str) -> Any:
    """`model.machine_timezone`, `model.is_valid_zone`, `model.zone_hint`: the zone helpers of
    cronctl.schedule.zones, loaded when first used (see checks.zone for why not at import)."""
    if name in _ZONE_HELPERS:
        from cronctl.schedule import zones

        return getattr(zones, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CATCH_UP_POLICIES",
    "DEFAULT_KEEP_DAYS",
    "DEFAULT_KEEP_RUNS",
    "DEFAULT_KEYS",
    "DEFAULT_NOTIFY_TIMEOUT",
    "DEFAULT_RETRY_DELAY",
    "DEFAULT_SHELL",
    "ENV_NAME",
    "MAX_AFTER_FAILURES",
    "MAX_KEEP_RUNS",
    "MAX_RETRY_DELAY",
    "NAME_RULE",
    "NOTIFY_EVENTS",
    "NOTIFY_KEYS",
    "OVERLAP_POLICIES",
    "REQUIRED_KEYS",
    "SMTP_KEYS",
    "TASK_KEY",
    "TASK_KEYS",
    "TASK_KEY_TABLE",
    "TASK_NAME",
    "WEBHOOK_FORMATS",
    "CatchUp",
    "Check",
    "Defaults",
    "NotifySettings",
    "Overlap",
    "SmtpSettings",
    "Task",
    "TaskKey",
    "case_twins",
    "check_name",
    "is_valid_zone",
    "json_fields",
    "machine_timezone",
    "parse_defaults",
    "parse_notify",
    "parse_smtp",
    "parse_task",
    "show_lines",
    "suggest",
    "zone_hint",
]
