"""The four ways to notify (README.md#channels): command, webhook, healthchecks, email.

Each sender takes a Delivery and raises ChannelError with a one-line reason when it fails;
the return value is a short account of what happened ("HTTP 200"). Senders may block up to
their timeout: the Notifier runs them off the caller's thread, under a hard deadline.
Processes (the notify command, sendmail) are started through the runner, as every process is.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import socket
import ssl
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cronctl import __version__
from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.model import NotifySettings, SmtpSettings
from cronctl.notify.message import Delivery, email_message, slack_json, text_body, webhook_json
from cronctl.records import FAILURE_STATUSES, Status
from cronctl.runner.capture import safe_text
from cronctl.runner.environment import inherited_environment, run_variables
from cronctl.runner.process import run_process

if TYPE_CHECKING:
    from cronctl.runner.process import ProcessOutcome

# Shells that understand `exec 0<file` (how the notify command gets the run JSON on stdin).
POSIX_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash"}
SENDMAIL_PATHS = ("/usr/sbin/sendmail", "/usr/lib/sendmail")
_ERROR_BODY_BYTES = 200


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


def find_sendmail(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the sendmail program: on PATH, else in its traditional places, else None."""
    env = os.environ if environ is None else environ
    found = shutil.which("sendmail", path=env.get("PATH", os.defpath))
    if found:
        return found
    for candidate in SENDMAIL_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _where(url: str) -> str:
    """Return the host part of `url` for messages: webhook paths are often secrets."""
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"


# --------------------------------------------------------------------------------- HTTP


# Transient failures are tried again: up to HTTP_ATTEMPTS in all, after a pause of
# HTTP_BACKOFF seconds that doubles, and only while the channel's timeout leaves room for the
# pause and one more try of at least HTTP_MIN_TRY seconds. The timeout bounds the whole send.
HTTP_ATTEMPTS = 3
HTTP_BACKOFF = 0.5
HTTP_MIN_TRY = 0.5
# A receiver that is restarting, overloaded or rate-limiting says so with these; other 4xx
# answers (a wrong URL, a revoked token) will not change by asking again.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SIGNATURE_HEADER = "X-Cronctl-Signature"


