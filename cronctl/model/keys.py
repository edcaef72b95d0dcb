"""The table of task keys: for each key of a [tasks.NAME] table, its type, the shape of value it
takes, default, check, help, how `show` lists it and how it goes to JSON; the shapes of the
notify and [defaults.smtp] keys; and, from them, raw TOML tables to Tasks.

Everything that handles keys one by one is derived from this table: the shape rule and the
checks of the task file, the order `add` writes keys in, `show`'s settings lines and the task JSON.
tests/test_task_keys.py holds the rest to it: the Task fields and defaults, `add`'s options and
their help, and the README's task-file section. A new key is a new row here, a Task field, an
`add` option and a README line.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from types import MappingProxyType
from typing import Any, NamedTuple

from cronctl.durations import format_duration
from cronctl.errors import ScheduleError, excerpt
from cronctl.model import checks
from cronctl.model.checks import check_keys, fail, parse_notify, parse_smtp
from cronctl.model.kinds import (
    BOOLEAN,
    DURATION,
    STRING,
    STRING_OR_STRINGS,
    STRINGS,
    WHOLE_NUMBER,
    Shape,
    check_shape,
    shape,
    table_of,
)
from cronctl.model.limits import (
    DEFAULT_LIMITS_TABLE,
    LIMIT_OPTIONS,
    LIMITS_TABLE,
    nice_value,
    parse_limits,
)
from cronctl.model.notify_keys import NOTIFY_KEY_TABLE, notify_json, notify_show_lines
from cronctl.model.task import (
    CATCH_UP_POLICIES,
    DEFAULT_KEEP_RUNS,
    DEFAULT_RETRY_DELAY,
    DEFAULT_SHELL,
    MAX_KEEP_RUNS,
    NAME_RULE,
    OVERLAP_POLICIES,
    TASK_NAME,
    CatchUp,
    Defaults,
    Overlap,
    Task,
    make_task,
)

Show = Callable[[Task], str]
ShowLines = Callable[[Task], list[tuple[str, str]]]
ToJson = Callable[[Task], Any]


class TaskKey(NamedTuple):
    """One key of a task and everything cronctl does with it.

    (A NamedTuple rather than a dataclass: making this class costs every command's start-up
    about 0.3 ms as a NamedTuple and 2 ms as a dataclass, measured on Python 3.11.)
    """

    name: str
    toml_type: str  # what the file holds, in words
    shape: Shape  # the kinds of TOML value it takes (cronctl.model.kinds)
    default: Any  # the Task's value when neither the task nor [defaults] sets it
    check: checks.Check  # raw TOML value -> the Task's value; raises TaskFileError
    help: str  # the help of its `add` option
    add_options: tuple[str, ...]  # the argument or options of `add` that set it
    show: Show | None  # the value on its line of `show`; None: no line of its own
    json: ToJson | None  # its value in the task JSON; None: not exported
    required: bool = False
    hidden_at_default: bool = False  # `show` lists it only when it differs from the default
    show_lines: ShowLines | None = None  # a table's lines of `show`, in place of `show`


def _text(name: str) -> Show:
    return lambda task: str(getattr(task, name))


def _duration_or_none(name: str) -> Show:
    def show(task: Task) -> str:
        seconds = getattr(task, name)
        return format_duration(seconds) if seconds else "none"

    return show


def _either(choices: tuple[str, ...]) -> str:
    return f"{', '.join(choices[:-1])} or {choices[-1]}."


# The shapes of the notify table (README: Notifications) and of [defaults.smtp], key by key;
# tests/test_task_keys.py holds them to checks.NOTIFY_KEYS and checks.SMTP_KEYS.
NOTIFY_SHAPES: dict[str, Shape] = {key.name: key.shape for key in NOTIFY_KEY_TABLE}
SMTP_SHAPES: dict[str, Shape] = {
    "host": STRING,
    "port": WHOLE_NUMBER,
    "starttls": BOOLEAN,
    "ssl": BOOLEAN,
    "user": STRING,
    "password_env": STRING,
    "from": STRING,
    "timeout": DURATION,
    "allow_insecure_auth": BOOLEAN,
}
ENV_TABLE = shape('a table of NAME = "value"', "table", items=STRING)
NOTIFY_TABLE = table_of("a table ([tasks.NAME.notify])", NOTIFY_SHAPES)
DEFAULT_NOTIFY_TABLE = table_of("a table ([defaults.notify])", NOTIFY_SHAPES)
SMTP_TABLE = table_of("a table ([defaults.smtp])", SMTP_SHAPES)

TASK_KEY_TABLE: tuple[TaskKey, ...] = (
    TaskKey(
        name="schedule",
        toml_type="cron expression, macro, @every DURATION or @reboot",
        shape=STRING,
        default=None,
        check=checks.string,
        help="Cron expression, macro, '@every 5m' or '@reboot'.",
        add_options=("SCHEDULE",),
        show=_text("schedule"),
        json=attrgetter("schedule"),
        required=True,
    ),
    TaskKey(
        name="command",
        toml_type="string",
        shape=STRING,
        default=None,
        check=checks.string,
        help="Shell command to run.",
        add_options=("COMMAND",),
        show=_text("command"),
        json=attrgetter("command"),
        required=True,
    ),
    TaskKey(
        name="description",
        toml_type="string",
        shape=STRING,
        default="",
        check=lambda t, k, v: checks.string(t, k, v, empty_ok=True),
        help="What the task is for.",
        add_options=("--description",),
        show=lambda task: task.description or "-",
        json=attrgetter("description"),
    ),
    TaskKey(
        name="enabled",
        toml_type="boolean",
        shape=BOOLEAN,
        default=True,
        check=checks.boolean,
        help="Add the task disabled.",
        add_options=("--disabled",),
        show=lambda task: "yes" if task.enabled else "no",
        json=attrgetter("enabled"),
    ),
    TaskKey(
        name="timezone",
        toml_type="IANA zone name",
        shape=STRING,
        default="UTC",  # a task file's tasks default to the machine's zone
        check=checks.zone,
        help="IANA time zone.",
        add_options=("--timezone", "--tz"),
        show=_text("timezone"),
        json=attrgetter("timezone"),
    ),
    TaskKey(
        name="timeout",
        toml_type="duration",
        shape=DURATION,
        default=None,
        check=lambda t, k, v: checks.duration(t, k, v, 1),
        help="Per-attempt time limit, e.g. 30m.",
        add_options=("--timeout",),
        show=_duration_or_none("timeout"),
        json=attrgetter("timeout"),
    ),
    TaskKey(
        name="retries",
        toml_type="integer",
        shape=WHOLE_NUMBER,
        default=0,
        check=lambda t, k, v: checks.whole_number(t, k, v, 0, 100),
        help="Extra attempts after a failure.",
        add_options=("--retries",),
        show=lambda task: f"{task.retries} (delay {format_duration(task.retry_delay)}, doubling)",
        json=attrgetter("retries"),
    ),
    TaskKey(
        name="retry_delay",
        toml_type="duration",
        shape=DURATION,
        default=DEFAULT_RETRY_DELAY,
        check=lambda t, k, v: checks.duration(t, k, v, 0),
        help="Wait before a retry; doubles each time.",
        add_options=("--retry-delay",),
        show=None,  # on the retries line
        json=attrgetter("retry_delay"),
    ),
    TaskKey(
        name="overlap",
        toml_type=" | ".join(OVERLAP_POLICIES),
        shape=STRING,
        default=Overlap.SKIP,
        check=lambda t, k, v: Overlap(checks.choice(t, k, v, OVERLAP_POLICIES)),
        help=_either(OVERLAP_POLICIES),
        add_options=("--overlap",),
        show=_text("overlap"),
        json=lambda task: str(task.overlap),
    ),
    TaskKey(
        name="catch_up",
        toml_type=" | ".join(CATCH_UP_POLICIES),
        shape=STRING,
        default=CatchUp.SKIP,
        check=lambda t, k, v: CatchUp(checks.choice(t, k, v, CATCH_UP_POLICIES)),
        help=_either(CATCH_UP_POLICIES),
        add_options=("--catch-up",),
        show=_text("catch_up"),
        json=lambda task: str(task.catch_up),
    ),
    TaskKey(
        name="jitter",
        toml_type="duration",
        shape=DURATION,
        default=0,
        check=lambda t, k, v: checks.duration(t, k, v, 0),
        help="Random delay before each start, e.g. 5m.",
        add_options=("--jitter",),
        show=_duration_or_none("jitter"),
        json=attrgetter("jitter"),
    ),
    TaskKey(
        name="working_dir",
        toml_type="path",
        shape=STRING,
        default="~",
        check=checks.string,
        help="Folder to run in (default: home).",
        add_options=("--working-dir",),
        show=_text("working_dir"),
        json=attrgetter("working_dir"),
    ),
    TaskKey(
        name="shell",
        toml_type="path",
        shape=STRING,
        default=DEFAULT_SHELL,
        check=checks.string,
        help=f"Shell that runs the command (default {DEFAULT_SHELL}).",
        add_options=("--shell",),
        show=_text("shell"),
        json=attrgetter("shell"),
        hidden_at_default=True,
    ),
    TaskKey(
        name="env",
        toml_type='table of NAME = "value"',
        shape=ENV_TABLE,
        default=MappingProxyType({}),
        check=checks.environment,
        help="KEY=VALUE for the job; repeatable.",
        add_options=("--env",),
        show=lambda task: " ".join(f"{k}={v}" for k, v in task.env.items()),
        json=lambda task: dict(task.env),
        hidden_at_default=True,
    ),
    TaskKey(
        name="env_file",
        toml_type="path or list of paths (KEY=VALUE lines)",
        shape=STRING_OR_STRINGS,
        default=(),
        check=checks.env_files,
        help="File of KEY=VALUE lines read at each run; repeatable.",
        add_options=("--env-file",),
        show=lambda task: ", ".join(task.env_file),  # the paths only: the values are secrets
        json=lambda task: list(task.env_file),
        hidden_at_default=True,
    ),
    TaskKey(
        name="when",
        toml_type="string (a command)",
        shape=STRING,
        default=None,
        check=checks.string,
        help="Run only when this command exits 0.",
        add_options=("--when",),
        show=_text("when"),
        json=attrgetter("when"),
        hidden_at_default=True,
    ),
    TaskKey(
        name="after",
        toml_type="list of task names",
        shape=STRINGS,
        default=(),
        check=checks.task_names,
        help="Also run after this task succeeds; repeatable.",
        add_options=("--after",),
        show=lambda task: ", ".join(task.after),
        json=lambda task: list(task.after),
        hidden_at_default=True,
    ),
    TaskKey(
        name="keep_runs",
        toml_type="integer",
        shape=WHOLE_NUMBER,
        default=DEFAULT_KEEP_RUNS,
        check=lambda t, k, v: checks.whole_number(t, k, v, 1, cap=MAX_KEEP_RUNS),
        help="Runs of history to keep.",
        add_options=("--keep-runs",),
        show=_text("keep_runs"),
        json=attrgetter("keep_runs"),
    ),
    TaskKey(
        name="lock",
        toml_type="lock name or list of them",
        shape=STRING_OR_STRINGS,
        default=(),
        check=checks.lock_names,
        help="Never run beside another task holding this lock; repeatable.",
        add_options=("--lock",),
        show=lambda task: ", ".join(task.lock),
        json=lambda task: list(task.lock),
        hidden_at_default=True,
    ),
    TaskKey(
        name="nice",
        toml_type="integer 0-19",
        shape=WHOLE_NUMBER,
        default=None,
        check=nice_value,
        help="Run the job at this niceness (0-19; higher yields more CPU to others).",
        add_options=("--nice",),
        show=_text("nice"),
        json=attrgetter("nice"),
        hidden_at_default=True,
    ),
    TaskKey(
        name="limits",
        toml_type="table (README: Resource limits)",
        shape=LIMITS_TABLE,
        default=None,
        check=lambda t, k, v: parse_limits(v, t),
        help="What the job may use: the --limit-* options.",
        add_options=LIMIT_OPTIONS,
        show=None,  # a line a limit: limits.memory, limits.cpu, ...
        json=lambda task: task.limits.as_json() if task.limits else None,
        hidden_at_default=True,
        show_lines=lambda task: (
            [(f"limits.{k}", v) for k, v in task.limits.items()] if task.limits else []
        ),
    ),
    TaskKey(
        name="notify",
        toml_type="table (README: Notifications)",
        shape=NOTIFY_TABLE,
        default=None,
        check=lambda t, k, v: parse_notify(v, t),
        help="How to tell someone about a run: the --notify-* options.",
        add_options=tuple(key.add_option for key in NOTIFY_KEY_TABLE),
        show=None,  # a line a key: notify.on, notify.command, ... (cronctl.model.notify_keys)
        json=lambda task: notify_json(task.notify),
        hidden_at_default=True,
        show_lines=lambda task: notify_show_lines(task.notify),
    ),
)

TASK_KEY = {key.name: key for key in TASK_KEY_TABLE}
# Keys in the order `add` writes them and `show` lists them.
TASK_KEYS = tuple(key.name for key in TASK_KEY_TABLE)
REQUIRED_KEYS = tuple(key.name for key in TASK_KEY_TABLE if key.required)
DEFAULT_KEYS = tuple(key.name for key in TASK_KEY_TABLE if not key.required) + ("smtp", "db")

TASK_TABLE = table_of("a table ([tasks.NAME])", {key.name: key.shape for key in TASK_KEY_TABLE})
DEFAULTS_TABLE = table_of(
    "a table ([defaults])",
    {
        **{key.name: key.shape for key in TASK_KEY_TABLE if not key.required},
        "notify": DEFAULT_NOTIFY_TABLE,
        "limits": DEFAULT_LIMITS_TABLE,
        "smtp": SMTP_TABLE,
        "db": STRING,
    },
)
TASKS_TABLE = shape("a table of tasks ([tasks.NAME])", "table")


def show_lines(task: Task) -> list[tuple[str, str]]:
    """Return `show`'s settings lines of `task`: (key, value) in table order."""
    lines = []
    for key in TASK_KEY_TABLE:
        if key.hidden_at_default and getattr(task, key.name) == key.default:
            continue
        if key.show_lines is not None:
            lines.extend(key.show_lines(task))
        elif key.show is not None:
            lines.append((key.name, key.show(task)))
    return lines


