"""`export --format k8s`: one `batch/v1` CronJob per task, as YAML documents.

The schedule is a plain 5-field line as the CronJob controller's parser (robfig/cron) reads
it: macros expanded, `H` written as the values it resolved to, names as numbers, Sunday as 0.
That parser ORs day-of-month and day-of-week unless one of them is exactly `*`, and has no
`L` or `DOW#N`, so schedules that need those are left out and reported. What a CronJob cannot
express is written into the `cronctl/lost` annotation.

YAML without a YAML library: block mappings and sequences, every string double-quoted with
JSON-compatible escapes, so the output is valid YAML 1.1 and 1.2.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cronctl.durations import format_duration
from cronctl.export import (
    BOUNDS,
    Export,
    NotExportable,
    OutputFile,
    Skipped,
    compress,
    day_form,
    escape_quoted,
    every_as_cron,
)
from cronctl.model import Task
from cronctl.model.limits import format_size

MAX_CRONJOB_NAME = 52  # the controller appends an 11-character suffix to name its Jobs
MAX_CONTAINER_NAME = 63
CONCURRENCY = {"skip": "Forbid", "queue": "Forbid", "allow": "Allow", "replace": "Replace"}
SKIP_DEADLINE_SECONDS = 120
"""startingDeadlineSeconds for catch_up skip: a start later than this counts as missed."""
K8S_BACKOFF_CAP = 360  # the Job controller's retry back-off: 10s, 20s, 40s ... capped at 6 minutes
ANNOTATION = "cronctl"  # annotation prefix: cronctl/task, cronctl/schedule, cronctl/lost


# ---------------------------------------------------------------------------------------------
# Names


def dns_label(name: str, limit: int, *, unique: bool = False) -> str:
    """Return `name` as a DNS-1123 label of at most `limit` characters (a-z, 0-9, '-').

    A name that had to be shortened, or `unique` (another task maps to the same label), gets
    a short hash of the task name so that different tasks keep different labels.
    """
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    label = re.sub(r"-{2,}", "-", label).strip("-") or "task"
    if len(label) > limit or unique:
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        label = f"{label[: limit - 7].rstrip('-')}-{digest}"
    return label


# ---------------------------------------------------------------------------------------------
# Schedules


def schedule_line(task: Task) -> tuple[str, str, list[str]]:
    """Return (5-field schedule, zone, notes) for a CronJob, or raise NotExportable."""
    schedule = task.parsed_schedule()
    notes: list[str] = []
    if schedule.is_reboot:
        raise NotExportable("@reboot has no CronJob equivalent")
    if schedule.interval_seconds is not None:
        line = every_as_cron(schedule.interval_seconds)
        if line is None:
            raise NotExportable(
                f"'{task.schedule}' is not a whole number of minutes dividing an hour, or of hours "
                "dividing a day, so no cron line has the same slots"
            )
        return line, "Etc/UTC", notes
    cron = schedule.cron
    if cron is None:  # neither @reboot, @every nor a cron expression: nothing to translate
        raise NotExportable(f"'{task.schedule}' has no CronJob equivalent")
    minute, hour, dom, month, dow = cron.fields
    form = day_form(dom) or day_form(dow)
    if form is not None:
        raise NotExportable(f"{form} is not supported by CronJob schedules")
    rendered = [compress(f.values, lo, hi) for f, (lo, hi) in zip(cron.fields, BOUNDS, strict=True)]
    dom_full = rendered[2] == "*"
    dow_full = rendered[4] == "*"
    if not cron.days.combine_by_or and not dom_full and not dow_full:
        raise NotExportable(
            f"day-of-month '{dom.text}' and day-of-week '{dow.text}' must both match (one starts "
            "with '*'), which a CronJob schedule cannot say: it ORs two restricted day fields"
        )
    if cron.days.combine_by_or and (dom_full or dow_full):
        rendered[2] = rendered[4] = "*"  # either field matches every day
    line = " ".join(rendered)
    if any(f.hashed for f in cron.fields):
        notes.append(
            f"H in '{' '.join(schedule.text.split())}' written as the values it picks for "
            f"this task name ('{line}')"
        )
    return line, task.timezone, notes


# ---------------------------------------------------------------------------------------------
# Manifests


def kubernetes_size(size: int) -> str:
    """A size in Kubernetes' binary units: 536870912 -> "512Mi"."""
    text = format_size(size)
    return text if text.isdigit() else text + "i"