class _TransientError(ChannelError):
    """A failure that may pass, worth another try; `wait` is the receiver's Retry-After."""

    def __init__(self, message: str, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait


def http_request(
    url: str,
    *,
    body: bytes | None,
    content_type: str | None,
    timeout: float,
    clock: Clock = SYSTEM_CLOCK,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Send a request (POST with a body, else GET); return "HTTP <code>" for 2xx, else raise.

    Refused or reset connections and HTTP 408, 425, 429 and 5xx answers are tried again (see
    HTTP_ATTEMPTS), all within `timeout`: a receiver that blinks still gets the message, at
    least once (a retried POST may arrive twice; the run id in it tells).
    """
    deadline = clock.monotonic() + timeout
    pause = HTTP_BACKOFF
    attempt = 1
    while True:
        try:
            return _http_once(
                url, body, content_type, headers, deadline - clock.monotonic(), timeout
            )
        except _TransientError as exc:
            wait = max(pause, exc.wait)
            if attempt == HTTP_ATTEMPTS or deadline - clock.monotonic() < wait + HTTP_MIN_TRY:
                tries = f" ({attempt} tries)" if attempt > 1 else ""
                raise ChannelError(f"{exc}{tries}") from None
        clock.sleep(wait)
        pause *= 2
        attempt += 1


def _http_once(
    url: str,
    body: bytes | None,
    content_type: str | None,
    extra_headers: Mapping[str, str] | None,
    remaining: float,
    timeout: float,
) -> str:
    headers = {"User-Agent": f"cronctl/{__version__}", **(extra_headers or {})}
    if content_type:
        headers["Content-Type"] = content_type
    method = "POST" if body is not None else "GET"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    late = f"{_where(url)} did not answer within {timeout:g}s"
    if remaining <= 0:
        raise ChannelError(late)
    try:
        with urllib.request.urlopen(request, timeout=remaining) as response:  # noqa: S310 (http(s) only, checked)
            response.read(4096)
            code = response.status
    except urllib.error.HTTPError as exc:
        detail = _short(exc.read(_ERROR_BODY_BYTES)) if exc.fp is not None else ""
        message = (
            f"{_where(url)} answered HTTP {exc.code} {exc.reason}{f': {detail}' if detail else ''}"
        )
        if exc.code in _TRANSIENT_STATUSES:
            raise _TransientError(message, _retry_after(exc.headers.get("Retry-After"))) from None
        raise ChannelError(message) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise ChannelError(late) from None
        text = f"cannot reach {_where(url)}: {getattr(reason, 'strerror', None) or reason}"
        if _may_pass(reason):
            raise _TransientError(text) from None
        raise ChannelError(text) from None
    except TimeoutError:
        raise ChannelError(late) from None
    except ConnectionError as exc:  # reset or closed while the answer was on its way
        raise _TransientError(f"request to {_where(url)} failed: {exc}") from None
    except (OSError, HTTPException, ValueError) as exc:
        raise ChannelError(f"request to {_where(url)} failed: {exc}") from None
    if not 200 <= code < 300:
        raise ChannelError(f"{_where(url)} answered HTTP {code}")
    return f"HTTP {code}"


def _may_pass(reason: object) -> bool:
    """Whether a connection failure may pass: refused or reset (the receiver restarting), or a
    name server that cannot answer now. A name that does not exist, a TLS certificate that
    does not match, an unreachable network stay as they are for the seconds a retry waits."""
    if isinstance(reason, socket.gaierror):
        return reason.errno == socket.EAI_AGAIN
    return isinstance(reason, ConnectionError)


def _retry_after(value: str | None) -> float:
    """Return the seconds of a Retry-After header (the date form counts as none)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def signature(secret: bytes, body: bytes) -> str:
    """Return the signature header value of a webhook body: `sha256=` and the hex HMAC-SHA256
    of the raw body under the secret (GitHub's scheme, which receivers know how to check)."""
    import hashlib  # OpenSSL loads when a webhook is signed, not at every `run-now`
    import hmac

    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _short(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip().splitlines()
    return text[0][:_ERROR_BODY_BYTES] if text else ""


def send_webhook(delivery: Delivery, settings: NotifySettings, context: ChannelContext) -> str:
    assert settings.webhook
    payload = slack_json(delivery) if settings.format == "slack" else webhook_json(delivery)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {}
    if settings.webhook_secret_env:
        # Like the SMTP password, the secret lives in the environment, never in the file.
        secret = context.environ.get(settings.webhook_secret_env)
        if not secret:
            raise ChannelError(
                f"the variable {settings.webhook_secret_env} (webhook_secret_env) is not set;"
                " not sent unsigned"
            )
        headers[SIGNATURE_HEADER] = signature(secret.encode("utf-8"), body)
    return http_request(
        settings.webhook,
        body=body,
        content_type="application/json",
        timeout=settings.timeout,
        clock=context.clock,
        headers=headers,
    )


# ------------------------------------------------------------------------- healthchecks


def run_uuid(run_id: int, hostname: str) -> str:
    """Return the healthchecks run id of a run: a UUID (healthchecks accepts only UUIDs),
    the same for its start and end pings, different for every run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cronctl://{hostname}/runs/{run_id}"))


def ping_suffix(delivery: Delivery) -> str:
    """Return the ping endpoint of a delivery: start, an exit status (0 success), or log.

    A failed attempt that a retry follows, an interrupted, skipped or missed run, and a test
    are `log` pings: recorded by healthchecks without changing the check's state.
    """
    run = delivery.run
    if delivery.phase == "start":
        return "start"
    if delivery.is_test:
        return "log"
    if run.status == Status.SUCCEEDED:
        return "0"
    if run.status in FAILURE_STATUSES and delivery.final:
        code = run.exit_code
        return str(code) if code is not None and 0 < code <= 255 else "1"
    return "log"


def ping_url(base: str, suffix: str, rid: str) -> str:
    """Return `base` + `/suffix`, with `rid` added to any query it already has (?create=1)."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + (f"/{suffix}" if suffix else "")
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("rid", rid)]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def send_healthchecks(delivery: Delivery, settings: NotifySettings, context: ChannelContext) -> str:
    assert settings.healthchecks
    suffix = ping_suffix(delivery)
    url = ping_url(settings.healthchecks, suffix, run_uuid(delivery.run.id, delivery.hostname))
    body = None if suffix == "start" else text_body(delivery).encode("utf-8")
    kind = "text/plain; charset=utf-8" if body is not None else None
    result = http_request(
        url, body=body, content_type=kind, timeout=settings.timeout, clock=context.clock
    )
    return f"/{suffix}: {result}"


# ------------------------------------------------------------------------------ command


def _payload_file(data: bytes) -> str:
    fd, path = tempfile.mkstemp(prefix="cronctl-notify-", suffix=".json")  # 0600
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def command_environment(
    delivery: Delivery, environ: Mapping[str, str], payload_path: str
) -> dict[str, str]:
    """The notify command's environment: the caller's, the task's `env`, and CRONCTL_*."""
    run, task = delivery.run, delivery.task
    env = inherited_environment(environ)
    env.update(task.env)
    env.update(
        run_variables(
            task,
            run_id=run.id,
            trigger=run.trigger,
            attempt=run.attempt,
            scheduled_at=run.scheduled_at,
        )
    )
    env.update(
        {
            "CRONCTL_STATUS": str(run.status),
            "CRONCTL_EVENT": delivery.event or "",
            "CRONCTL_EXIT_CODE": "" if run.exit_code is None else str(run.exit_code),
            "CRONCTL_HOSTNAME": delivery.hostname,
            "CRONCTL_PAYLOAD": payload_path,
        }
    )
    return env


def _shell_for(shell: str) -> str:
    return shell if Path(shell).name in POSIX_SHELLS else "/bin/sh"


def _run_with_stdin(
    script: str,
    *,
    payload: bytes,
    env_of: Callable[[str], dict[str, str]],
    shell: str,
    cwd: str | None,
    timeout: float,
    context: ChannelContext,
) -> ProcessOutcome:
    """Run `script` with `payload` on its stdin (through a 0600 temporary file, removed after:
    run_process has no stdin of its own)."""

    path = _payload_file(payload)
    try:
        return run_process(
            f'exec 0<"$CRONCTL_PAYLOAD"\n{script}',
            shell=_shell_for(shell),
            cwd=cwd,
            env=env_of(path),
            timeout=timeout,
            kill_grace=1.0,
            clock=context.clock,
        )
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def _check_outcome(outcome: ProcessOutcome, what: str, timeout: float) -> str:

    if outcome.start_error:
        raise ChannelError(f"{what} could not start: {outcome.start_error}")
    if outcome.timed_out:
        raise ChannelError(f"{what} did not finish within {timeout:g}s (stopped)")
    if outcome.exit_code != 0:
        how = (
            f"exit status {outcome.exit_code}"
            if outcome.exit_code is not None
            else f"signal {outcome.signal}"
        )
        lines = safe_text(outcome.stderr.data).strip().splitlines()
        raise ChannelError(f"{what} failed ({how}){': ' + lines[0][:200] if lines else ''}")
    return "exit status 0"


def send_command(delivery: Delivery, settings: NotifySettings, context: ChannelContext) -> str:
    assert settings.command
    payload = json.dumps(webhook_json(delivery), ensure_ascii=False).encode("utf-8") + b"\n"
    task = delivery.task
    cwd = task.cwd if os.path.isdir(task.cwd) else os.path.expanduser("~")
    outcome = _run_with_stdin(
        settings.command,
        payload=payload,
        env_of=lambda path: command_environment(delivery, context.environ, path),
        shell=task.shell,
        cwd=cwd,
        timeout=settings.timeout,
        context=context,
    )
    return _check_outcome(outcome, "the notify command", settings.timeout)


# -------------------------------------------------------------------------------- email


def send_email(delivery: Delivery, settings: NotifySettings, context: ChannelContext) -> str:
    recipients = settings.email
    smtp = context.smtp
    message = email_message(delivery, recipients, smtp.sender if smtp else None)
    if smtp is None and context.sendmail:
        return _via_sendmail(message.as_bytes(), context.sendmail, settings.timeout, context)
    return _via_smtp(
        message,
        smtp or SmtpSettings(),
        min(settings.timeout, (smtp or SmtpSettings()).timeout),
        context,
    )


def _via_sendmail(data: bytes, program: str, timeout: float, context: ChannelContext) -> str:
    """Pipe the message to `sendmail -t -oi` (recipients from the headers; a lone '.' is text)."""

    def env_of(path: str) -> dict[str, str]:
        env = inherited_environment(context.environ)
        return env | {"CRONCTL_PAYLOAD": path, "CRONCTL_SENDMAIL": program}

    outcome = _run_with_stdin(
        'exec "$CRONCTL_SENDMAIL" -t -oi',
        payload=data,
        env_of=env_of,
        shell="/bin/sh",
        cwd=None,
        timeout=timeout,
        context=context,
    )
    _check_outcome(outcome, "sendmail", timeout)
    return f"handed to {program}"


def _via_smtp(
    message: EmailMessage, smtp: SmtpSettings, timeout: float, context: ChannelContext
) -> str:
    server = f"{smtp.host}:{smtp.port}"
    password = None
    if smtp.user:
        password = context.environ.get(smtp.password_env or "")
        if not password:
            where = (
                f"${smtp.password_env}" if smtp.password_env else "password_env in [defaults.smtp]"
            )
            raise ChannelError(f"SMTP user {smtp.user!r} is set but {where} gives no password")
    tls = ssl.create_default_context()
    try:
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=timeout, context=tls
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            client.ehlo_or_helo_if_needed()
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=tls)
                client.ehlo()
            if smtp.user and password:
                client.login(smtp.user, password)
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        answer = f"{exc.smtp_code} {_smtp_text(exc.smtp_error)}"
        raise ChannelError(f"{server} refused the login of {smtp.user!r}: {answer}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ChannelError(f"{server}: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(
            f"{server} refused every recipient: {', '.join(exc.recipients)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(
            f"{server} answered {exc.smtp_code} {_smtp_text(exc.smtp_error)}"
        ) from None
    except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
        raise ChannelError(f"{server}: {exc or 'no answer within the timeout'}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError(
            f"cannot send mail through {server}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if refused:
        raise ChannelError(f"{server} refused {', '.join(refused)} (the others were sent)")
    return f"sent through {server}"


def _smtp_text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


SENDERS: dict[str, Callable[[Delivery, NotifySettings, ChannelContext], str]] = {
    "command": send_command,
    "webhook": send_webhook,
    "healthchecks": send_healthchecks,
    "email": send_email,
}


def channels_for(delivery: Delivery, settings: NotifySettings) -> list[str]:
    """Return the channels a delivery goes to.

    healthchecks hears about every run that has a ping (its start and its end), whatever
    `on` says: it is a heartbeat, and it alerts by itself when pings stop. The other channels
    send only for an event (already filtered by `on`).
    """
    names = []
    if settings.healthchecks:
        names.append("healthchecks")
    if delivery.phase == "finish" and delivery.event is not None:
        if settings.command:
            names.append("command")
        if settings.webhook:
            names.append("webhook")
        if settings.email:
            names.append("email")
    return names
