"""Each channel against a real component on 127.0.0.1: HTTP server, SMTP server, a process."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid

import pytest

from cronctl import taskfile
from cronctl.errors import TaskFileError
from cronctl.model import SmtpSettings
from cronctl.notify.http_channels import HTTP_BACKOFF
from cronctl.notify.message import Delivery
from cronctl.notify.notifier import Notifier
from cronctl.store import HistoryStore
from tests.notify.helpers import make_task, record
from tests.notify.servers import free_port, smtp_server
from tests.reliability.cfg_helpers import cfg_run


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened


def notifier(store=None, **options) -> Notifier:
    options.setdefault("sendmail", None)
    return Notifier(store, synchronous=True, hostname="box", log=lambda _m: None, **options)


def deliver(task, run, channels, event="failure", **options):
    delivery = Delivery(task=task, run=run, phase="finish", event=event, final=True, hostname="box")
    return notifier(**options).deliver(delivery, channels)


# ------------------------------------------------------------------------------ webhook


def test_webhook_posts_the_run_json(store, web):
    task = make_task(notify={"webhook": f"{web.url}/hook/secret-token"})
    run = record(store, exit_code=3)
    [result] = deliver(task, run, ["webhook"])
    assert result.ok and result.detail == "HTTP 200"
    [request] = web.requests
    assert (request.method, request.path) == ("POST", "/hook/secret-token")
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["id"] == run.id and body["task"] == "backup" and body["status"] == "failed"
    assert body["exit_code"] == 3 and body["event"] == "failure" and body["hostname"] == "box"
    assert body["started_at"] == "2026-03-01T12:00:00+00:00"


def test_webhook_slack_format_is_a_text_message(store, web):
    task = make_task(notify={"webhook": f"{web.url}/services/T/B/x", "format": "slack"})
    run = record(store, exit_code=2, stderr=b"disk full\n")
    [result] = deliver(task, run, ["webhook"])
    assert result.ok
    body = json.loads(web.requests[0].body)
    assert list(body) == ["text"]
    assert "backup failed (exit status 2) on box" in body["text"] and "disk full" in body["text"]


def test_h8_slack_text_escapes_its_markup_characters(store, web):
    """Decided (docs/reliability.md, h8): `<`, `>` and `&` from a job's output reach Slack as
    text (&lt; &gt; &amp;, Slack's own escaping), so `<!channel>` pings nobody."""
    task = make_task(notify={"webhook": f"{web.url}/services/T/B/x", "format": "slack"})
    run = record(store, exit_code=2, stderr=b"<!channel> a < b && c > d\n")
    [result] = deliver(task, run, ["webhook"])
    assert result.ok
    text = json.loads(web.requests[0].body)["text"]
    assert "&lt;!channel&gt; a &lt; b &amp;&amp; c &gt; d" in text
    assert "<" not in text and ">" not in text


def test_webhook_error_status_fails_without_showing_the_secret_path(store, web):
    web.status["/hook"] = 500
    task = make_task(notify={"webhook": f"{web.url}/hook/secret-token"})
    [result] = deliver(task, record(store), ["webhook"])
    assert not result.ok
    assert "HTTP 500" in result.detail and "secret-token" not in result.detail


def test_unreachable_webhook_is_tried_again_within_its_timeout(store):
    port = free_port()
    task = make_task(notify={"webhook": f"http://127.0.0.1:{port}/hook", "timeout": 3})
    started = time.monotonic()
    [result] = deliver(task, record(store), ["webhook"])
    assert not result.ok and f"cannot reach 127.0.0.1:{port}" in result.detail
    # A refused connection may be a receiver restarting: three tries, 0.5 s then 1 s apart.
    assert result.detail.endswith("(3 tries)")
    assert HTTP_BACKOFF * 3 <= time.monotonic() - started < 3


# One line a case: answers before the steady one, the steady status, the timeout, then the
# requests expected and the outcome (detail for a success; a part of the error otherwise).
RETRY_CASES = [
    ([(503, {})], 200, 5, 2, "HTTP 200"),
    ([(502, {}), (500, {})], 200, 5, 3, "HTTP 200"),
    ([], 500, 5, 3, "answered HTTP 500 Internal Server Error: OK (3 tries)"),
    ([(429, {"Retry-After": "1"})], 200, 5, 2, "HTTP 200"),
    ([(429, {"Retry-After": "60"})], 200, 5, 1, "answered HTTP 429"),  # longer than the timeout
    ([], 404, 5, 1, "answered HTTP 404 Not Found"),  # a wrong URL stays wrong
    ([], 401, 5, 1, "answered HTTP 401"),
    ([], 503, 1, 1, "answered HTTP 503"),  # no room for a pause and another try
]


@pytest.mark.parametrize(("first", "steady", "timeout", "requests", "outcome"), RETRY_CASES)
def test_webhook_tries_again_when_a_failure_may_pass(
    store, web, first, steady, timeout, requests, outcome
):
    web.first["/hook"] = list(first)
    web.status["/hook"] = steady
    task = make_task(notify={"webhook": f"{web.url}/hook", "timeout": timeout})
    run = record(store)
    started = time.monotonic()
    [result] = deliver(task, run, ["webhook"])
    assert len(web.requests) == requests
    assert (result.detail == outcome) if result.ok else (outcome in result.detail), result.detail
    assert time.monotonic() - started < timeout  # the timeout bounds the tries and the pauses
    assert {json.loads(r.body)["id"] for r in web.requests} == {run.id}  # the same message


def test_webhook_signature_is_an_hmac_of_the_raw_body(store, web):
    secret = "s3cret, not in the file"
    task = make_task(notify={"webhook": f"{web.url}/hook", "webhook_secret_env": "HOOK_SECRET"})
    [result] = deliver(task, record(store), ["webhook"], environ={"HOOK_SECRET": secret})
    assert result.ok
    [request] = web.requests
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Cronctl-Signature"] == f"sha256={expected}"


def test_webhook_without_its_secret_variable_is_not_sent_unsigned(store, web):
    task = make_task(notify={"webhook": f"{web.url}/hook", "webhook_secret_env": "HOOK_SECRET"})
    [result] = deliver(task, record(store), ["webhook"], environ={})
    assert not result.ok and "HOOK_SECRET" in result.detail and "not sent unsigned" in result.detail
    assert web.requests == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('webhook_secret = "abc"', "secrets are never stored in the task file"),
        ('webhook_secret_env = "NOT A NAME"', "is not a valid environment variable name"),
        ("webhook_secret_env = 3", "notify.webhook_secret_env"),
    ],
)
def test_the_webhook_secret_stays_out_of_the_task_file(tmp_path, line, message):
    text = (
        '[tasks.backup]\nschedule = "@daily"\ncommand = "true"\n\n[tasks.backup.notify]\n'
        f'webhook = "https://example.org/hook"\n{line}\n'
    )
    with pytest.raises(TaskFileError) as caught:
        taskfile.parse_text(text, tmp_path / "tasks.toml")
    assert message in caught.value.message


