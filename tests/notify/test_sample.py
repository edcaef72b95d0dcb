"""`cronctl notify-test` sends a sample that says it is one (issue 14, item 11): the headline
(a mail's subject, a Slack message's first line) starts "cronctl test:", the webhook and notify
command JSON carry `"test": true` and `"event": "test"`. Through the real command."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess

import pytest


@pytest.mark.parametrize("webhook_format", ["json", "slack"])
def test_c11_notify_test_says_it_is_a_test_on_every_channel(
    cronctl_exe, tasks_path, tmp_path, web, smtp, webhook_format
):
    stdin_copy = tmp_path / "payload.json"
    tasks_path.parent.mkdir(parents=True, exist_ok=True)
    tasks_path.write_text(
        f'[defaults.smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\n\n'
        '[tasks.backup]\nschedule = "@daily"\ncommand = "restic backup"\n\n'
        "[tasks.backup.notify]\n"
        f'command = "cat > {stdin_copy}; echo $CRONCTL_EVENT >> {stdin_copy}.event"\n'
        f'webhook = "{web.url}/hook"\nformat = "{webhook_format}"\n'
        'email = "ops@example.org"\n'
    )
    done = subprocess.run(
        [*cronctl_exe, "notify-test", "backup"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr
    [message] = smtp.messages
    subject = str(email.message_from_bytes(message[2], policy=email.policy.default)["Subject"])
    assert subject.startswith("cronctl test: backup failed (exit status 1) on "), subject
    assert subject.endswith("(a sample; the task did not run)")
    [request] = web.requests
    body = json.loads(request.body)
    if webhook_format == "slack":
        assert body["text"].startswith("cronctl test: backup failed")
    else:
        assert body["test"] is True and body["event"] == "test"
    payload = json.loads(stdin_copy.read_text())
    assert payload["test"] is True and payload["event"] == "test"
    assert (tmp_path / "payload.json.event").read_text() == "test\n"
