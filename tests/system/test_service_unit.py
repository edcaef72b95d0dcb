"""`cronctl service`: the user unit, checked by systemd-analyze; install, uninstall, status."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl import service_unit as service
from cronctl.export.systemd import env_assignment, exec_line
from cronctl.locations import Locations
from cronctl.runner.tools import ToolResult

from .conftest import make_task  # noqa: F401  (keeps the helper import path in one place)


def real_cronctl() -> str:
    return service.executable()[0]


def locations(tmp_path: Path) -> Locations:
    return Locations(tmp_path / "tasks.toml", str(tmp_path / "state" / "history.db"))


def verify(systemd_analyze: str, *units: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [systemd_analyze, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        cwd=units[0].parent,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        check=False,
    )


# ---------------------------------------------------------------------------------------------
# The unit text


def test_unit_runs_serve_with_the_files_in_use(tmp_path):
    text = service.unit_text(["/opt/cronctl/bin/cronctl"], locations(tmp_path))
    lines = text.splitlines()
    assert "ExecStart=/opt/cronctl/bin/cronctl serve" in lines
    for setting in (
        "Type=notify",
        "NotifyAccess=main",
        "KillMode=mixed",
        "Restart=on-failure",
        "RestartPreventExitStatus=75 78",
        "WantedBy=default.target",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert setting in lines
    assert f'Environment="CRONCTL_TASKS={tmp_path}/tasks.toml"' in lines
    assert f'Environment="CRONCTL_DB={tmp_path}/state/history.db"' in lines
    # Longer than serve's grace (30 s) plus its kill grace (10 s): systemd is only the backstop.
    stop = next(line for line in lines if line.startswith("TimeoutStopSec="))
    assert int(stop.removeprefix("TimeoutStopSec=").removesuffix("s")) > 30 + 10
    assert not any("#" in line for line in lines if "=" in line and not line.startswith("#"))


def test_a_memory_database_cannot_be_a_service(tmp_path):
    from cronctl.errors import UsageError

    with pytest.raises(UsageError, match="memory"):
        service.unit_text(["/bin/cronctl"], Locations(tmp_path / "t.toml", ":memory:"))


def test_a_database_url_is_pinned_but_never_its_password(tmp_path):
    from cronctl.errors import UsageError

    url = "postgresql://cron@db.internal:5432/cronctl"
    text = service.unit_text(["/bin/cronctl"], Locations(tmp_path / "t.toml", url, tmp_path))
    assert f'Environment="CRONCTL_DB={url}"' in text.splitlines()
    with pytest.raises(UsageError, match=r"holds a password.*cron:\*\*\*@db") as caught:
        service.unit_text(
            ["/bin/cronctl"], Locations(tmp_path / "t.toml", "postgresql://cron:pw@db/c", tmp_path)
        )
    assert "pw" not in caught.value.message.replace("postgresql", "")


def test_unit_folder_follows_xdg_config_home(tmp_path):
    assert service.unit_path({"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/home/x"}) == (
        tmp_path / "systemd" / "user" / "cronctl.service"
    )
    # The XDG spec says relative paths are ignored.
    assert service.unit_path({"XDG_CONFIG_HOME": "rel", "HOME": "/home/x"}) == Path(
        "/home/x/.config/systemd/user/cronctl.service"
    )


def test_executable_is_the_script_else_python_m(tmp_path):
    script = tmp_path / "bin" / "cronctl"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert service.executable(str(script)) == [str(script)]
    # A symlink (pipx, uv tool) is kept, not resolved: it survives upgrades.
    link = tmp_path / "link" / "cronctl"
    link.parent.mkdir()
    link.symlink_to(script)
    assert service.executable(str(link)) == [str(link)]
    python = tmp_path / "py" / "python3"
    assert service.executable(
        "/usr/lib/python3/pytest", which=lambda _: None, python=str(python)
    ) == [
        str(python),
        "-m",
        "cronctl",
    ]
    beside = tmp_path / "bin" / "python3"
    assert service.executable("pytest", which=lambda _: None, python=str(beside)) == [str(script)]


# ---------------------------------------------------------------------------------------------
# What systemd makes of it


def test_systemd_analyze_verify_accepts_the_unit(tmp_path, systemd_analyze):
    path = tmp_path / "cronctl.service"
    path.write_text(service.unit_text(service.executable(), locations(tmp_path)))
    result = verify(systemd_analyze, path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_verify_accepts_odd_paths_and_finds_the_program(tmp_path, systemd_analyze):
    # A folder name with a space, '$' and '%': wrong quoting makes verify say the program is
    # not executable, or warn about the assignment.
    odd = tmp_path / "my tools $HOME 100%"
    odd.mkdir()
    program = odd / "cronctl"
    program.symlink_to(real_cronctl())
    files = Locations(odd / "tasks \"file\" 'x'.toml", str(odd / "state dir" / "history.db"))
    path = tmp_path / "cronctl.service"
    path.write_text(service.unit_text([str(program)], files))
    result = verify(systemd_analyze, path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_program_path_systemd_refuses_is_started_through_sh(tmp_path, systemd_analyze):
    # systemd refuses quotes and backslashes in the program path itself ("Executable name
    # contains special characters"): such a path is run by /bin/sh -c 'exec "$0" "$@"'.
    odd = tmp_path / 'it\'s \\ "here"'
    odd.mkdir()
    program = odd / "cronctl"
    program.symlink_to(real_cronctl())
    path = tmp_path / "cronctl.service"
    path.write_text(service.unit_text([str(program)], locations(tmp_path)))
    result = verify(systemd_analyze, path)
    assert result.returncode == 0, result.stderr
    exec_start = re.search(r"^ExecStart=(.*)$", path.read_text(), re.M).group(1)
    argv = systemd_words(exec_start, expand_dollar=True)
    assert argv[:3] == ["/bin/sh", "-c", 'exec "$0" "$@"'] and argv[3:] == [str(program), "serve"]
    # And the shell does start it with exactly those arguments.
    ran = subprocess.run(
        [*argv[:3], str(program), "--version"], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0 and ran.stdout.startswith("cronctl ")


def test_verify_reports_the_program_path_we_wrote(tmp_path, systemd_analyze):
    # The oracle: for a program that does not exist, systemd names the path it parsed.
    wanted = str(tmp_path / "no such dir" / "cronctl")
    path = tmp_path / "cronctl.service"
    path.write_text(service.unit_text([wanted], locations(tmp_path)))
    result = verify(systemd_analyze, path)
    assert result.returncode != 0
    assert f"Command {wanted} is not executable" in result.stderr


# A reader of systemd's quoting (systemd.syntax(7), systemd.service(5) "COMMAND LINES"), to
# check exec_line and env_assignment round-trip every string.
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "s": " ",
}


def systemd_words(value: str, *, expand_dollar: bool) -> list[str]:
    value = value.replace("%%", "\0PCT\0")
    assert "%" not in value, "an unescaped specifier"
    value = value.replace("\0PCT\0", "%")
    words, current, i, quote, started = [], [], 0, None, False
    while i < len(value):
        char = value[i]
        if char == "\\":
            nxt = value[i + 1]
            if nxt == "x":
                current.append(chr(int(value[i + 2 : i + 4], 16)))
                i += 4
            else:
                current.append(_ESCAPES[nxt])
                i += 2
            started = True
            continue
        if quote:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'":
            quote, started = char, True
        elif char == " ":
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
        i += 1
    assert quote is None, "unbalanced quotes"
    if started:
        words.append("".join(current))
    if expand_dollar:
        words = [words[0]] + [w.replace("$$", "$") for w in words[1:]]
    return words


text_strategy = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(st.lists(text_strategy, min_size=1, max_size=4))
def test_exec_line_round_trips(arguments):
    argv = ["/bin/sh", *arguments]
    line = exec_line(argv)
    assert "\n" not in line
    assert systemd_words(line, expand_dollar=True) == argv


@settings(max_examples=200, deadline=None)
@given(text_strategy.filter(lambda t: t.strip()))
def test_any_program_path_round_trips(name):
    argv = ["/opt/" + name, "serve"]
    words = systemd_words(exec_line(argv), expand_dollar=True)
    assert words[-2:] == argv
    assert words == argv or words[:3] == ["/bin/sh", "-c", 'exec "$0" "$@"']


@settings(max_examples=300, deadline=None)
@given(text_strategy)
def test_env_assignment_round_trips(value):
    line = env_assignment("NAME", value)
    assert "\n" not in line
    assert systemd_words(line, expand_dollar=False) == [f"NAME={value}"]


# ---------------------------------------------------------------------------------------------
# install, uninstall, status with a recording stand-in for systemctl and loginctl


class FakeSystemd:
    def __init__(self, *, reachable: bool = True, linger: str = "no") -> None:
        self.calls: list[list[str]] = []
        self.reachable = reachable
        self.linger = linger
        self.enabled = False

    def __call__(self, argv, **_kwargs) -> ToolResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "loginctl":
            return ToolResult(0, self.linger + "\n", "")
        command = argv[2:]
        if command[0] == "is-enabled":
            return ToolResult(
                0 if self.enabled else 1, ("enabled" if self.enabled else "disabled") + "\n", ""
            )
        if not self.reachable:
            if command[0] in ("enable", "disable") and "--now" not in command:
                self.enabled = command[0] == "enable"
                return ToolResult(0, "", "")
            return ToolResult(1, "", "Failed to connect to bus: No medium found\n")
        if command[0] == "is-active":
            return ToolResult(
                0 if self.enabled else 3, ("active" if self.enabled else "inactive") + "\n", ""
            )
        if command[0] == "enable":
            self.enabled = True
        if command[0] == "disable":
            self.enabled = False
        return ToolResult(0, "", "")

    def systemctl_calls(self) -> list[str]:
        return [" ".join(c[2:]) for c in self.calls if c[0] == "systemctl"]


@pytest.fixture
def fake(monkeypatch) -> FakeSystemd:
    stand_in = FakeSystemd()
    monkeypatch.setattr(service, "run_tool", stand_in)
    monkeypatch.setattr(service, "has_systemctl", lambda environ=None: True)
    return stand_in


def test_install_now_reloads_enables_and_mentions_linger(cli, isolated_config, fake):
    result = cli("service", "install", "--now")
    assert result.exit_code == 0, result.stderr
    unit = isolated_config / "systemd" / "user" / "cronctl.service"
    assert "Type=notify" in unit.read_text()
    assert fake.systemctl_calls() == ["daemon-reload", "enable --now cronctl.service"]
    assert "Enabled and started" in result.stderr
    assert "loginctl enable-linger" in result.stderr


def test_install_without_now_only_reloads(cli, isolated_config, fake):
    fake.linger = "yes"
    result = cli("service", "install")
    assert result.exit_code == 0
    assert fake.systemctl_calls() == ["daemon-reload"]
    assert "systemctl --user enable --now cronctl.service" in result.stderr
    assert "linger" not in result.stderr
    again = cli("service", "install")
    assert "up to date" in again.stderr


def test_install_now_without_a_user_manager_enables_and_fails_in_one_line(
    cli, isolated_config, fake
):
    fake.reachable = False
    result = cli("service", "install", "--now")
    assert result.exit_code == 1
    assert fake.systemctl_calls() == ["daemon-reload", "enable cronctl.service"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not reachable" in errors[0]
    assert "Traceback" not in result.stderr


def test_status_and_uninstall(cli, isolated_config, fake):
    assert json.loads(cli("service", "status", "--json").stdout)["installed"] is False
    cli("service", "install", "--now")
    data = json.loads(cli("service", "status", "--json").stdout)
    assert data["installed"] and data["up_to_date"] and data["enabled"] == "enabled"
    assert data["active"] == "active" and data["linger"] is False and data["systemd"]
    text = cli("service", "status").stdout
    assert "installed" in text and "active" in text
    # Another task file in use: the installed unit is out of date.
    other = cli("--tasks-file", str(isolated_config / "other.toml"), "service", "status", "--json")
    assert json.loads(other.stdout)["up_to_date"] is False
    result = cli("service", "uninstall")
    assert result.exit_code == 0 and "Removed" in result.stderr
    assert not (isolated_config / "systemd" / "user" / "cronctl.service").exists()
    assert fake.systemctl_calls()[-2:] == ["disable --now cronctl.service", "daemon-reload"]
    assert "Not installed" in cli("service", "uninstall").stderr


def test_without_systemctl_one_clear_line(cli, isolated_config, monkeypatch):
    monkeypatch.setattr(service, "has_systemctl", lambda environ=None: False)
    result = cli("service", "install")
    assert result.exit_code == 0
    assert "systemctl not found" in result.stderr
    result = cli("service", "install", "--now")
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and "systemctl not found" in result.stderr
    data = json.loads(cli("service", "status", "--json").stdout)
    assert data["systemd"] is False and data["problem"] == "systemctl not found"


def test_linger_detection(tmp_path):
    def answer(text, code=0):
        return lambda argv, **kw: ToolResult(code, text, "")

    assert service.linger_enabled("ana", run=answer("yes\n")) is True
    assert service.linger_enabled("ana", run=answer("no\n")) is False
    lingering = tmp_path / "linger"
    lingering.mkdir()
    failing = answer("", code=1)
    assert service.linger_enabled("ana", run=failing, linger_dir=str(lingering)) is False
    (lingering / "ana").touch()
    assert service.linger_enabled("ana", run=failing, linger_dir=str(lingering)) is True
    assert service.linger_enabled("ana", run=failing, linger_dir=str(tmp_path / "none")) is None


# ---------------------------------------------------------------------------------------------
# The real systemctl, kept away from any running user manager


@pytest.fixture
def unreachable_manager(isolated_config, tmp_path, monkeypatch):
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))  # no bus here: nothing real is touched
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    return isolated_config


def test_real_systemctl_without_a_manager(cronctl_exe, unreachable_manager):
    env = dict(os.environ)

    def run(*args):
        return subprocess.run(
            [*cronctl_exe, *args], capture_output=True, text=True, env=env, check=False
        )

    installed = run("service", "install")
    assert installed.returncode == 0, installed.stderr
    assert "not reachable" in installed.stderr and "Traceback" not in installed.stderr
    unit = unreachable_manager / "systemd" / "user" / "cronctl.service"
    assert unit.is_file()
    started = run("service", "install", "--now")
    assert started.returncode == 1
    assert started.stderr.count("error:") == 1
    # systemctl enables on the files alone, so the service starts with the manager next time.
    wants = unreachable_manager / "systemd" / "user" / "default.target.wants" / "cronctl.service"
    assert wants.is_symlink()
    status = json.loads(run("service", "status", "--json").stdout)
    assert status["installed"] and status["enabled"] == "enabled" and status["active"] is None
    removed = run("service", "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not wants.exists()


def test_unit_written_by_the_cli_names_this_python_s_cronctl(cli, isolated_config, fake):
    cli("service", "install")
    unit = (isolated_config / "systemd" / "user" / "cronctl.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    program = systemd_words(exec_start, expand_dollar=True)
    assert program[-1] == "serve"
    assert os.path.isabs(program[0])
    assert program[0] in (str(Path(sys.executable).with_name("cronctl")), sys.executable) or (
        Path(program[0]).name == "cronctl"
    )


def test_stop_timeout_covers_serves_whole_shutdown():
    """systemd must not kill serve while it still does what a stop promises: the jobs' grace,
    the kill grace, and the flush of pending notifications."""
    import inspect

    from cronctl.serve.daemon import NOTIFY_FLUSH_SECONDS, serve
    from cronctl.service_unit import KILL_GRACE, NOTIFY_FLUSH, SERVE_GRACE, STOP_MARGIN

    assert NOTIFY_FLUSH == NOTIFY_FLUSH_SECONDS
    assert SERVE_GRACE + KILL_GRACE + NOTIFY_FLUSH + STOP_MARGIN == 60
    # The unit's arithmetic uses the defaults serve and `cronctl serve` really have.
    parameters = inspect.signature(serve).parameters
    assert (parameters["grace"].default, parameters["kill_grace"].default) == (
        SERVE_GRACE,
        KILL_GRACE,
    )
    pytest.importorskip("typer")
    from cronctl.cli import serve as serve_command

    options = inspect.signature(serve_command.serve).parameters
    assert (options["grace"].default, options["kill_grace"].default) == (SERVE_GRACE, KILL_GRACE)


@pytest.mark.parametrize("planted", ["cronctl.service", ".cronctl.service.tmp"])
def test_h7_install_never_writes_through_a_planted_link(planted, cli, isolated_config, fake):
    """Decided: the unit is written to a new temporary file (O_EXCL, a fresh name) and
    renamed over cronctl.service, so a link planted at the unit's name or at the old fixed
    temporary name is never followed: what it points at is unchanged, the unit is a 0644 file.
    Before: a link at `.cronctl.service.tmp` was followed, its target overwritten and made
    0644."""
    folder = isolated_config / "systemd" / "user"
    folder.mkdir(parents=True)
    outside = isolated_config.parent / "precious.txt"
    outside.write_text("keep me\n")
    outside.chmod(0o600)
    (folder / planted).symlink_to(outside)
    result = cli("service", "install")
    assert result.exit_code == 0, result.stderr
    assert outside.read_text() == "keep me\n"
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600
    unit = folder / "cronctl.service"
    assert not unit.is_symlink() and "Type=notify" in unit.read_text()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
