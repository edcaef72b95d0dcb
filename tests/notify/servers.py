"""Real servers on 127.0.0.1 for notification tests: HTTP (webhooks, healthchecks pings) and
SMTP (aiosmtpd). Each stops when its fixture ends; ports are chosen by the kernel."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpRecorder:
    """What the server received, and how it should answer: `status` per path prefix, and
    `first` per path prefix, answers (status, headers) given once each, in order, before it."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    first: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    received: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        with self.received:
            self.received.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)


@contextlib.contextmanager
def http_server() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
            )
            code = next(
                (c for prefix, c in recorder.status.items() if parts.path.startswith(prefix)), 200
            )
            headers: dict[str, str] = {}
            with recorder.received:  # recorded before answering: the client may look at once
                for prefix, answers in recorder.first.items():
                    if parts.path.startswith(prefix) and answers:
                        code, headers = answers.pop(0)
                        break
                recorder.requests.append(request)
                recorder.received.notify_all()
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = do_HEAD = _handle

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    """A port that nothing listens on (bound, then closed): connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpRecorder:
    host: str
    port: int
    messages: list = field(default_factory=list)  # (envelope sender, recipients, raw bytes)
    logins: list = field(default_factory=list)
    greetings: list = field(default_factory=list)  # each EHLO or HELO: a client that talked


@contextlib.contextmanager
def smtp_server(*, accept_login: bool | None = None) -> Iterator[SmtpRecorder]:
    """An aiosmtpd server. accept_login None: no AUTH offered; True/False: AUTH offered over
    plain text (no TLS in tests), every login accepted or refused."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    port = free_port()
    recorder = SmtpRecorder("127.0.0.1", port)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            recorder.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
            return "250 Message accepted for delivery"

        async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
            recorder.greetings.append(hostname)
            session.host_name = hostname  # what aiosmtpd does when there is no hook
            return responses

        async def handle_HELO(self, server, session, envelope, hostname):  # noqa: N802
            recorder.greetings.append(hostname)
            session.host_name = hostname
            return f"250 {server.hostname}"

    def authenticator(server, session, envelope, mechanism, auth_data):
        recorder.logins.append((mechanism, getattr(auth_data, "login", None)))
        return AuthResult(
            success=bool(accept_login), handled=False
        )  # the server answers 535 itself

    options = {}
    if accept_login is not None:
        options = {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()
