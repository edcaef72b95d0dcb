"""Where a run's parts meet, for `run-now` and serve alike.

A run is started by the runner's Executor, recorded through a `RunRecorder` (the history for
`run-now`, serve's shared connection for serve) and heard of by the run listeners: the
Notifier of the tasks' `notify` settings (README, "Notifications"), and for serve its log
lines. `RunPipeline` puts these together once; `cli/runs.py` (run-now) and `serve/daemon.py`
both build one. Each keeps its own signal handling: run-now's Ctrl-C stops its one job,
serve's signals go to the scheduler.

This module sits above `runner` and `notify` and imports both: the runner never imports
notify.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from cronctl.clock import Clock
from cronctl.history import RunRecorder
from cronctl.listeners import EventFanout, RunEvents
from cronctl.model import SmtpSettings
from cronctl.notify.notifier import Notifier
from cronctl.runner.execute import DEFAULT_KILL_GRACE, Executor


class RunPipeline:
    """The Executor and who hears of its runs.

    `listeners`: who hears of every run; None: a Notifier of the tasks' `notify` settings,
    which reads failure streaks from and records its errors in `database` (its own
    connection). `run_log`: a listener told first (serve's log lines). `warn`: where the
    notifier reports a failed notification, one line each. `spool_dir`: the state folder where
    running jobs' output is spooled for `logs` and `top` (cronctl/spool.py).
    """

    def __init__(
        self,
        recorder: RunRecorder,
        *,
        database: str | os.PathLike[str] | None,
        smtp: SmtpSettings | None,
        hidden_variables: frozenset[str],
        clock: Clock,
        warn: Callable[[str], None],
        listeners: RunEvents | None = None,
        run_log: RunEvents | None = None,
        kill_grace: float = DEFAULT_KILL_GRACE,
        environ: Mapping[str, str] | None = None,
        on_output: Callable[[str, bytes], None] | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.notifier: Notifier | None = None
        if listeners is None:
            self.notifier = Notifier(database, smtp=smtp, log=warn, clock=clock)
            listeners = self.notifier
        self.listeners: RunEvents = listeners
        self.events: RunEvents = listeners if run_log is None else EventFanout(run_log, listeners)
        self.executor = Executor(
            recorder,
            clock=clock,
            kill_grace=kill_grace,
            environ=environ,
            on_output=on_output,
            events=self.events,
            hidden_variables=hidden_variables,
            spool_dir=spool_dir,
        )

    def reload(self, smtp: SmtpSettings | None, hidden_variables: frozenset[str]) -> None:
        """Follow a reloaded task file's [defaults.smtp] and its secret variables."""
        self.executor.hidden_variables = hidden_variables
        if self.notifier is not None:
            self.notifier.smtp = smtp

    def close(self, timeout: float) -> None:
        """Send the notifications still queued, waiting up to `timeout` seconds."""
        if self.notifier is not None:
            self.notifier.close(timeout=timeout)
