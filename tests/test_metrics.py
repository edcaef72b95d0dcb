"""`cronctl metrics`'s exposition (cronctl.metrics), on real SQLite files."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cronctl import metrics
from cronctl.store import HistoryStore

from .test_health import NOW, add, healthy_state, load_tasks

# A metric line: name, optional labels with escaped values, a number.
SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\[\\"n]|[^\\"\n])*",?)*\})? '
    r"(-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$"
)


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened


def test_metrics_exposition_format(store, tmp_path):
    healthy_state(store)
    add(store, "report", "failed", NOW - timedelta(hours=1), exit_code=3)
    text = metrics.metrics(load_tasks(tmp_path), store, NOW)
    assert text.endswith("\n")
    families = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            families.setdefault(line.split()[2], set()).add("help")
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("gauge", "counter")
            families.setdefault(name, set()).add("type")
        else:
            assert SAMPLE.match(line), line
            name = re.match(r"[a-z_]+", line).group()
            assert families.get(name) == {"help", "type"}, (
                f"{name} has samples before HELP and TYPE"
            )
    for name in (
        "cronctl_serve_up",
        "cronctl_task_last_run_timestamp_seconds",
        "cronctl_task_last_success",
        "cronctl_task_last_status",
        "cronctl_task_last_duration_seconds",
        "cronctl_task_runs_total",
        "cronctl_task_failures_total",
        "cronctl_task_next_run_timestamp_seconds",
    ):
        assert name in families
    assert "cronctl_serve_up 1" in text
    assert 'cronctl_task_last_success{task="report"} 0' in text
    assert 'cronctl_task_last_status{task="report",status="failed"} 1' in text
    assert 'cronctl_task_failures_total{task="report"} 1' in text
    assert 'cronctl_task_runs_total{task="report"} 2' in text
    assert (
        'cronctl_task_next_run_timestamp_seconds{task="backup"} '
        + str(int(NOW.replace(minute=5, second=0).timestamp()))
        in text
    )
    assert (
        'task="off"' in text and 'cronctl_task_next_run_timestamp_seconds{task="off"}' not in text
    )
    assert "# TYPE cronctl_task_runs_total counter" in text and "history kept" in text


def test_label_values_are_escaped():
    assert metrics._label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
