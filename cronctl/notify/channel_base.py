"""What every channel shares: the error a sender raises, and the context it is given.

Its own module so that the channel modules (`http_channels`, `local_channels`) and their
registry (`channels`) import it without importing each other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.model import SmtpSettings


class ChannelError(Exception):
    """A notification that could not be delivered; the message is one line."""


@dataclass(frozen=True)
class ChannelContext:
    """What senders need besides the delivery: mail settings, the environment, a clock.

    `smtp` is None when the task file has no [defaults.smtp]: mail then goes through
    `sendmail` when there is one, else to an SMTP server on localhost:25.
    """

    smtp: SmtpSettings | None = None
    sendmail: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Clock = SYSTEM_CLOCK
