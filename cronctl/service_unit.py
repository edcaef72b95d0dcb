"""`cronctl service`: the systemd user unit that runs `cronctl serve`.

The unit is generated, not shipped: it names the absolute path of the cronctl that writes it
(pipx, `uv tool`, a venv all put it somewhere else) and the task file and database in use.
Installing writes `~/.config/systemd/user/cronctl.service` and asks the user manager to reload
(and with `--now` to enable and start it). Nothing here fails because systemd is missing: each
step reports what happened, and the CLI prints one line for it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cronctl.errors import CronctlError, ExitCode, UsageError
from cronctl.export import replace_file
from cronctl.export.systemd import env_assignment, exec_line
from cronctl.locations import MEMORY, Locations, masked
from cronctl.runner.tools import ToolResult, run_tool
from cronctl.serve import GRACE as SERVE_GRACE
from cronctl.serve import KILL_GRACE
from cronctl.serve import NOTIFY_FLUSH_SECONDS as NOTIFY_FLUSH

UNIT = "cronctl.service"
STOP_MARGIN = 5


class Runner(Protocol):
    """How a tool is run (runner.tools.run_tool; tests pass a stand-in for systemd)."""

    def __call__(
        self, argv: Sequence[str], *, timeout: float = ..., env: Mapping[str, str] | None = ...
    ) -> ToolResult: ...


def unit_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the folder of user units: $XDG_CONFIG_HOME/systemd/user (absolute paths only)."""
    env = os.environ if environ is None else environ
    config = env.get("XDG_CONFIG_HOME", "")
    base = (
        Path(config) if os.path.isabs(config) else Path(env.get("HOME") or Path.home()) / ".config"
    )
    return base / "systemd" / "user"


def unit_path(environ: Mapping[str, str] | None = None) -> Path:
    return unit_dir(environ) / UNIT


def executable(
    argv0: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    python: str = sys.executable,
) -> list[str]:
    """Return the command that starts this cronctl: its script, else `python -m cronctl`.

    The script path is made absolute but symlinks are kept: pipx and `uv tool` link
    ~/.local/bin/cronctl to a versioned venv, and the link survives upgrades.
    """
    candidate = sys.argv[0] if argv0 is None else argv0
    if candidate and os.path.basename(candidate) == "cronctl":
        path = candidate if os.sep in candidate else which(candidate)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return [os.path.abspath(path)]
    sibling = Path(python).with_name("cronctl")
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return [str(sibling.absolute())]
    found = which("cronctl")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(python), "-m", "cronctl"]


def unit_text(command: Sequence[str], locations: Locations) -> str:
    """Return the text of cronctl.service for `command serve` with these files."""
    if locations.db == MEMORY:
        raise UsageError(
            "the service needs a history database file, not :memory:",
            hint="use --db PATH or CRONCTL_DB",
        )
    if masked(locations.db) != locations.db:
        # A unit file is readable by every user of the machine (0644, like systemd's own).
        raise UsageError(
            f"the database URL holds a password, which the unit would show: {masked(locations.db)}",
            hint="leave it out of the URL: libpq reads PGPASSWORD, ~/.pgpass or a service file",
        )
    # systemd is the backstop: a stop must outlast all of serve's own shutdown.
    stop_timeout = SERVE_GRACE + KILL_GRACE + NOTIFY_FLUSH + STOP_MARGIN
    lines = [
        "# Written by `cronctl service install`; run it again after moving cronctl or its files.",
        "[Unit]",
        "Description=cronctl task scheduler",
        "Documentation=man:cronctl(1)",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_line([*command, 'serve'])}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=5s",
        # Another serve holds the lock, or the task file is invalid: a restart would not help.
        f"RestartPreventExitStatus={int(ExitCode.TEMPFAIL)} {int(ExitCode.CONFIG)}",
        "KillMode=mixed",
        f"TimeoutStopSec={stop_timeout:g}s",
        f"Environment={env_assignment('CRONCTL_TASKS', str(locations.tasks_file))}",
        f"Environment={env_assignment('CRONCTL_DB', locations.db)}",
        "Environment=PYTHONUNBUFFERED=1",
        "SyslogIdentifier=cronctl",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Talking to systemd


