"""`status` with an acknowledged task on a real pseudo-terminal of 80 columns, and piped
(the helpers of test_layout_pty.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.cells import cell_len

from cronctl.store import HistoryStore
from tests.cli.test_layout_pty import _run, piped, pty_run, tables

TASKS = """\
[tasks.flaky]
schedule = "@daily"
command = "exit 3"

[tasks.nightly-backup-of-the-photos]
schedule = "@daily"
command = "restic backup"
"""


def test_status_at_80_columns_lists_the_acknowledged_task_apart(tmp_path, cronctl_exe):
    (tmp_path / "tasks.toml").write_text(TASKS)
    now = datetime.now(UTC)
    with HistoryStore(str(tmp_path / "history.db")) as store:
        store.serve_started(pid=4242, hostname="box", version="0.1.0", now=now - timedelta(hours=1))
        store.heartbeat(now)
        for minutes in (20, 10):
            _run(store, "flaky", "failed", now - timedelta(minutes=minutes), 3)
            _run(
                store, "nightly-backup-of-the-photos", "failed", now - timedelta(minutes=minutes), 1
            )
        store.acknowledge(
            "nightly-backup-of-the-photos", at=now, by="alice", note="INC-42, the repo is full"
        )
    screen = pty_run(cronctl_exe, ["status"], tmp_path, 80)
    assert all(cell_len(line) <= 80 for line in screen.splitlines()), screen
    [(_, counted), (headers, seen), _failing] = tables(screen)
    assert [row[0] for row in counted] == ["flaky"]
    assert headers[:2] == ["Task", "Why"] and "Last failure" in headers
    assert seen[0][0].startswith("nightly-backup-of")  # whole, or shortened with …
    assert seen[0][1] == f"acknowledged {now:%H:%M:%S}"
    lines = screen.splitlines()
    at = lines.index("acknowledged (not counted until the task's next failure):")
    assert lines[at + 1 : at + 3] == [
        f"  nightly-backup-of-the-photos: acknowledged by ack at {now:%H:%M:%S} (alice)",
        "    INC-42, the repo is full",
    ]
    text = piped(cronctl_exe, ["status"], tmp_path)
    assert f"acknowledged by ack at {now:%Y-%m-%dT%H:%M:%S}+00:00 (alice)" in text
