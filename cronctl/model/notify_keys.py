"""The table of notify keys ([tasks.NAME.notify], README: Notifications): for each key its shape,
the `add` option that sets it and its help, its `show` line and its value in the task JSON.

The same rule as the table of task keys (cronctl.model.keys): a key of the notify table is a
row here, a field of NotifySettings, a check in cronctl.model.checks and a README line;
tests/test_task_keys.py fails when one of them is missing. Secrets are never in the task file
(only the name of the variable that holds one), so neither `show` nor the JSON can show one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from cronctl.durations import format_duration
from cronctl.model.checks import NOTIFY_EVENTS, WEBHOOK_FORMATS
from cronctl.model.kinds import DURATION, STRING, STRING_OR_STRINGS, WHOLE_NUMBER, Shape
from cronctl.model.task import NotifySettings


class NotifyKey(NamedTuple):
    name: str
    shape: Shape
    add_option: str  # the option of `add` that sets it
    help: str
    show: Callable[[NotifySettings], str]  # the value on its `show` line
    json: Callable[[NotifySettings], Any]  # its value in the task JSON's `notify` object
    shown_when: Callable[[NotifySettings], bool] = lambda settings: True


def _either(choices: tuple[str, ...]) -> str:
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def _field(name: str) -> Callable[[NotifySettings], Any]:
    return lambda settings: getattr(settings, name)


def _set(name: str) -> Callable[[NotifySettings], bool]:
    return lambda settings: bool(getattr(settings, name))


NOTIFY_KEY_TABLE: tuple[NotifyKey, ...] = (
    NotifyKey(
        name="on",
        shape=STRING_OR_STRINGS,
        add_option="--notify-on",
        help=f"Event to notify: {_either(NOTIFY_EVENTS)}; repeatable.",
        show=lambda s: ", ".join(s.on),
        json=lambda s: list(s.on),
    ),
    NotifyKey(
        name="after_failures",
        shape=WHOLE_NUMBER,
        add_option="--notify-after-failures",
        help="Notify a failure once N runs in a row have failed.",
        show=lambda s: f"{s.after_failures} in a row",
        json=_field("after_failures"),
        shown_when=lambda s: s.after_failures != 1,
    ),
    NotifyKey(
        name="command",
        shape=STRING,
        add_option="--notify-command",
        help="Command to run for a notification.",
        show=_field("command"),
        json=_field("command"),
        shown_when=_set("command"),
    ),
    NotifyKey(
        name="webhook",
        shape=STRING,
        add_option="--notify-webhook",
        help="URL to POST the run to.",
        show=_field("webhook"),
        json=_field("webhook"),
        shown_when=_set("webhook"),
    ),
    NotifyKey(
        name="format",
        shape=STRING,
        add_option="--notify-format",
        help=f"What the webhook posts: {_either(WEBHOOK_FORMATS)}.",
        show=_field("format"),
        json=_field("format"),
        shown_when=_set("webhook"),
    ),
    NotifyKey(
        name="webhook_secret_env",
        shape=STRING,
        add_option="--notify-webhook-secret-env",
        help="Variable holding the webhook's signing secret (the name, not the secret).",
        show=lambda s: f"${s.webhook_secret_env} (its value is not shown)",
        json=_field("webhook_secret_env"),
        shown_when=_set("webhook_secret_env"),
    ),
    NotifyKey(
        name="healthchecks",
        shape=STRING,
        add_option="--notify-healthchecks",
        help="Healthchecks ping URL.",
        show=_field("healthchecks"),
        json=_field("healthchecks"),
        shown_when=_set("healthchecks"),
    ),
    NotifyKey(
        name="email",
        shape=STRING_OR_STRINGS,
        add_option="--notify-email",
        help="Address to mail; repeatable.",
        show=lambda s: ", ".join(s.email),
        json=lambda s: list(s.email),
        shown_when=_set("email"),
    ),
    NotifyKey(
        name="timeout",
        shape=DURATION,
        add_option="--notify-timeout",
        help="Time limit of each channel, e.g. 30s (default 10s).",
        show=lambda s: format_duration(s.timeout),
        json=_field("timeout"),
    ),
)

NOTIFY_KEY = {key.name: key for key in NOTIFY_KEY_TABLE}


def notify_show_lines(settings: NotifySettings | None) -> list[tuple[str, str]]:
    """`show`'s lines of a notify table: `notify.KEY` and its value, the keys that say something
    (a channel that is not set, a default that changes nothing, are left out)."""
    if settings is None:
        return [("notify", "none")]
    lines = [
        (f"notify.{key.name}", key.show(settings))
        for key in NOTIFY_KEY_TABLE
        if key.shown_when(settings)
    ]
    if not settings.has_channels:
        lines.append(("notify", "no channel: nothing is sent"))
    return lines


def notify_json(settings: NotifySettings | None) -> dict[str, Any] | None:
    """The task JSON's `notify`: every key of the table, or null when the task has none."""
    if settings is None:
        return None
    return {key.name: key.json(settings) for key in NOTIFY_KEY_TABLE}
