"""The four ways to notify (README.md#channels): command, webhook, healthchecks, email.

Each sender takes a Delivery and raises ChannelError with a one-line reason when it fails;
the return value is a short account of what happened ("HTTP 200"). Senders may block up to
their timeout: the Notifier runs them off the caller's thread, under a hard deadline.
Processes (the notify command, sendmail) are started through the runner, as every process is.

The senders live in `local_channels` (command, email) and `http_channels` (webhook,
healthchecks); this module names them (SENDERS), picks those a delivery goes to
(`channels_for`), and keeps the names the Notifier and callers import from here.
"""

from __future__ import annotations

from collections.abc import Callable

from cronctl.model import NotifySettings
from cronctl.notify.channel_base import ChannelContext, ChannelError
from cronctl.notify.http_channels import (
    HTTP_ATTEMPTS,
    HTTP_BACKOFF,
    HTTP_MIN_TRY,
    SIGNATURE_HEADER,
    http_request,
    ping_suffix,
    ping_url,
    run_uuid,
    send_healthchecks,
    send_webhook,
    signature,
)
from cronctl.notify.local_channels import (
    POSIX_SHELLS,
    SENDMAIL_PATHS,
    command_environment,
    find_sendmail,
    send_command,
    send_email,
)
from cronctl.notify.message import Delivery

__all__ = [
    "HTTP_ATTEMPTS",
    "HTTP_BACKOFF",
    "HTTP_MIN_TRY",
    "POSIX_SHELLS",
    "SENDERS",
    "SENDMAIL_PATHS",
    "SIGNATURE_HEADER",
    "ChannelContext",
    "ChannelError",
    "channels_for",
    "command_environment",
    "find_sendmail",
    "http_request",
    "ping_suffix",
    "ping_url",
    "run_uuid",
    "send_command",
    "send_email",
    "send_healthchecks",
    "send_webhook",
    "signature",
]


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
