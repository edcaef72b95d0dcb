"""`cronctl metrics`: cronctl's state in the Prometheus text exposition format.

For node_exporter's textfile collector. Serve's liveness is judged as `cronctl status` judges
it (`cronctl.health.probed_serve_health`); the figures are read from the history's indexes.

An invalid task file does not blind the exposition: `cronctl_task_file_valid` is 0, and the
per-task series that the history holds are exported for every task name in the history (the
series that need a task's definition, `enabled` and the next run, have no samples).
"""

from __future__ import annotations

from datetime import datetime

from cronctl.health import STALE_AFTER, MachineHistory, ServeProbe, probed_serve_health
from cronctl.notify.rules import VERDICT_STATUSES
from cronctl.records import Run, Status
from cronctl.taskfile import TaskFile

RECENT_ROWS = 20  # the latest verdict (succeeded or failed) is looked for among this many


def _label(value: str) -> str:
    """Escape a label value for the Prometheus text format (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 3))


def _seconds(moment: datetime) -> float:
    return round(moment.timestamp(), 3)


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: list[tuple[dict[str, str], float | int]],
    ) -> None:
        self.lines.append(
            f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}"
        )
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
            self.lines.append(
                f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def metrics(
    taskfile: TaskFile | None,
    store: MachineHistory,
    now: datetime,
    probe: ServeProbe | None = None,
) -> str:
    """Return the Prometheus text exposition of cronctl's state (for node_exporter's textfile
    collector: `cronctl metrics --output /var/lib/node_exporter/textfile/cronctl.prom`).
    `taskfile` None: the task file is invalid (see the module docstring)."""
    serve = probed_serve_health(store, now, probe)
    counts = store.run_counts()
    tasks = [] if taskfile is None else sorted(taskfile.tasks.values(), key=lambda t: t.name)
    names = store.task_names() if taskfile is None else [t.name for t in tasks]
    last_runs: dict[str, Run | None] = {}
    last_verdicts: dict[str, Run | None] = {}
    next_runs: dict[str, datetime] = {}
    for name in sorted(names):
        recent = store.runs(name, limit=RECENT_ROWS)
        last_runs[name] = recent[0] if recent else None
        last_verdicts[name] = next((r for r in recent if r.status in VERDICT_STATUSES), None)
    for task in tasks:
        if task.enabled:
            upcoming = task.parsed_schedule().next_after(now)
            if upcoming is not None:
                next_runs[task.name] = upcoming

    out = _Exposition()
    out.family(
        "cronctl_serve_up",
        "gauge",
        f"1 when cronctl serve is running with a heartbeat under {STALE_AFTER.seconds}s old"
        " (and, on its own host, its process exists), else 0.",
        [({}, serve.running)],
    )
    if serve.heartbeat_at is not None:
        out.family(
            "cronctl_serve_heartbeat_timestamp_seconds",
            "gauge",
            "Unix time of serve's latest heartbeat.",
            [({}, _seconds(serve.heartbeat_at))],
        )
    out.family(
        "cronctl_task_file_valid",
        "gauge",
        "1 when the task file is valid, else 0 (serve keeps running the last valid tasks it"
        " loaded; the task series then come from the history alone).",
        [({}, taskfile is not None)],
    )
    out.family(
        "cronctl_task_enabled",
        "gauge",
        "1 when the task is enabled in the task file, else 0.",
        [({"task": t.name}, t.enabled) for t in tasks],
    )
    out.family(
        "cronctl_task_last_run_timestamp_seconds",
        "gauge",
        "Unix time when the task's latest run started.",
        [
            ({"task": name}, _seconds(run.started_at))
            for name, run in last_runs.items()
            if run is not None and run.started_at is not None
        ],
    )
    out.family(
        "cronctl_task_last_success",
        "gauge",
        "1 when the task's latest verdict is a success, 0 when it is a failure "
        f"(no sample when none of its last {RECENT_ROWS} runs succeeded or failed).",
        [
            ({"task": name}, run.status == Status.SUCCEEDED)
            for name, run in last_verdicts.items()
            if run is not None
        ],
    )
    out.family(
        "cronctl_task_last_status",
        "gauge",
        "The status of the task's latest run: 1 on the series of that status, 0 on the others.",
        [
            ({"task": name, "status": status.value}, run.status == status)
            for name, run in last_runs.items()
            if run is not None
            for status in Status
        ],
    )
    out.family(
        "cronctl_task_last_duration_seconds",
        "gauge",
        "How long the task's latest run that succeeded or failed took.",
        [
            ({"task": name}, run.duration_ms / 1000)
            for name, run in last_verdicts.items()
            if run is not None and run.duration_ms is not None
        ],
    )
    out.family(
        "cronctl_task_runs_total",
        "counter",
        "Runs of the task in the history kept"
        " (pruning lowers it; Prometheus reads that as a counter reset).",
        [({"task": name}, counts.get(name, (0, 0))[0]) for name in last_runs],
    )
    out.family(
        "cronctl_task_failures_total",
        "counter",
        "Failed runs (failed, timed_out, killed, abandoned, error) of the task in the history kept "
        "(pruning lowers it; read as a counter reset).",
        [({"task": name}, counts.get(name, (0, 0))[1]) for name in last_runs],
    )
    out.family(
        "cronctl_task_next_run_timestamp_seconds",
        "gauge",
        "Unix time of the task's next scheduled run (enabled tasks with one).",
        [({"task": name}, _seconds(moment)) for name, moment in next_runs.items()],
    )
    return out.text()