def json_fields(task: Task) -> dict[str, Any]:
    """Return the task's keys as the task JSON holds them, in table order."""
    return {key.name: key.json(task) for key in TASK_KEY_TABLE if key.json is not None}


# ---------------------------------------------------------------------------------------------
# From raw TOML tables to a Task: [defaults] first, then each [tasks.NAME] with them applied.


def parse_defaults(raw: Any) -> Defaults:
    check_shape(None, "defaults", raw, DEFAULTS_TABLE, inner="")
    check_keys(raw, DEFAULT_KEYS, None, "[defaults]")
    values = {}
    for key, value in raw.items():
        if key == "notify":
            parse_notify(value, None)  # checked here; merged into each task's own table
        elif key == "db":
            checks.database_setting(value)  # read by cronctl.locations, before the file loads
        elif key != "smtp":
            values[key] = TASK_KEY[key].check(None, key, value)
    notify = dict(raw.get("notify", {}))
    smtp = parse_smtp(raw["smtp"]) if "smtp" in raw else None
    return Defaults(values=values, notify=notify, smtp=smtp)


# The key sets (in the file's order) of task tables already found valid: all known, the
# required ones present; each with whether every key of it takes a string, so that a table of
# strings has the right shape. 100,000 tasks have a few key sets: checking the keys and shapes
# of each table again was a tenth of a load (docs/performance.md, "100,000 tasks", round 3).
_KEY_SETS: dict[tuple[str, ...], bool] = {}
_KEY_SETS_KEPT = 1024
_STRING_KEYS = frozenset(key.name for key in TASK_KEY_TABLE if "string" in key.shape.kinds)
_CHECKS = {key.name: key.check for key in TASK_KEY_TABLE}