@pytest.mark.parametrize(
    "key, url",
    [
        ("webhook", "ftp://example.org/x"),
        ("healthchecks", "file:///etc/passwd"),
        ("webhook", "hooks.slack.com/services/x"),
    ],
)
def test_a_url_that_is_not_http_is_rejected_by_the_task_file(tmp_path, key, url):
    text = (
        '[tasks.backup]\nschedule = "@daily"\ncommand = "true"\n\n'
        f'[tasks.backup.notify]\n{key} = "{url}"\n'
    )
    with pytest.raises(TaskFileError) as caught:
        taskfile.parse_text(text, tmp_path / "tasks.toml")
    assert f"notify.{key}" in caught.value.message and "http(s)" in caught.value.message
    assert ":6:" in caught.value.message  # the line of the key


# ------------------------------------------------------------------------- healthchecks


def test_healthchecks_ping_is_tried_again_with_the_same_run_id(store, web):
    web.first["/hc"] = [(503, {})]
    task = make_task(notify={"healthchecks": f"{web.url}/hc"})
    [result] = deliver(task, record(store, status="succeeded", exit_code=0), ["healthchecks"])
    assert result.ok and result.detail == "/0: HTTP 200"
    first, second = web.requests
    assert first.path == second.path == "/hc/0" and first.query["rid"] == second.query["rid"]


