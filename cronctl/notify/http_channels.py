"""The HTTP channels (README.md#channels): webhook (signed when it has a secret) and
healthchecks pings, over one request function that retries transient failures.

Each sender takes a Delivery and raises ChannelError with a one-line reason when it fails;
the return value is a short account of what happened ("HTTP 200").
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from http.client import HTTPException
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cronctl import __version__
from cronctl.clock import SYSTEM_CLOCK, Clock
from cronctl.model import NotifySettings
from cronctl.notify.channel_base import ChannelContext, ChannelError
from cronctl.notify.message import Delivery, slack_json, text_body, webhook_json
from cronctl.records import FAILURE_STATUSES, Status

_ERROR_BODY_BYTES = 200


def _where(url: str) -> str:
    """Return the host part of `url` for messages: webhook paths are often secrets."""
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"


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