def _lost_limits(task: Task) -> list[str]:
    limits = task.limits
    if limits is None:
        return []
    lost = []
    if limits.cpu is not None:
        lost.append(
            f"limits.cpu {format_duration(limits.cpu)}: CPU time has no equivalent"
            " (resources.limits.cpu is a rate of cores)"
        )
    if limits.open_files is not None:
        lost.append(f"limits.open_files {limits.open_files}: set by the container runtime")
    if limits.processes is not None:
        lost.append(f"limits.processes {limits.processes}: a pod's pid limit is the node's")
    return lost


def lost_settings(task: Task) -> list[str]:
    notes = []
    if task.overlap == "queue":
        notes.append(
            "overlap queue: Forbid skips a run while the last one runs; it does not queue it"
        )
    if task.catch_up == "all":
        notes.append("catch_up all: the controller starts only the latest missed run")
    if task.jitter:
        notes.append(f"jitter {format_duration(task.jitter)}: CronJobs start on the minute")
    if task.when:
        notes.append(f"when {task.when!r}: no run condition; add it to the command")
    if task.after:
        notes.append(f"after {', '.join(task.after)}: CronJobs have no dependencies")
    if task.env_file:
        notes.append("env_file: not exported; put its variables in a Secret (envFrom)")
    if task.lock:
        notes.append(f"lock {', '.join(task.lock)}: CronJobs share no locks")
    if task.nice is not None:
        notes.append(f"nice {task.nice}: not exported; a pod has no niceness")
    notes.extend(_lost_limits(task))
    if task.notify is not None and task.notify.has_channels:
        notes.append("notify: not exported")
    if not task.runs_in_home and not task.working_dir.startswith("/"):
        notes.append(f"working_dir {task.working_dir}: relative to a home folder; not exported")
    if task.retries and task.retry_delay:
        notes.append("retry_delay: the Job controller uses its own back-off (10s doubling, max 6m)")
    return notes


def cronjob(task: Task, *, image: str, namespace: str | None = None) -> dict[str, Any]:
    """Return the CronJob of `task` as plain data (dicts, lists, strings, numbers, booleans)."""
    line, zone, notes = schedule_line(task)
    notes.extend(lost_settings(task))
    name = dns_label(task.name, MAX_CRONJOB_NAME)
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/managed-by": "cronctl"}
    annotations = {f"{ANNOTATION}/task": task.name, f"{ANNOTATION}/schedule": task.schedule}
    if task.description:
        annotations[f"{ANNOTATION}/description"] = task.description
    if notes:
        annotations[f"{ANNOTATION}/lost"] = "; ".join(notes)
    metadata["annotations"] = annotations

    container: dict[str, Any] = {
        "name": dns_label(task.name, MAX_CONTAINER_NAME),
        "image": image,
        "command": [task.shell, "-c", task.command],
    }
    env = [{"name": key, "value": value} for key, value in task.env.items()]
    env.append({"name": "CRONCTL_TASK", "value": task.name})
    container["env"] = env
    if task.working_dir.startswith("/"):
        container["workingDir"] = task.working_dir
    if task.limits is not None and task.limits.memory is not None:
        # The container's cgroup memory limit: the whole job's memory, as cronctl's.
        container["resources"] = {"limits": {"memory": kubernetes_size(task.limits.memory)}}
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    job_spec: dict[str, Any] = {"backoffLimit": task.retries}
    if task.timeout:
        pod_spec["activeDeadlineSeconds"] = task.timeout  # per attempt, as cronctl's timeout
        backoff = sum(min(10 * 2**i, K8S_BACKOFF_CAP) for i in range(task.retries))
        job_spec["activeDeadlineSeconds"] = task.timeout * (task.retries + 1) + backoff
    job_spec["template"] = {
        "metadata": {"labels": {"app.kubernetes.io/managed-by": "cronctl"}},
        "spec": pod_spec,
    }
    history = min(task.keep_runs, 3)
    spec: dict[str, Any] = {
        "schedule": line,
        "timeZone": zone,
        "concurrencyPolicy": CONCURRENCY[task.overlap],
        "suspend": not task.enabled,
    }
    if task.catch_up == "skip":
        spec["startingDeadlineSeconds"] = SKIP_DEADLINE_SECONDS
    spec["successfulJobsHistoryLimit"] = history
    spec["failedJobsHistoryLimit"] = history
    spec["jobTemplate"] = {"spec": job_spec}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": spec}