def test_healthchecks_start_and_exit_status_pings_share_a_run_id(store, web):
    task = make_task(notify={"healthchecks": f"{web.url}/ping/abc?create=1"})
    n = notifier(store.path)
    running_id = store.start_run(
        "backup", "schedule", started_at=record(store, "backup", "succeeded").started_at
    )
    n.run_started(task, store.get_run(running_id))
    store.finish_run(
        running_id, status="failed", finished_at=store.get_run(running_id).started_at, exit_code=3
    )
    n.run_finished(task, store.get_run(running_id), final=True)
    start, end = web.requests
    assert (start.method, start.path) == ("GET", "/ping/abc/start")
    assert (end.method, end.path) == ("POST", "/ping/abc/3")
    assert (
        start.query["rid"] == end.query["rid"]
        and str(uuid.UUID(start.query["rid"][0])) == start.query["rid"][0]
    )
    assert start.query["create"] == ["1"]
    assert b"backup failed (exit status 3)" in end.body


@pytest.mark.parametrize(
    "status, exit_code, final, path",
    [
        ("succeeded", 0, True, "/hc/0"),
        ("failed", 7, True, "/hc/7"),
        ("timed_out", None, True, "/hc/1"),
        ("failed", 7, False, "/hc/log"),  # a retry follows: no state change yet
        ("skipped", None, True, "/hc/log"),
        ("interrupted", None, True, "/hc/log"),
    ],
)
def test_healthchecks_end_ping_per_outcome(store, web, status, exit_code, final, path):
    task = make_task(
        notify={"healthchecks": f"{web.url}/hc", "on": ["missed"]}
    )  # `on` does not apply
    run = record(store, status=status, exit_code=exit_code)
    notifier(store.path).run_finished(task, run, final=final)
    [request] = web.requests
    assert request.path == path
    assert "rid" in request.query


def test_healthchecks_output_body_is_bounded(store, web):
    task = make_task(notify={"healthchecks": f"{web.url}/hc"})
    run = record(store, stderr=b"x" * 500_000)
    notifier(store.path).run_finished(task, run, final=True)
    assert 0 < len(web.requests[0].body) < 12_000


# ------------------------------------------------------------------------------ command


