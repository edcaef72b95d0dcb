"""The four ways to notify (README.md#channels): command, webhook, healthchecks, email.

Each sender takes a Delivery and raises ChannelError with a one-line reason when it fails;
the return value is a short account of what happened ("HTTP 200"). Senders may block up to
their timeout: the Notifier runs them off the caller's thread, under a hard deadline.
Processes (the notify command, sendmail) are started through the runner, as every process is.

The senders live in `local_channels` (command, email) and `http_channels` (webhook,
healthchecks); this module names them (SENDERS), picks those a delivery goes to
(`channels_for`). The HTTP senders are imported when a delivery first needs them: urllib's
HTTP client loads ssl and the email parser, 6.6 MB of serve's idle RSS for a feature most
task files never use (docs/performance.md, "Idle memory").
"""

from __future__ import annotations

from collections.abc import Callable

from cronctl.model import NotifySettings
from cronctl.notify.channel_base import ChannelContext, ChannelError
from cronctl.notify.local_channels import find_sendmail, send_command, send_email
from cronctl.notify.message import Delivery

# What the Notifier takes from here; the senders' own helpers stay in their modules.
__all__ = ["SENDERS", "ChannelContext", "ChannelError", "channels_for", "find_sendmail"]


def send_webhook(delivery: Delivery, settings: NotifySettings, context: ChannelContext) -> str:
    from cronctl.notify import http_channels

    return http_channels.send_webhook(delivery, settings, context)


def send_healthchecks(delivery: Delivery, settings: NotifySettings, context: ChannelContext) -> str:
    from cronctl.notify import http_channels

    return http_channels.send_healthchecks(delivery, settings, context)


SENDERS: dict[str, Callable[[Delivery, NotifySettings, ChannelContext], str]] = {
    "command": send_command,
    "webhook": send_webhook,
    "healthchecks": send_healthchecks,
    "email": send_email,
}


def channels_for(delivery: Delivery, settings: NotifySettings) -> list[str]:
    """Return the channels a delivery goes to.

    healthchecks hears about every run that has a ping (its start and its end), whatever
    `on` says: it is a heartbeat, and it alerts by itself when pings stop. The other channels
    send only for an event (already filtered by `on`).
    """
    names = []
    if settings.healthchecks:
        names.append("healthchecks")
    if delivery.phase == "finish" and delivery.event is not None:
        if settings.command:
            names.append("command")
        if settings.webhook:
            names.append("webhook")
        if settings.email:
            names.append("email")
    return names