def export(tasks: Iterable[Task], *, image: str, namespace: str | None = None) -> Export:
    """Return the CronJobs of `tasks` as one multi-document YAML file, `cronjobs.yaml`."""
    result = Export()
    documents, result.skipped = cronjobs(tasks, image=image, namespace=namespace)
    header = "# CronJobs written by `cronctl export --format k8s` (apply: kubectl apply -f FILE)\n"
    for item in result.skipped:
        header += f"# not exported: task {item.task}: {item.reason}\n"
    body = "---\n".join(to_yaml(document) for document in documents)
    result.files.append(OutputFile("cronjobs.yaml", header + ("---\n" + body if body else "")))
    return result


def cronjobs(
    tasks: Iterable[Task], *, image: str, namespace: str | None = None
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Return the CronJobs of `tasks` as data, and the tasks left out with the reason."""
    tasks = list(tasks)
    labels: dict[str, int] = {}
    for task in tasks:
        label = dns_label(task.name, MAX_CRONJOB_NAME)
        labels[label] = labels.get(label, 0) + 1
    documents, skipped = [], []
    for task in tasks:
        try:
            data = cronjob(task, image=image, namespace=namespace)
        except NotExportable as exc:
            skipped.append(Skipped(task.name, exc.reason))
            continue
        if labels[data["metadata"]["name"]] > 1:
            data["metadata"]["name"] = dns_label(task.name, MAX_CRONJOB_NAME, unique=True)
        documents.append(data)
    return documents, skipped


# ---------------------------------------------------------------------------------------------
# YAML


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_KEYWORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_string(text: str) -> str:
    """Return `text` as a double-quoted YAML scalar (valid JSON string syntax too)."""
    return '"' + escape_quoted(text, _yaml_needs_code, "\\u{:04x}") + '"'


def _yaml_needs_code(code: int) -> bool:
    # Controls, C1, line/paragraph separators, the BOM and lone surrogates are not printable
    # YAML; JSON-style \\u escapes keep the document valid YAML and JSON at once.
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or code in (0x2028, 0x2029, 0xFEFF)
        or 0xD800 <= code <= 0xDFFF
    )


def _key(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _KEYWORDS:
        return key
    return yaml_string(key)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return yaml_string(value)
    if value is None:
        return "null"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return [pad + "{}"]
        lines = []
        for key, item in value.items():
            if isinstance(item, (Mapping, list)) and item:
                lines.append(f"{pad}{_key(key)}:")
                lines.extend(_lines(item, indent + 2))
            else:
                lines.append(f"{pad}{_key(key)}: {_inline(item)}")
        return lines
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            if isinstance(item, (Mapping, list)) and item:
                nested = _lines(item, indent + 2)
                lines.append(f"{pad}- {nested[0][indent + 2 :]}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_inline(item)}")
        return lines
    return [pad + _scalar(value)]


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(data: Mapping[str, Any] | Sequence[Any]) -> str:
    """Return `data` as a YAML block document (ends with a newline)."""
    return "\n".join(_lines(data, 0)) + "\n"
