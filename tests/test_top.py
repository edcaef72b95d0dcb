"""cronctl/top.py and its drawing (cronctl/cli/top_render.py): a frame of `cronctl top` from a
real history and task file (issue 15, item 4). The command itself, with a real serve, is in
tests/cli/test_watch_cli.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from cronctl.cli.top_render import plain_text, terminal_lines
from cronctl.records import Output
from cronctl.store import HistoryStore
from cronctl.store.recent import open_read_only
from cronctl.top import FrameBuilder, TaskFileSource

NOW = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
TASKS = "".join(
    f'[tasks.{name}]\nschedule = "{schedule}"\ncommand = "true"\n{extra}\n'
    for name, schedule, extra in [
        ("backup", "0 2 * * *", 'timezone = "Europe/Berlin"\njitter = "5m"\n'),
        ("ticker", "@every 2s", ""),
        ("flaky", "*/5 * * * *", ""),
        ("a-task-with-a-name-much-longer-than-the-column-allows", "@hourly", ""),
        *((f"filler-{n:02d}", "@daily", "") for n in range(30)),
    ]
)


def finished(store: HistoryStore, task: str, status: str, at: datetime, ms: int) -> None:
    err = b"connection refused\n" if status == "failed" else b""
    run_id = store.start_run(task, "schedule", started_at=at, scheduled_at=at)
    store.finish_run(
        run_id,
        status=status,
        finished_at=at + timedelta(milliseconds=ms),
        duration_ms=ms,
        exit_code=0 if status == "succeeded" else 3,
        stderr=Output(err, len(err)),
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make_home(tmp_path)


def make_home(tmp_path: Path) -> Path:
    """A task file of 34 tasks; serve running; 40 runs of `ticker` (durations rising and
    falling), 12 failures of `flaky`, one of a task no longer in the file, two jobs running."""
    (tmp_path / "tasks.toml").write_text(TASKS)
    with HistoryStore(str(tmp_path / "history.db")) as store:
        store.serve_started(
            pid=4242, hostname="elsewhere", version="1", now=NOW - timedelta(hours=3)
        )
        store.heartbeat(NOW - timedelta(seconds=5))
        for i in range(40):
            finished(store, "ticker", "succeeded", NOW - timedelta(minutes=40 - i), 100 * (i % 7))
        for i in range(12):
            finished(store, "flaky", "failed", NOW - timedelta(minutes=5 * i + 1), 30)
        finished(store, "gone", "failed", NOW - timedelta(minutes=3), 30)
        for n in range(30):
            finished(store, f"filler-{n:02d}", "succeeded", NOW - timedelta(hours=2), 10)
        for name in ("backup", "a-task-with-a-name-much-longer-than-the-column-allows"):
            store.start_run(name, "manual", started_at=NOW - timedelta(seconds=75))
    return tmp_path


def frame_of(home: Path, last_line=lambda run_id: None, now: datetime = NOW):
    with open_read_only(home / "history.db") as history:
        return FrameBuilder(last_line).frame(
            history, TaskFileSource(home / "tasks.toml").current(), now
        )


def test_a_frame_holds_every_section(home):
    lines = {1: "copying photos/2026/12/05/IMG_0001.jpg"}
    frame = frame_of(home, lambda run_id: lines.get(run_id))
    assert frame.serve.running and frame.serve.pid == 4242
    assert [(j.run.task, j.elapsed_seconds) for j in frame.running] == [
        ("backup", 75.0),
        ("a-task-with-a-name-much-longer-than-the-column-allows", 75.0),
    ]
    backup_id = frame.running[0].run.id
    assert frame.running[0].last_line == lines.get(backup_id)
    assert [g.task for g in frame.failures] == ["flaky", "gone"]
    assert [g.counted for g in frame.failures] == [True, False]
    assert (frame.failures[0].last_hour, frame.failures[0].last_day) == (12, 12)
    assert frame.next_runs[0].task.name == "ticker" and frame.next_runs[0].at > NOW
    assert frame.charts[0].task == "flaky"  # failing first, then by name
    ticker = next(c for c in frame.charts if c.task == "ticker")
    assert len(ticker.statuses) == 40 and ticker.durations_ms[-1] == 100 * (39 % 7)
    assert frame.task_count == 34 and frame.task_file_error is None


def test_the_history_is_read_again_only_after_a_write(home):
    """The failures and outcomes are read when the database changed (or a minute passed)."""
    calls = []
    with open_read_only(home / "history.db") as history:
        original = history.recent_outcomes

        def counting(tasks, count):
            calls.append(1)
            return original(tasks, count)

        history.recent_outcomes = counting  # type: ignore[method-assign]
        builder = FrameBuilder(lambda run_id: None)
        tasks = TaskFileSource(home / "tasks.toml")
        for second in range(5):
            builder.frame(history, tasks.current(), NOW + timedelta(seconds=second))
        assert len(calls) == 1
        with HistoryStore(str(home / "history.db")) as writer:
            finished(writer, "ticker", "failed", NOW, 5)
        frame = builder.frame(history, tasks.current(), NOW + timedelta(seconds=6))
        assert len(calls) == 2 and frame.charts[0].task == "flaky"
        builder.frame(history, tasks.current(), NOW + timedelta(seconds=70))
        assert len(calls) == 3  # a minute on: the last hour moved


def test_the_task_file_is_read_again_only_when_it_changed(home):
    source = TaskFileSource(home / "tasks.toml")
    first = source.current()
    assert source.current() is first and source.reads == 1
    (home / "tasks.toml").write_text(TASKS + '[tasks.new]\nschedule = "@daily"\ncommand = "x"\n')
    os.utime(home / "tasks.toml", ns=(1, 1))
    assert "new" in source.current().tasks and source.reads == 2
    (home / "tasks.toml").write_text("[tasks.broken\n")
    invalid = source.current()
    assert "invalid TOML" in invalid.error
    with open_read_only(home / "history.db") as history:
        frame = FrameBuilder(lambda run_id: None).frame(history, invalid, NOW)
    assert frame.task_file_error and frame.next_runs == [] and frame.failures  # history stays


def test_a_missing_database_is_never_created(tmp_path):
    path = tmp_path / "history.db"
    history = open_read_only(path)
    frame = FrameBuilder(lambda run_id: None).frame(
        history, TaskFileSource(tmp_path / "t").current(), NOW
    )
    assert not frame.serve.known and frame.running == [] and frame.charts == []
    assert not path.exists() and not history.appeared()
    HistoryStore(str(path)).close()
    assert history.appeared()
    history.close()


# ---------------------------------------------------------------------------- drawing


def _check_fits(lines, width, height):
    assert len(lines) <= height
    for line in lines:
        assert cell_len(line.plain) <= width, line.plain
        assert "\n" not in line.plain


TITLES = ["running now", "failures in the last day", "next runs", "recent outcomes"]


@pytest.mark.parametrize(
    ("width", "height", "titles"),
    [
        (80, 24, TITLES),
        (120, 50, TITLES),
        (60, 12, TITLES),
        (80, 6, TITLES[:2]),  # the head, 2 titles with a row each, the footer
        (80, 4, TITLES[:1]),
        (40, 3, TITLES[:1]),  # the title alone says how many rows it hides
        (40, 2, []),
    ],
)
def test_sections_shrink_by_priority(home, width, height, titles):
    frame = frame_of(home, lambda run_id: "x" * 300)
    lines = terminal_lines(frame, width, height, "utf-8", "UTC")
    _check_fits(lines, width, height)
    text = "\n".join(line.plain for line in lines)
    assert [t for t in TITLES if t in text] == titles
    assert text.startswith("serve running pid 4242"[:width])
    if width >= 80:
        assert text.splitlines()[0].endswith("34 tasks  20:00:00")
    if height >= 24:
        assert len(lines) == height  # uses the height it has
        assert "✗" in text and "✓" in text and any(c in text for c in "▁▂▃▄▅▆▇█")


def test_a_long_last_line_is_cut_to_the_width(home):
    frame = frame_of(home, lambda run_id: "step 12: " + "y" * 200)
    lines = terminal_lines(frame, 80, 24, "utf-8", "UTC")
    running = [line.plain for line in lines if "step 12: " in line.plain]
    assert len(running) == 2 and all(cell_len(r) == 80 and r.endswith("…") for r in running)


def test_ascii_fallback_when_the_terminal_is_not_utf8(home):
    frame = frame_of(home)
    lines = terminal_lines(frame, 80, 40, "ANSI_X3.4-1968", "UTC")
    text = "\n".join(line.plain for line in lines).replace("…", "")
    assert text.isascii(), [c for c in text if not c.isascii()]
    assert "x" in text and "+" in text


def test_the_plain_frame_is_whole_and_stable(home):
    frame = frame_of(home, lambda run_id: "half\tdone\x1b[2J")
    text = plain_text(frame, "utf-8")
    assert text == plain_text(frame, "utf-8")
    lines = text.splitlines()
    assert lines[:3] == [
        "time\t2026-12-05T20:00:00+00:00",
        "tasks\t34",
        "serve\trunning pid 4242, up 3h, heartbeat 5s ago",
    ]
    running = lines[lines.index("running now:") + 2]
    assert running.split("\t")[1:] == [
        "backup",
        "2026-12-05T20:58:45+01:00",
        "75",
        "half\\tdone\\x1b[2J",
    ]
    assert "flaky\t12\t12\t2026-12-05T19:59:00+00:00\tfailed" in lines
    assert not any("gone" in line for line in lines)  # not in the file: counts for nothing
    assert lines.count("at\twindow_end\ttask\tmeans") == 1


def test_a_history_that_needs_an_upgrade_is_not_written(tmp_path):
    """A viewer never migrates: it says who can (the file is left as it was)."""
    import sqlite3

    from cronctl.errors import ReadOnlyDatabaseError

    path = tmp_path / "history.db"
    HistoryStore(str(path)).close()
    with sqlite3.connect(path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
        raw.execute(f"PRAGMA user_version = {version - 1}")
    before = path.read_bytes()
    with pytest.raises(ReadOnlyDatabaseError) as raised:
        open_read_only(path)
    assert "only read it" in raised.value.message and "cronctl status" in raised.value.hint
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("statuses", "marks", "shown"),
    [
        ("FF", 3, "✗✗"),  # fewer runs than room: all of them
        ("SSSF", 2, "S✗".replace("S", "✓")),  # more: the newest, at the right
        ("SF", 0, ""),
        ("", 4, ""),
    ],
)
def test_a_chart_shows_the_newest_outcomes_that_fit(statuses, marks, shown):
    from cronctl.cli.top_render import Glyphs, chart_row
    from cronctl.records import Status
    from cronctl.top import TaskChart

    kinds = {"S": Status.SUCCEEDED, "F": Status.FAILED}
    chart = TaskChart("t", tuple(kinds[c] for c in statuses), (5,) * len(statuses))
    row = chart_row(chart, 8, marks, 80, Glyphs.for_encoding("utf-8")).plain
    assert row[12 : 12 + marks].rstrip() == shown


def test_top_counts_failures_as_status_does_an_acknowledged_task_is_not_shown(home):
    """`cronctl ack` makes `status` healthy for a task until its next failure; top agrees."""
    with HistoryStore(str(home / "history.db")) as store:
        store.acknowledge("flaky", at=NOW - timedelta(seconds=30), by="alice")
    frame = frame_of(home)
    flaky = next(g for g in frame.failures if g.task == "flaky")
    assert not flaky.counted and flaky.acknowledged is not None
    assert [g.task for g in frame.failures if g.counted] == []
    with HistoryStore(str(home / "history.db")) as store:
        finished(store, "flaky", "failed", NOW - timedelta(seconds=10), 30)
    assert [g.task for g in frame_of(home).failures if g.counted] == ["flaky"]
