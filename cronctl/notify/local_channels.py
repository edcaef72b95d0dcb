"""The command and email channels (README.md#channels): the notify command, and mail through
sendmail or an SMTP server.

Each sender takes a Delivery and raises ChannelError with a one-line reason when it fails;
the return value is a short account of what happened ("exit status 0"). Processes (the
notify command, sendmail) are started through the runner, as every process is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cronctl.model import NotifySettings, SmtpSettings
from cronctl.model.checks import insecure_login
from cronctl.notify.channel_base import ChannelContext, ChannelError
from cronctl.notify.message import Delivery, email_message, webhook_json
from cronctl.records import safe_text
from cronctl.runner.environment import inherited_environment, run_variables
from cronctl.runner.process import run_process

if TYPE_CHECKING:
    from email.message import EmailMessage

    from cronctl.runner.process import ProcessOutcome

# Shells that understand `exec 0<file` (how the notify command gets the run JSON on stdin).
POSIX_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash"}
SENDMAIL_PATHS = ("/usr/sbin/sendmail", "/usr/lib/sendmail")


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
    insecure = insecure_login(smtp)
    if insecure:  # refused before connecting: not even the user name leaves the machine
        raise ChannelError(f"not sent: {insecure}")
    password = None
    if smtp.user:
        password = context.environ.get(smtp.password_env or "")
        if not password:
            where = (
                f"${smtp.password_env}" if smtp.password_env else "password_env in [defaults.smtp]"
            )
            raise ChannelError(f"SMTP user {smtp.user!r} is set but {where} gives no password")
    # Here, not at the top: smtplib and ssl weigh on serve's idle RSS (channels.py).
    import smtplib
    import ssl

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
