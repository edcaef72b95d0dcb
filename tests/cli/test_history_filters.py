"""What scripts filter the history on, through the real `cronctl` script (#14, item 8):
`history --since/--until` (times, durations ago, today/yesterday), `--trigger`, filters that
contradict each other; `prune --keep-days 0`; `run-now` of a task its `when` skips."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from cronctl.store import HistoryStore

TASKS = '[tasks.job]\nschedule = "@daily"\ncommand = "true"\n'

# Runs at fixed instants (in 2020, before any clock these tests meet) and relative to now.
FIXED = {
    "jan10_morning": ("2020-01-10T10:00:00+00:00", "schedule", "succeeded"),
    "jan10_late": ("2020-01-10T23:30:00+00:00", "retry", "failed"),
    "jan11_early": ("2020-01-11T00:30:00+00:00", "manual", "succeeded"),
    "jan11_afternoon": ("2020-01-11T14:00:00+00:00", "catch-up", "timed_out"),
}


def _relative(now: datetime) -> dict[str, tuple[datetime, str, str]]:
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)  # the CLI runs with TZ=UTC
    return {
        "today_first_second": (midnight + timedelta(seconds=1), "after", "succeeded"),
        "yesterday_last_second": (midnight - timedelta(seconds=1), "schedule", "failed"),
        "before_yesterday": (midnight - timedelta(days=1, seconds=1), "schedule", "succeeded"),
        "half_an_hour_ago": (now - timedelta(minutes=30), "manual", "succeeded"),
        "three_hours_ago": (now - timedelta(hours=3), "reboot", "succeeded"),
    }


def _cronctl(exe: list[str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"CRONCTL_HOME": str(home), "TZ": "UTC", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture
def history_home(cronctl_home: Path) -> tuple[Path, dict[int, str], datetime]:
    """A home whose history holds the runs above; returns it, run id -> label, and now."""
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(TASKS)
    now = datetime.now(UTC)
    runs = {k: (datetime.fromisoformat(v[0]), v[1], v[2]) for k, v in FIXED.items()}
    runs |= _relative(now)
    labels = {}
    with HistoryStore(cronctl_home / "history.db") as store:
        for label, (at, trigger, status) in runs.items():
            run_id = store.start_run("job", trigger, started_at=at)
            store.finish_run(run_id, status=status, finished_at=at + timedelta(seconds=1))
            labels[run_id] = label
    return cronctl_home, labels, now


FILTER_CASES = [
    # (id, arguments, labels of the runs listed)
    (
        "since_date",
        ["--since", "2020-01-11", "--until", "2021-01-01"],
        {"jan11_early", "jan11_afternoon"},
    ),
    (
        "window_of_wall_times",
        ["--since", "2020-01-10T12:00", "--until", "2020-01-11 01:00"],
        {"jan10_late", "jan11_early"},
    ),
    ("until_with_offset", ["--until", "2020-01-11T05:00+05:00"], {"jan10_morning", "jan10_late"}),
    ("until_utc_z", ["--until", "2020-01-10T10:00:00Z"], set()),
    ("until_is_excluded", ["--until", "2020-01-10T10:00:01Z"], {"jan10_morning"}),
    ("trigger", ["--trigger", "retry"], {"jan10_late"}),
    (
        "triggers",
        ["--trigger", "catch-up", "--trigger", "reboot"],
        {"jan11_afternoon", "three_hours_ago"},
    ),
    (
        "failed_and_trigger",
        ["--failed", "--trigger", "schedule", "--trigger", "retry"],
        {"jan10_late", "yesterday_last_second"},
    ),
    ("failed_and_a_failure_status", ["--failed", "--status", "timed_out"], {"jan11_afternoon"}),
]


@pytest.mark.parametrize(
    ("args", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES]
)
def test_c8_history_filters(cronctl_exe, history_home, args, expected):
    home, labels, _ = history_home
    done = _cronctl(cronctl_exe, home, "history", *args, "--json", "--limit", "100")
    assert done.returncode == 0, done.stderr
    assert {labels[run["id"]] for run in json.loads(done.stdout)} == expected


# Windows relative to now: (id, arguments, the window's since and until from now and midnight).
# Which runs fall inside depends on the hour (in the first hours of a day "three hours ago" is
# yesterday), so the expected runs are those of the window as the test computes it.
RELATIVE_CASES = [
    ("since_today", ["--since", "today"], lambda now, midnight: (midnight, None)),
    (
        "yesterday_only",
        ["--since", "yesterday", "--until", "today"],
        lambda now, midnight: (midnight - timedelta(days=1), midnight),
    ),
    ("since_duration", ["--since", "2h"], lambda now, midnight: (now - timedelta(hours=2), None)),
    (
        "since_duration_ago",
        ["--since", "4h ago", "--until", "1h"],
        lambda now, midnight: (now - timedelta(hours=4), now - timedelta(hours=1)),
    ),
]


@pytest.mark.parametrize(
    ("args", "window"), [c[1:] for c in RELATIVE_CASES], ids=[c[0] for c in RELATIVE_CASES]
)
def test_c8_history_filters_relative_to_now(cronctl_exe, history_home, args, window):
    home, labels, now = history_home
    since, until = window(now, datetime.combine(now.date(), time(), tzinfo=UTC))
    times = {label: at for label, (at, _, _) in _relative(now).items()}
    expected = {
        label for label, at in times.items() if since <= at and (until is None or at < until)
    }
    assert expected, "every window holds a run at any hour"
    done = _cronctl(cronctl_exe, home, "history", *args, "--json", "--limit", "100")
    assert done.returncode == 0, done.stderr
    assert {labels[run["id"]] for run in json.loads(done.stdout)} == expected


USAGE_CASES = [
    # (id, arguments, what the one error line says)
    (
        "failed_with_success",
        ["--failed", "--status", "succeeded"],
        "--failed and --status succeeded contradict: succeeded is not a failure",
    ),
    (
        "failed_with_one_success",
        ["--failed", "--status", "failed", "--status", "skipped"],
        "--status skipped contradict",
    ),
    ("since_after_until", ["--since", "today", "--until", "yesterday"], "is not before --until"),
    ("since_equals_until", ["--since", "2020-01-10", "--until", "2020-01-10T00:00Z"], "no run"),
    ("not_a_time", ["--since", "soon"], "--since 'soon' is not a time"),
    ("not_a_date", ["--until", "2020-13-01"], "--until '2020-13-01' is not a time"),
    ("unknown_trigger", ["--trigger", "cron"], "unknown trigger 'cron'"),
]


@pytest.mark.parametrize(
    ("args", "message"), [c[1:] for c in USAGE_CASES], ids=[c[0] for c in USAGE_CASES]
)
def test_c8_contradictions_and_bad_times_are_usage_errors(cronctl_exe, history_home, args, message):
    home, _labels, _now = history_home
    done = _cronctl(cronctl_exe, home, "history", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), done.stderr
    assert done.stdout == ""


def test_c8_prune_keep_days_0_removes_every_finished_run(cronctl_exe, history_home):
    home, labels, _now = history_home
    with HistoryStore(home / "history.db") as store:
        running = store.start_run("job", "manual", started_at=datetime.now(UTC))
    dry = _cronctl(cronctl_exe, home, "prune", "--keep-days", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Would remove {len(labels)} runs (every finished run" in dry.stderr
    done = _cronctl(cronctl_exe, home, "prune", "--keep-days", "0")
    assert done.returncode == 0, done.stderr
    with HistoryStore(home / "history.db") as store:
        assert [run.id for run in store.runs(limit=None)] == [running]  # in progress: kept


@pytest.mark.parametrize(
    ("when", "force", "code", "line"),
    [
        (
            "test -e /no/such/file",
            [],
            125,
            "skipped: the when condition `test -e /no/such/file` exited 1",
        ),
        ("exit 7", [], 125, "skipped: the when condition `exit 7` exited 7"),
        ("exit 7", ["--force"], 0, "succeeded"),
        ("true", [], 0, "succeeded"),
    ],
)
def test_c8_run_now_says_when_its_condition_skips_it(
    cronctl_exe, cronctl_home, when, force, code, line
):
    cronctl_home.mkdir(parents=True, exist_ok=True)
    (cronctl_home / "tasks.toml").write_text(TASKS + f"when = {json.dumps(when)}\n")
    done = _cronctl(cronctl_exe, cronctl_home, "run-now", "job", *force)
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and line in lines[0], done.stderr
    as_json = _cronctl(cronctl_exe, cronctl_home, "run-now", "job", "--json", *force)
    assert as_json.returncode == code
