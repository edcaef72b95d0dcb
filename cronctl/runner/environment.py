"""The environment of what cronctl starts: jobs, `when` conditions, notify commands, sendmail.

Each gets the caller's environment without the variables of serve's own supervisor, then
(jobs and notify commands) the task's `env`, then cronctl's CRONCTL_* variables, which
always win. Times in them are ISO 8601 in the task's zone, "" when there is none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

from cronctl.model import Task
from cronctl.records import Trigger
from cronctl.runner.envfile import read_env_files

# Variables of serve's supervisor (systemd's notify socket, watchdog and socket activation):
# meant for serve alone, they must not leak into anything it starts.
SUPERVISOR_VARIABLES = ("NOTIFY_SOCKET",)
SUPERVISOR_PREFIXES = ("WATCHDOG_", "LISTEN_")


def inherited_environment(
    base: Mapping[str, str], hidden: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Return `base` without serve's supervisor variables and without the `hidden` ones (the
    variables that hold the task file's secrets: a job that prints its environment must not
    put an SMTP password or a webhook signing key into the history)."""
    return {
        key: value
        for key, value in base.items()
        if key not in SUPERVISOR_VARIABLES
        and not key.startswith(SUPERVISOR_PREFIXES)
        and key not in hidden
    }


def run_variables(
    task: Task, *, run_id: int, trigger: str, attempt: int, scheduled_at: datetime | None
) -> dict[str, str]:
    """Return the CRONCTL_* variables that describe a run, shared by its job and notify command."""
    return {
        "CRONCTL_TASK": task.name,
        "CRONCTL_RUN_ID": str(run_id),
        "CRONCTL_TRIGGER": str(trigger),
        "CRONCTL_ATTEMPT": str(attempt),
        "CRONCTL_SCHEDULED_AT": local_iso(task, scheduled_at),
    }


def local_iso(task: Task, moment: datetime | None) -> str:
    return moment.astimezone(task.parsed_zone).isoformat() if moment else ""


def job_environment(
    task: Task,
    *,
    run_id: int,
    trigger: Trigger,
    attempt: int,
    scheduled_at: datetime | None,
    last_success_at: datetime | None,
    base: Mapping[str, str] | None = None,
    hidden: frozenset[str] = frozenset(),
    inherited: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the job's environment: the caller's less its `hidden` (secret) variables, the
    task's env files (read now: a rotated secret counts from the next run), its `env`, then
    cronctl's variables. Raises EnvFileError when an env file cannot be used. `inherited`:
    the caller's environment already filtered (`inherited_environment`), used instead of
    `base` and `hidden`."""
    if inherited is not None:
        env = dict(inherited)
    else:
        env = inherited_environment(os.environ if base is None else base, hidden)
    if task.env_file:
        env.update(read_env_files(task.env_file))
    env.update(task.env)
    env.update(
        run_variables(
            task, run_id=run_id, trigger=trigger, attempt=attempt, scheduled_at=scheduled_at
        )
    )
    env["CRONCTL_LAST_SUCCESS_AT"] = local_iso(task, last_success_at)
    return env
