"""Notifications of runs (SPEC section 6): which event a run triggers, and the channels.

`Notifier` is the RunEvents listener that serve and `run-now` attach to the Executor. It is
imported on first use: `cronctl.notify.rules` (used by `status`) must not pay for smtplib,
urllib and ssl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronctl.notify.notifier import ChannelResult as ChannelResult
    from cronctl.notify.notifier import Notifier as Notifier

_LAZY = {"ChannelResult", "Notifier"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from cronctl.notify import notifier

        return getattr(notifier, name)
    raise AttributeError(f"module 'cronctl.notify' has no attribute {name!r}")


__all__ = ["ChannelResult", "Notifier"]
