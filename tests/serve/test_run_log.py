"""serve's two lines a run (RunLog): written straight to serve's own handler when that is all
there is (docs/performance.md, "Serve's hot path after issue 18", round 3), through logging
otherwise; the text is the same either way."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os

import pytest

from cronctl.records import Run, Status, Trigger
from cronctl.serve import log as serve_log
from tests.serve.fakes import task, utc


def a_run(**values) -> Run:
    fields = {
        "id": 7,
        "task": "backup",
        "trigger": Trigger.SCHEDULE,
        "attempt": 1,
        "scheduled_at": utc(2026, 12, 6, 3, 0),
        "started_at": utc(2026, 12, 6, 3, 0),
        "finished_at": None,
        "duration_ms": None,
        "status": Status.RUNNING,
        "exit_code": None,
        "signal": None,
        "pid": 4242,
        "reason": None,
    }
    fields.update(values)
    return Run(**fields)


# (event, run fields, final, level, message)
CASES = [
    ("started", {}, True, "info", "run 7 of backup started [slot 2026-12-06T03:00:00+00:00]"),
    (
        "started",
        {"trigger": Trigger.MANUAL, "scheduled_at": None, "attempt": 2},
        True,
        "info",
        "run 7 of backup started [trigger manual, attempt 2]",
    ),
    (
        "finished",
        {"status": Status.SUCCEEDED, "duration_ms": 1234, "exit_code": 0},
        True,
        "info",
        "run 7 of backup succeeded in 1.234s [slot 2026-12-06T03:00:00+00:00]",
    ),
    (
        "finished",
        {"status": Status.FAILED, "duration_ms": 61000, "exit_code": 3, "reason": "exit code 3"},
        False,
        "warning",
        "run 7 of backup failed in 61.0s [slot 2026-12-06T03:00:00+00:00]: exit code 3"
        " (will retry)",
    ),
    (
        "finished",
        {"status": Status.INTERRUPTED, "reason": "serve was stopped\nsecond line"},
        True,
        "warning",
        "run 7 of backup interrupted [slot 2026-12-06T03:00:00+00:00]: serve was stopped\n"
        "second line",
    ),
]


def tell(event: str, run: Run, final: bool) -> None:
    run_log = serve_log.RunLog()
    if event == "started":
        run_log.run_started(task("backup"), run)
    else:
        run_log.run_finished(task("backup"), run, final=final)


def through_logging() -> None:
    """A filter that lets everything through: RunLog must then go through logging."""
    serve_log.log.handlers[0].addFilter(lambda record: True)


@pytest.mark.parametrize(("event", "fields", "final", "level", "message"), CASES)
@pytest.mark.parametrize("journal", [False, True], ids=["plain", "journal"])
def test_direct_lines_equal_the_logging_ones(
    tmp_path, event, fields, final, level, message, journal
):
    texts = []
    for direct in (True, False):
        stream = open(tmp_path / f"err-{direct}", "w+")
        info = os.fstat(stream.fileno())
        environ = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"} if journal else {}
        serve_log.setup(stream, environ=environ)
        if not direct:
            through_logging()
        assert (serve_log._direct(logging.INFO) is not None) is direct
        tell(event, a_run(**fields), final)
        stream.seek(0)
        texts.append(stream.read())
    assert texts[0] == texts[1]
    if journal:
        priority = {"info": 6, "warning": 4}[level]
        assert texts[0] == "".join(f"<{priority}>{line}\n" for line in message.split("\n"))
    else:
        stamp, _, rest = texts[0].partition(" ")
        assert stamp[:4].isdigit() and stamp[10] == "T"
        assert rest == f"{level} {message}\n"


@pytest.mark.parametrize(
    ("arrange", "direct"),
    [
        ("serve's own setup", True),
        ("propagated (caplog sees it)", False),
        ("a second handler", False),
        ("a logger filter", False),
        ("a handler filter", False),
        ("another formatter", False),
        ("a FileHandler", True),
        ("a FileHandler not opened yet (delay)", False),
        ("another handler class", False),
        ("level above the line", False),
    ],
)
def test_direct_only_with_serves_own_setup(monkeypatch, arrange, direct):
    stream = io.StringIO()
    serve_log.setup(stream, environ={})
    logger = serve_log.log
    monkeypatch.setattr(logger, "filters", [])  # the autouse fixture does not restore them
    handler = logger.handlers[0]
    if arrange.startswith("propagated"):
        logger.propagate = True
    elif arrange == "a second handler":
        logger.addHandler(logging.NullHandler())
    elif arrange == "a logger filter":
        logger.addFilter(lambda record: True)
    elif arrange == "a handler filter":
        handler.addFilter(lambda record: True)
    elif arrange == "another formatter":
        handler.setFormatter(serve_log.PlainFormatter("%(name)s %(message)s"))
    elif arrange == "a FileHandler":
        logger.handlers[0] = logging.FileHandler(os.devnull)
        logger.handlers[0].setFormatter(serve_log.PlainFormatter("%(message)s"))
    elif arrange.startswith("a FileHandler not opened"):
        logger.handlers[0] = logging.FileHandler(os.devnull, delay=True)
        logger.handlers[0].setFormatter(serve_log.PlainFormatter("%(message)s"))
    elif arrange == "another handler class":
        logger.handlers[0] = logging.handlers.WatchedFileHandler(os.devnull)
        logger.handlers[0].setFormatter(serve_log.PlainFormatter("%(message)s"))
    elif arrange == "level above the line":
        logger.setLevel(logging.WARNING)
    assert (serve_log._direct(logging.INFO) is not None) is direct


def test_caplog_still_gets_the_records(caplog):
    serve_log.setup(io.StringIO(), environ={})
    serve_log.log.propagate = True
    with caplog.at_level(logging.INFO, logger=serve_log.LOGGER_NAME):
        tell("started", a_run(), True)
    assert [r.getMessage() for r in caplog.records] == [
        "run 7 of backup started [slot 2026-12-06T03:00:00+00:00]"
    ]


def test_a_failing_stream_is_reported_not_raised(capsys):
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    serve_log.setup(Broken(), environ={})
    assert serve_log._direct(logging.INFO) is not None
    tell("started", a_run(), True)  # does not raise
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err and "disk full" in err
