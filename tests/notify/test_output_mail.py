"""Mail on output, as cron does (issue 16, item 4): through the real `cronctl run-now` and a
real SMTP server on loopback, one mail for a run that printed, none for a silent one."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess

import pytest


def _mails(smtp) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
        for _, _, raw in smtp.messages
    ]


@pytest.mark.parametrize(
    ("command", "subject_end", "body_has", "exit_code"),
    [
        ("echo 'disk at 91%'", "backup succeeded with output on", "disk at 91%", 0),
        (
            "echo 'restic: locked' >&2; exit 3",
            "backup failed (exit status 3) on",
            "restic: locked",
            3,  # run-now exits with the job's status
        ),
        ("true", None, None, 0),
    ],
)
def test_j4_run_now_mails_what_the_job_printed(
    cronctl_exe, tasks_path, smtp, command, subject_end, body_has, exit_code
):
    tasks_path.parent.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(
        f'[defaults.smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\n\n'
        f'[tasks.backup]\nschedule = "@daily"\ncommand = "{command}"\n\n'
        '[tasks.backup.notify]\non = ["output", "failure"]\nemail = "ops@example.org"\n'
    )
    done = subprocess.run(
        [*cronctl_exe, "run-now", "backup"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert done.returncode == exit_code, done.stderr
    mails = _mails(smtp)
    if subject_end is None:
        assert mails == []
        return
    [mail] = mails
    assert subject_end in str(mail["Subject"])
    assert body_has in mail.get_body().get_content()