def test_command_gets_the_run_json_on_stdin_and_cronctl_variables(store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    task = make_task(
        notify={"command": 'cat > "$OUT/stdin.json"; env > "$OUT/env.txt"'},
        env={"OUT": str(out)},
        timezone="Europe/Berlin",
    )
    run = record(store, exit_code=4)
    [result] = deliver(task, run, ["command"])
    assert result.ok, result.detail
    payload = json.loads((out / "stdin.json").read_text())
    assert (
        payload["id"] == run.id and payload["status"] == "failed" and payload["event"] == "failure"
    )
    env = dict(
        line.split("=", 1) for line in (out / "env.txt").read_text().splitlines() if "=" in line
    )
    assert env["CRONCTL_TASK"] == "backup" and env["CRONCTL_RUN_ID"] == str(run.id)
    assert env["CRONCTL_STATUS"] == "failed" and env["CRONCTL_EVENT"] == "failure"
    assert env["CRONCTL_TRIGGER"] == "schedule" and env["CRONCTL_ATTEMPT"] == "1"
    assert env["CRONCTL_SCHEDULED_AT"] == "2026-03-01T13:00:00+01:00"  # in the task's zone
    assert env["CRONCTL_EXIT_CODE"] == "4"
    assert not os.path.exists(env["CRONCTL_PAYLOAD"])  # the temporary file is gone


def test_command_that_fails_reports_its_status_and_first_error_line(store):
    task = make_task(notify={"command": "echo 'no route to pager' >&2; exit 3"})
    [result] = deliver(task, record(store), ["command"])
    assert not result.ok
    assert result.detail == "the notify command failed (exit status 3): no route to pager"


def test_command_still_runs_when_the_working_folder_is_gone(store, tmp_path):
    marker = tmp_path / "ran"
    task = make_task(notify={"command": f"touch {marker}"}, working_dir=str(tmp_path / "missing"))
    [result] = deliver(task, record(store, status="error", exit_code=None), ["command"])
    assert result.ok and marker.exists()


# -------------------------------------------------------------------------------- email


def test_email_through_smtp(store, smtp):
    task = make_task(notify={"email": ["ops@example.org", "me@example.org"]})
    settings = SmtpSettings(host=smtp.host, port=smtp.port, sender="cronctl@box.example")
    [result] = deliver(
        task,
        record(store, exit_code=5, stderr=b"restic: repository locked\n"),
        ["email"],
        smtp=settings,
    )
    assert result.ok, result.detail
    [(sender, recipients, raw)] = smtp.messages
    assert sender == "cronctl@box.example" and recipients == ["ops@example.org", "me@example.org"]
    text = raw.decode()
    assert "Subject: cronctl: backup failed (exit status 5) on box" in text
    assert "To: ops@example.org, me@example.org" in text
    assert "restic: repository locked" in text
    assert "Auto-Submitted: auto-generated" in text


def test_email_login_refused_is_reported(store, monkeypatch):
    with smtp_server(accept_login=False) as server:
        settings = SmtpSettings(
            host=server.host,
            port=server.port,
            user="me",
            password_env="CRONCTL_TEST_SMTP_PASSWORD",
            allow_insecure_auth=True,  # the test server has no TLS (h12)
        )
        task = make_task(notify={"email": "ops@example.org"})
        [result] = deliver(
            task,
            record(store),
            ["email"],
            smtp=settings,
            environ={"CRONCTL_TEST_SMTP_PASSWORD": "wrong"},
        )
        assert not result.ok
        assert "refused the login of 'me'" in result.detail and "535" in result.detail
        assert server.logins and not server.messages
        assert "wrong" not in result.detail


def test_email_login_accepted(store):
    with smtp_server(accept_login=True) as server:
        settings = SmtpSettings(
            host=server.host,
            port=server.port,
            user="me",
            password_env="PW",
            allow_insecure_auth=True,  # the test server has no TLS (h12)
        )
        task = make_task(notify={"email": "ops@example.org"})
        [result] = deliver(task, record(store), ["email"], smtp=settings, environ={"PW": "secret"})
        assert result.ok, result.detail
        assert server.logins[0][1] == b"me" and len(server.messages) == 1


def test_email_without_the_password_variable_fails_before_connecting(store):
    settings = SmtpSettings(
        host="127.0.0.1",
        port=free_port(),
        user="me",
        password_env="NOT_SET_ANYWHERE",
        allow_insecure_auth=True,
    )
    task = make_task(notify={"email": "ops@example.org"})
    [result] = deliver(task, record(store), ["email"], smtp=settings, environ={})
    assert not result.ok and "$NOT_SET_ANYWHERE gives no password" in result.detail


@pytest.mark.parametrize("password_env", ["PW", None])
def test_h12_a_login_without_tls_is_refused_before_connecting(store, tmp_path, password_env):
    """Before: with `user` set and neither starttls nor ssl, cronctl sent AUTH (and so the
    password) in clear text. Now nothing is sent, not even a greeting, and the reason, recorded
    on the run as every notification failure is, names the fix."""
    with smtp_server(accept_login=True) as server:
        settings = SmtpSettings(
            host=server.host, port=server.port, user="me", password_env=password_env
        )
        task = make_task(notify={"email": "ops@example.org"})
        run = record(store)
        log: list[str] = []
        sender = Notifier(
            tmp_path / "history.db",
            smtp=settings,
            sendmail=None,
            log=log.append,
            environ={"PW": "pw"},
        )
        sender.run_finished(task, run, final=True)
        assert sender.close(timeout=10)
        assert server.greetings == [] and server.logins == [] and server.messages == []
    error = store.get_run(run.id).notify_error
    assert error == (
        f"email: not sent: an SMTP login of 'me' to 127.0.0.1:{server.port} without TLS would"
        " send the password in clear text; set starttls = true (or ssl = true) in"
        " [defaults.smtp], or allow_insecure_auth = true to log in anyway"
    )
    assert "pw" not in error and any("clear text" in line for line in log)


def test_h12_allow_insecure_auth_logs_in_without_tls_as_before(store):
    with smtp_server(accept_login=True) as server:
        settings = SmtpSettings(
            host=server.host,
            port=server.port,
            user="me",
            password_env="PW",
            allow_insecure_auth=True,
        )
        task = make_task(notify={"email": "ops@example.org"})
        [result] = deliver(task, record(store), ["email"], smtp=settings, environ={"PW": "pw"})
        assert result.ok, result.detail
        assert server.greetings and len(server.messages) == 1
        assert [login for _mechanism, login in server.logins] == [b"me"]


def test_h12_without_a_user_mail_goes_out_without_tls_as_before(store, smtp):
    settings = SmtpSettings(host=smtp.host, port=smtp.port)
    task = make_task(notify={"email": "ops@example.org"})
    [result] = deliver(task, record(store), ["email"], smtp=settings)
    assert result.ok, result.detail
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("allowed", [False, True])
def test_h12_notify_test_shows_the_refusal_or_logs_in_when_allowed(
    tasks_path, cronctl_exe, allowed
):
    with smtp_server(accept_login=True) as server:
        tasks_path.parent.mkdir(parents=True)
        tasks_path.write_text(
            f'[defaults.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "me"\n'
            f'password_env = "H12_PW"\nallow_insecure_auth = {str(allowed).lower()}\n'
            '[tasks.x]\nschedule = "@daily"\ncommand = "true"\n'
            '[tasks.x.notify]\nemail = "ops@example.org"\n'
        )
        result = cfg_run(cronctl_exe, "notify-test", "x", env={"H12_PW": "pw-h12"})
        if allowed:
            assert result.returncode == 0, result.stderr
            assert [login for _mechanism, login in server.logins] == [b"me"]
            assert len(server.messages) == 1
        else:
            assert result.returncode == 1, result.stderr
            shown = result.stdout + result.stderr
            assert "email\tfailed\tnot sent: an SMTP login of 'me'" in shown
            assert "allow_insecure_auth = true" in shown
            assert server.greetings == [] and server.logins == [] and server.messages == []


def test_email_through_sendmail_when_there_is_no_smtp_section(store, tmp_path):
    program = tmp_path / "sendmail"
    program.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat > {tmp_path}/message\n')
    program.chmod(0o755)
    task = make_task(notify={"email": "ops@example.org"})
    [result] = deliver(task, record(store), ["email"], sendmail=str(program))
    assert result.ok, result.detail
    assert (tmp_path / "args").read_text().split() == ["-t", "-oi"]
    message = (tmp_path / "message").read_text()
    assert "To: ops@example.org" in message and "Subject: cronctl: backup failed" in message


def test_smtp_server_that_is_down(store):
    settings = SmtpSettings(host="127.0.0.1", port=free_port())
    task = make_task(notify={"email": "ops@example.org"})
    [result] = deliver(task, record(store), ["email"], smtp=settings)
    assert not result.ok and "cannot send mail through 127.0.0.1:" in result.detail