def _all_strings(values: Any) -> bool:
    for value in values:
        if type(value) is not str:
            return False
    return True


def parse_task(name: str, raw: Any, defaults: Defaults, default_zone: str) -> Task:
    """Return the Task for table `raw`, with `defaults` applied, or raise TaskFileError."""
    if not TASK_NAME.fullmatch(name):
        fail(name, None, "invalid task name", f"a name matches {NAME_RULE}")
    keys = tuple(raw) if type(raw) is dict else None
    strings_only = _KEY_SETS.get(keys) if keys is not None else None  # None: not seen valid
    if strings_only is not True or not _all_strings(raw.values()):
        check_shape(name, None, raw, TASK_TABLE, inner="")
    if strings_only is None:
        check_keys(raw, TASK_KEYS, name, f"[tasks.{name}]")
        for key in REQUIRED_KEYS:
            if key not in raw:
                fail(name, key, "is required")
        if keys is not None:
            if len(_KEY_SETS) >= _KEY_SETS_KEPT:
                _KEY_SETS.clear()
            _KEY_SETS[keys] = all(key in _STRING_KEYS for key in keys)
    values: dict[str, Any] = {"timezone": default_zone, **defaults.values}
    for key, value in raw.items():
        if key != "notify":
            values[key] = _CHECKS[key](name, key, value)
    if defaults.notify or "notify" in raw:
        # The task's notify table is [defaults.notify] with the task's own keys over it.
        own = raw.get("notify", {})
        values["notify"] = parse_notify({**defaults.notify, **own}, name)
    if "limits" in raw and "limits" in defaults.values:
        # The task's limits table is [defaults.limits] with the task's own keys over it.
        values["limits"] = defaults.values["limits"].over(values["limits"])
    if "after" in values and name in values["after"]:
        fail(name, "after", "a task cannot run after itself")
    task = make_task(name, values)
    try:
        task.parsed_schedule()
    except ScheduleError as exc:
        quoted = repr(excerpt(task.schedule))
        # Some schedule errors quote the whole schedule already ("unknown macro '@bogus'").
        message = exc.message if quoted in exc.message else f"{quoted}: {exc.message}"
        fail(name, "schedule", message, exc.hint)
    except ValueError as exc:  # a backstop: Schedule.parse promises nothing but ValueError
        fail(name, "schedule", f"{task.schedule!r} cannot be read: {exc}")
    return task
