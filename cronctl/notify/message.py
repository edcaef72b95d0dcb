"""What a notification says: one headline, a few lines of detail, the tail of the output.

Shared by every channel so that a mail, a Slack message and a webhook body agree. The job's
environment is never included (it may hold secrets); output is bounded and shown escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronctl import __version__, timefmt
from cronctl.model import Task
from cronctl.notify import rules
from cronctl.records import FAILURE_STATUSES, Run, Status, safe_text
from cronctl.shapes import run_json

if TYPE_CHECKING:
    from email.message import EmailMessage

# Bytes of output shown in a mail or chat message, and POSTed to healthchecks (whose limit is
# larger; 10 KB is what the older docs promise to keep).
OUTPUT_TAIL_BYTES = 10_000
SLACK_TAIL_BYTES = 2_000


@dataclass(frozen=True)
class Delivery:
    """One notification to send: a run, why (`event`), and the host of the run
    (`hostname`: the run's own, else the host sending it).

    `phase` is "start" (healthchecks' /start ping only) or "finish". `event` is None for a
    finished run that triggers no event (healthchecks still hears about it). `missed_count`
    is how many missed slots this one notification stands for (they are coalesced).
    `reported_by` is the host sending it when that is not the run's host (a run another host
    declared abandoned: its host had died, README.md#more-than-one-machine).
    """

    task: Task
    run: Run
    phase: str
    event: str | None
    final: bool
    hostname: str
    missed_count: int = 1
    reported_by: str | None = None

    @property
    def is_test(self) -> bool:
        return self.event == rules.TEST


def outcome(run: Run) -> str:
    """Return a short account of how the run ended: `exit status 3`, `timed out`..."""
    if run.status == Status.SUCCEEDED:
        return "exit status 0"
    if run.status == Status.FAILED and run.exit_code is not None:
        return f"exit status {run.exit_code}"
    if run.signal is not None:
        return f"{run.status.replace('_', ' ')}, signal {run.signal}"
    return run.status.replace("_", " ")


def headline(delivery: Delivery) -> str:
    run, task = delivery.run, delivery.task
    # A test says so first, where a mail subject or a chat preview is cut: "cronctl test:".
    prefix = "cronctl test: " if delivery.is_test else "cronctl: "
    if delivery.event == rules.MISSED:
        slots = f"{delivery.missed_count} runs" if delivery.missed_count > 1 else "a run"
        when = timefmt.stamp(run.scheduled_at, task.timezone) if run.scheduled_at else "unknown"
        return f"{prefix}{task.name} missed {slots} on {delivery.hostname} (latest slot {when})"
    if run.status in FAILURE_STATUSES:
        verb = f"failed ({outcome(run)})"
    elif delivery.event == rules.RECOVERY:
        verb = "recovered"
    elif run.status == Status.SUCCEEDED:
        verb = "succeeded with output" if delivery.event == rules.OUTPUT else "succeeded"
    else:
        verb = run.status.replace("_", " ")
    sample = " (a sample; the task did not run)" if delivery.is_test else ""
    return f"{prefix}{task.name} {verb} on {delivery.hostname}{sample}"


def detail_lines(delivery: Delivery) -> list[str]:
    run, task = delivery.run, delivery.task
    zone = task.timezone
    lines = [
        f"task:      {task.name}",
        f"status:    {run.status} ({outcome(run)})",
        f"run:       {run.id} (trigger {run.trigger}, attempt {run.attempt})",
    ]
    if run.scheduled_at:
        lines.append(f"scheduled: {timefmt.stamp(run.scheduled_at, zone)}")
    if run.started_at:
        lines.append(f"started:   {timefmt.stamp(run.started_at, zone)}")
    if run.duration_ms is not None:
        lines.append(f"duration:  {timefmt.duration_ms(run.duration_ms)}")
    if run.reason:
        lines.append(f"reason:    {run.reason}")
    lines.append(f"command:   {task.command}")
    lines.append(f"host:      {delivery.hostname}")
    if delivery.reported_by:
        lines.append(f"told by:   {delivery.reported_by}")
    if delivery.missed_count > 1:
        lines.append(f"missed:    {delivery.missed_count} slots")
    return lines


def output_tail(run: Run, limit: int = OUTPUT_TAIL_BYTES) -> str:
    """Return the end of stderr, then of stdout, at most about `limit` bytes, escaped."""

    parts = []
    budget = limit
    for name, stream in (("stderr", run.stderr), ("stdout", run.stdout)):
        if stream is None or not stream.data or budget <= 0:
            continue
        data = stream.data[-budget:]
        budget -= len(data)
        cut = " (end)" if len(data) < len(stream.data) or stream.dropped_bytes else ""
        parts.append(f"--- {name}{cut} ---\n{safe_text(data).rstrip()}")
    return "\n".join(parts)


def text_body(delivery: Delivery, tail_bytes: int = OUTPUT_TAIL_BYTES) -> str:
    lines = [headline(delivery), "", *detail_lines(delivery)]
    tail = output_tail(delivery.run, tail_bytes)
    if tail:
        lines += ["", tail]
    return "\n".join(lines) + "\n"


def webhook_json(delivery: Delivery) -> dict[str, Any]:
    """The generic webhook body: the run JSON of `--json`, plus why and where."""
    return run_json(delivery.run) | {
        "event": delivery.event,
        "hostname": delivery.hostname,
        "reported_by": delivery.reported_by,
        "missed_count": delivery.missed_count,
        "test": delivery.is_test,
        "cronctl_version": __version__,
    }


def slack_escape(text: str) -> str:
    """Escape the three characters Slack reads as markup in message text (its "Escaping text"
    rules): `<!channel>` in a job's output must arrive as text, not ping a whole channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_json(delivery: Delivery) -> dict[str, Any]:
    """A Slack incoming-webhook message: the headline, the reason, the output's tail in a
    code block; every part escaped, since none of it is ours to turn into Slack markup."""
    text = headline(delivery)
    if delivery.run.reason:
        text += f"\n{delivery.run.reason}"
    tail = output_tail(delivery.run, SLACK_TAIL_BYTES)
    if tail and delivery.event != rules.MISSED:
        fence = "`" * 3
        text += "\n" + fence + "\n" + tail.replace(fence, "'" * 3) + "\n" + fence
    return {"text": slack_escape(text)}


def default_sender(hostname: str) -> str:
    import getpass  # here: the email modules are loaded only for a mail (channels.py)

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "cronctl"
    return f"{user}@{hostname}"


def email_message(
    delivery: Delivery, recipients: tuple[str, ...], sender: str | None
) -> EmailMessage:
    import email.utils
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = sender or default_sender(delivery.hostname)
    message["To"] = ", ".join(recipients)
    message["Subject"] = headline(delivery)
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=delivery.hostname or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message["X-Cronctl-Task"] = delivery.task.name
    message.set_content(text_body(delivery), charset="utf-8")
    return message