def user_name() -> str:

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def tool_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for `systemctl --user`: it finds the manager via XDG_RUNTIME_DIR.

    Shells without a login session (su, cron, some ssh setups) lack it though the folder exists.
    """
    env = dict(os.environ if environ is None else environ)
    if not env.get("XDG_RUNTIME_DIR"):
        runtime = f"/run/user/{os.getuid()}"
        if os.path.isdir(runtime):
            env["XDG_RUNTIME_DIR"] = runtime
    return env


@dataclass(frozen=True)
class Step:
    """One thing done or tried, and how it went."""

    action: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    unit_path: Path
    steps: list[Step] = field(default_factory=list)
    systemctl: bool = True
    linger: bool | None = None
    user: str = ""

    def failed(self) -> list[Step]:
        return [step for step in self.steps if not step.ok]


def _step(action: str, result: ToolResult) -> Step:
    """The Step of a systemctl call: its message only when it failed."""
    return Step(action, result.ok, "" if result.ok else result.message())


def _runner(run: Runner | None) -> Runner:
    return run_tool if run is None else run


def systemctl(
    args: Sequence[str], *, run: Runner | None = None, environ: Mapping[str, str] | None = None
) -> ToolResult:
    return _runner(run)(["systemctl", "--user", *args], env=tool_environment(environ), timeout=30)


def has_systemctl(environ: Mapping[str, str] | None = None) -> bool:
    return shutil.which("systemctl", path=tool_environment(environ).get("PATH")) is not None


def linger_enabled(
    user: str, *, run: Runner | None = None, linger_dir: str = "/var/lib/systemd/linger"
) -> bool | None:
    """Return whether `user` has lingering on (their manager runs without a session).

    None when it cannot be told.
    """
    result = _runner(run)(
        ["loginctl", "show-user", user, "--property=Linger", "--value"], timeout=10
    )
    answer = result.stdout.strip().lower()
    if result.ok and answer in ("yes", "no"):
        return answer == "yes"
    if os.path.exists(os.path.join(linger_dir, user)):
        return True
    if os.path.isdir(linger_dir):
        return False
    return None


def write_unit(path: Path, text: str) -> bool:
    """Write the unit atomically, through no symbolic link (`replace_file`), 0644 (it holds
    paths, no secrets); return whether its text changed. Before: a link planted at its
    temporary name `.cronctl.service.tmp` was followed, and its target written and chmodded."""
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text, 0o644)
    return True


def install(
    locations: Locations,
    *,
    now: bool = False,
    command: Sequence[str] | None = None,
    run: Runner | None = None,
    environ: Mapping[str, str] | None = None,
) -> Report:
    """Write the unit, reload the user manager, and with `now` enable and start the service."""
    path = unit_path(environ)
    report = Report(path, user=user_name())
    text = unit_text(command or executable(), locations)
    try:
        changed = write_unit(path, text)
    except OSError as exc:
        raise CronctlError(f"cannot write {path}: {exc.strerror or exc}") from None
    report.steps.append(Step("wrote" if changed else "unchanged", True, str(path)))
    if not has_systemctl(environ):
        report.systemctl = False
        if now:
            report.steps.append(Step("start", False, "systemctl not found"))
        return report
    reload = systemctl(["daemon-reload"], run=run, environ=environ)
    report.steps.append(_step("daemon-reload", reload))
    if now and reload.ok:
        started = systemctl(["enable", "--now", UNIT], run=run, environ=environ)
        report.steps.append(_step("enable --now", started))
    elif now:
        # No manager to talk to (no login session): enabling works on the files alone, so the
        # service starts with the manager next time; starting it now cannot happen.
        enabled = systemctl(["enable", UNIT], run=run, environ=environ)
        report.steps.append(_step("enable", enabled))
        report.steps.append(Step("start", False, reload.message()))
    report.linger = linger_enabled(report.user, run=run)
    return report


def uninstall(*, run: Runner | None = None, environ: Mapping[str, str] | None = None) -> Report:
    """Stop and disable the service, remove the unit, and reload the user manager."""
    path = unit_path(environ)
    report = Report(path, user=user_name())
    found = has_systemctl(environ)
    report.systemctl = found
    if found and path.exists():
        stopped = systemctl(["disable", "--now", UNIT], run=run, environ=environ)
        if not stopped.ok:  # no manager running: disabling works on the files alone
            disabled = systemctl(["disable", UNIT], run=run, environ=environ)
            report.steps.append(_step("disable", disabled))
        else:
            report.steps.append(Step("disable --now", True))
    if path.exists():
        try:
            path.unlink()
        except OSError as exc:
            raise CronctlError(f"cannot remove {path}: {exc.strerror or exc}") from None
        report.steps.append(Step("removed", True, str(path)))
    else:
        report.steps.append(Step("absent", True, str(path)))
    if found:
        reload = systemctl(["daemon-reload"], run=run, environ=environ)
        report.steps.append(_step("daemon-reload", reload))
    return report


@dataclass(frozen=True)
class Status:
    unit_path: Path
    installed: bool
    up_to_date: bool | None  # None when not installed
    enabled: str | None  # systemctl is-enabled: enabled, disabled, ...; None if unknown
    active: str | None  # systemctl is-active: active, inactive, failed, ...; None if unknown
    linger: bool | None
    systemctl: bool
    problem: str | None = None  # why systemd could not be asked

    def as_json(self) -> dict[str, object]:
        return {
            "unit_file": str(self.unit_path),
            "installed": self.installed,
            "up_to_date": self.up_to_date,
            "enabled": self.enabled,
            "active": self.active,
            "linger": self.linger,
            "systemd": self.systemctl and self.problem is None,
            "problem": self.problem,
        }


_KNOWN_ENABLED = {
    "enabled",
    "enabled-runtime",
    "linked",
    "linked-runtime",
    "alias",
    "masked",
    "masked-runtime",
    "static",
    "indirect",
    "disabled",
    "generated",
    "transient",
    "bad",
    "not-found",
}
_KNOWN_ACTIVE = {
    "active",
    "reloading",
    "inactive",
    "failed",
    "activating",
    "deactivating",
    "maintenance",
}


def _first_line(result: ToolResult) -> str:
    """The answer of `systemctl is-enabled` / `is-active`: the first line of its output."""
    text = result.stdout.strip()
    return text.splitlines()[0] if text else ""


def status(
    locations: Locations,
    *,
    command: Sequence[str] | None = None,
    run: Runner | None = None,
    environ: Mapping[str, str] | None = None,
) -> Status:
    """Return whether the unit is installed, current, enabled and running."""
    path = unit_path(environ)
    installed = path.is_file()
    up_to_date = None
    if installed:
        try:
            up_to_date = path.read_text(encoding="utf-8") == unit_text(
                command or executable(), locations
            )
        except (OSError, UsageError):
            up_to_date = False
    found = has_systemctl(environ)
    enabled = active = None
    problem = None
    if found:
        answer = systemctl(["is-enabled", UNIT], run=run, environ=environ)
        word = _first_line(answer)
        if word in _KNOWN_ENABLED:
            enabled = word
        elif not installed:
            enabled = "not-found"
        answer = systemctl(["is-active", UNIT], run=run, environ=environ)
        word = _first_line(answer)
        if word in _KNOWN_ACTIVE and "bus" not in answer.stderr.lower():
            active = word
        else:
            problem = answer.message()
    else:
        problem = "systemctl not found"
    return Status(
        path,
        installed,
        up_to_date,
        enabled,
        active,
        linger_enabled(user_name(), run=run),
        found,
        problem,
    )
