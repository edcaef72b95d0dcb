"""What is valid but cannot work as written, through the real `cronctl` script: `add` prints
one `warning:` line each (and still writes the task), `check` lists each one (exit 0).
#13: h15 (jitter), h12 (SMTP login without TLS), h19 (also seen: notify without a channel, an
unset webhook_secret_env, a missing working_dir)."""

from __future__ import annotations

import json

import pytest

from cronctl import taskfile
from tests.reliability.cfg_helpers import cfg_run

SMTP_PLAIN = '[defaults.smtp]\nhost = "127.0.0.1"\nuser = "me"\npassword_env = "PW"\n'
HOOK = "https://hooks.example.org/x"
WARNING_CASES = [
    # (id, text of the file before `add`, add's options, environment, warning or None)
    (
        "h15_every",
        "",
        ["@every 1h", "--jitter", "1h"],
        {},
        "jitter 1h is not shorter than the gap between two of its slots (1h)",
    ),
    ("h15_every_under", "", ["@every 1h", "--jitter", "59m"], {}, None),
    (
        "h15_cron",
        "",
        ["*/5 * * * *", "--jitter", "10m"],
        {},
        "jitter 10m is not shorter than the gap between two of its slots (5m)",
    ),
    ("h15_over_midnight", "", ["0 0,23 * * *", "--jitter", "1h"], {}, "(1h)"),
    ("h15_daily_under", "", ["0 0,23 * * *", "--jitter", "59m"], {}, None),
    ("h15_dst_day", "", ["0 1,3 * * *", "--tz", "America/New_York", "--jitter", "1h"], {}, "(1h)"),
    ("h15_no_dst", "", ["0 1,3 * * *", "--tz", "UTC", "--jitter", "1h"], {}, None),
    ("h15_reboot", "", ["@reboot", "--jitter", "1d"], {}, None),
    (
        "h19_no_channel",
        "",
        ["@daily", "--notify-on", "failure"],
        {},
        "notify.on (failure) has no channel",
    ),
    ("h19_channel", "", ["@daily", "--notify-on", "failure", "--notify-command", "true"], {}, None),
    (
        "h19_secret_unset",
        '[defaults.notify]\nwebhook_secret_env = "H19_HOOK_SECRET"\n',
        ["@daily", "--notify-webhook", HOOK],
        {"H19_HOOK_SECRET": None},
        "the variable H19_HOOK_SECRET is not set here",
    ),
    (
        "h19_secret_set",
        '[defaults.notify]\nwebhook_secret_env = "H19_HOOK_SECRET"\n',
        ["@daily", "--notify-webhook", HOOK],
        {"H19_HOOK_SECRET": "s3"},
        None,
    ),
    (
        "h19_secret_empty",
        '[defaults.notify]\nwebhook_secret_env = "H19_HOOK_SECRET"\n',
        ["@daily", "--notify-webhook", HOOK],
        {"H19_HOOK_SECRET": ""},
        "H19_HOOK_SECRET is not set",
    ),
    (
        "h19_no_folder",
        "",
        ["@daily", "--working-dir", "/nonexistent/h19"],
        {},
        "working_dir /nonexistent/h19 does not exist",
    ),
    (
        "h19_a_file",
        "",
        ["@daily", "--working-dir", "/etc/hostname"],
        {},
        "working_dir /etc/hostname does not exist (or is not a folder)",
    ),
    ("h19_folder", "", ["@daily", "--working-dir", "/tmp"], {}, None),
    (
        "h12_plain_login",
        SMTP_PLAIN,
        ["@daily", "--notify-email", "me@example.org"],
        {},
        "without TLS would send the password in clear text",
    ),
    (
        "h12_starttls",
        SMTP_PLAIN + "starttls = true\n",
        ["@daily", "--notify-email", "me@example.org"],
        {},
        None,
    ),
    (
        "h12_ssl",
        SMTP_PLAIN + "ssl = true\n",
        ["@daily", "--notify-email", "me@example.org"],
        {},
        None,
    ),
    (
        "h12_allowed",
        SMTP_PLAIN + "allow_insecure_auth = true\n",
        ["@daily", "--notify-email", "me@example.org"],
        {},
        None,
    ),
]


def add_then_check(tasks_path, cronctl_exe, before, options, env, warning) -> None:
    """`add` prints the warning once and writes the task; `check` prints it once, exit 0."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(before)
    schedule, *rest = options
    added = cfg_run(cronctl_exe, "add", "x", schedule, "true", *rest, env=env)
    assert added.returncode == 0, added.stderr
    assert "x" in taskfile.load(tasks_path).tasks  # written all the same
    warnings = [line for line in added.stderr.splitlines() if line.startswith("warning:")]
    checked = cfg_run(cronctl_exe, "check", env=env)
    assert checked.returncode == 0, checked.stderr
    check_warnings = [line for line in checked.stderr.splitlines() if line.startswith("warning:")]
    if warning is None:
        assert warnings == [] and check_warnings == [], (added.stderr, checked.stderr)
        return
    assert len(warnings) == 1 and warning in warnings[0], added.stderr
    # The SMTP login is the file's: `check` names [defaults.smtp] rather than the task.
    subject = "warning: [defaults.smtp]: " if "SMTP" in warnings[0] else "warning: task 'x': "
    assert len(check_warnings) == 1 and check_warnings[0].startswith(subject), checked.stderr
    assert warning in check_warnings[0], checked.stderr


@pytest.mark.parametrize(
    ("before", "options", "env", "warning"),
    [case[1:] for case in WARNING_CASES if case[0].startswith("h15_")],
    ids=[case[0] for case in WARNING_CASES if case[0].startswith("h15_")],
)
def test_h15_add_and_check_warn_when_jitter_reaches_the_gap_between_slots(
    tasks_path, cronctl_exe, before, options, env, warning
):
    add_then_check(tasks_path, cronctl_exe, before, options, env, warning)


@pytest.mark.parametrize(
    ("before", "options", "env", "warning"),
    [case[1:] for case in WARNING_CASES if case[0].startswith("h12_")],
    ids=[case[0] for case in WARNING_CASES if case[0].startswith("h12_")],
)
def test_h12_add_and_check_flag_a_plain_text_smtp_login(
    tasks_path, cronctl_exe, before, options, env, warning
):
    add_then_check(tasks_path, cronctl_exe, before, options, env, warning)


@pytest.mark.parametrize(
    ("before", "options", "env", "warning"),
    [case[1:] for case in WARNING_CASES if case[0].startswith("h19_")],
    ids=[case[0] for case in WARNING_CASES if case[0].startswith("h19_")],
)
def test_h19_add_and_check_warn_about_what_cannot_work(
    tasks_path, cronctl_exe, before, options, env, warning
):
    add_then_check(tasks_path, cronctl_exe, before, options, env, warning)


def test_h12_check_flags_a_plain_text_smtp_login_even_without_email_tasks(tasks_path, cronctl_exe):
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(SMTP_PLAIN + '[tasks.x]\nschedule = "@daily"\ncommand = "true"\n')
    checked = cfg_run(cronctl_exe, "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines()[0] == (
        "warning: [defaults.smtp]: mail is never sent: an SMTP login of 'me' to 127.0.0.1:25"
        " without TLS would send the password in clear text; set starttls = true (or ssl ="
        " true) in [defaults.smtp], or allow_insecure_auth = true to log in anyway"
    )
    as_json = json.loads(cfg_run(cronctl_exe, "check", "--json").stdout)
    assert as_json["valid"] is True
    assert [w["task"] for w in as_json["warnings"]] == [None]
