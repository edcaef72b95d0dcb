"""What an idle serve keeps in memory (docs/performance.md, "Idle memory"): the notifier's HTTP
and mail modules (urllib's client, ssl, the email package: 6.6 MB of RSS) are loaded by the
first delivery that needs them, not at start. Seen from the real process's mappings."""

from __future__ import annotations

import json
from pathlib import Path

from tests.notify.servers import http_server
from tests.serve.test_serve_process import (  # noqa: F401 (fixtures)
    notify_socket,
    serve,
    task_text,
    wait_for,
)


def ssl_loaded(pid: int) -> bool:
    """Whether Python's ssl module (its C part, with OpenSSL's libssl) is mapped in `pid`."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "/_ssl." in maps or "/libssl." in maps


def test_the_http_channels_load_on_the_first_webhook(serve, tasks_path, notify_socket):  # noqa: F811
    path, messages = notify_socket
    with http_server() as receiver:
        notify = f'[tasks.{{name}}.notify]\non = ["failure"]\nwebhook = "{receiver.url}/hook"\n'
        idle = task_text("yearly", "0 0 1 1 *", "exit 3", notify.format(name="yearly"))
        tasks_path.write_text(idle)
        process = serve()
        wait_for(lambda: "started" in process.log, what="serve started")
        assert not ssl_loaded(process.proc.pid), "an idle serve loaded the HTTP client"
        # A reload brings a task due each second that fails: its webhook is the first delivery.
        tasks_path.write_text(
            idle + task_text("failing", "@every 1s", "exit 3", notify.format(name="failing"))
        )
        requests = receiver.wait_for(1, timeout=20)
        assert requests, "no webhook arrived"
        assert json.loads(requests[0].body)["task"] == "failing"
        assert ssl_loaded(process.proc.pid)
        assert process.stop() == 0
