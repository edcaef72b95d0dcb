"""Planning and writing an import: named, validated tasks appended to the task file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronctl import model, taskfile
from cronctl.crontab_import.naming import check_prefix, unique_names
from cronctl.crontab_import.reader import Candidate, Note, Problem, parse
from cronctl.errors import ScheduleError, TaskFileError


@dataclass(frozen=True)
class Planned:
    name: str
    line: int
    text: str
    table: dict[str, Any]
    task: model.Task


@dataclass
class Plan:
    """What `import` will add: named, validated tasks, and the lines it cannot import."""

    tasks: list[Planned] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    system: bool = False
    source: str = "-"

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]


def plan(
    text: str,
    existing: Mapping[str, model.Task],
    defaults: model.Defaults,
    *,
    prefix: str | None = None,
    system: bool | None = None,
    path: str | None = None,
    default_zone: str | None = None,
) -> Plan:
    """Return the tasks `import` would add to a file holding `existing` tasks."""
    if prefix is not None:
        check_prefix(prefix)
    parsed = parse(text, system=system, path=path)
    result = Plan(
        problems=list(parsed.problems),
        notes=list(parsed.notes),
        system=parsed.system,
        source=path or "-",
    )
    zone = default_zone or model.machine_timezone()
    # Validated before naming, so that a line that cannot be imported uses up no name.
    valid: list[Candidate] = []
    for candidate in parsed.candidates:
        try:
            model.parse_task(candidate.preferred_name, candidate.table, defaults, zone)
        except (TaskFileError, ScheduleError) as exc:
            result.problems.append(Problem(candidate.line, candidate.text, _reason(exc)))
            continue
        valid.append(candidate)
    for candidate, name in zip(
        valid,
        unique_names([c.preferred_name for c in valid], set(existing), prefix),
        strict=True,
    ):
        # Parsed again under its final name: `H` values are hashed from the name, and rare
        # ones (`H(29-31) * 2 *`...) fire under one name and never under another.
        try:
            task = model.parse_task(name, candidate.table, defaults, zone)
        except (TaskFileError, ScheduleError) as exc:
            result.problems.append(Problem(candidate.line, candidate.text, _reason(exc)))
            continue
        result.tasks.append(Planned(name, candidate.line, candidate.text, candidate.table, task))
    result.problems.sort(key=lambda p: p.line)
    return result


def _reason(exc: Exception) -> str:
    if isinstance(exc, TaskFileError):
        detail = exc.detail
        if exc.key == "schedule" and detail.startswith("'"):
            detail = detail.split("': ", 1)[-1]  # the schedule is quoted again in the message
        where = f"{exc.key}: " if exc.key else ""
        text = f"{where}{detail}"
    else:
        text = str(exc)
    hint = getattr(exc, "hint", None)
    return f"{text} ({hint})" if hint else text


def render(result: Plan) -> str:
    """Return the TOML text of the planned tasks, each with a comment naming its source line."""
    blocks = []
    for item in result.tasks:
        origin = f"# imported from {result.source}:{item.line}\n"
        blocks.append(origin + taskfile.render_task_table(item.name, item.table))
    return "\n".join(blocks)


def appended(text: str, block: str) -> str:
    if not block:
        return text
    if not text.strip():
        return block
    return text.rstrip("\n") + "\n\n" + block


def import_into(
    path: Path,
    text: str,
    *,
    prefix: str | None = None,
    system: bool | None = None,
    source: str | None = None,
    dry_run: bool = False,
) -> Plan:
    """Append the tasks of crontab `text` to the task file `path` (unless `dry_run`); return
    the plan that was written (or would be)."""

    def planned(existing: taskfile.TaskFile) -> Plan:
        return plan(
            text, existing.tasks, existing.defaults, prefix=prefix, system=system, path=source
        )

    result = planned(taskfile.load(path))
    if not result.tasks or dry_run:
        return result
    # Planned again under the lock, against the file as it is then; `update` checks that every
    # task other than the new ones reads back identical (`touched` is filled in by `change`,
    # which runs before that check).
    touched: set[str] = set()

    def change(existing: taskfile.TaskFile) -> str:
        nonlocal result
        result = planned(existing)
        touched.clear()  # `update` may call this again on a fresher file
        touched.update(result.names)
        return appended(existing.text, render(result))

    taskfile.update(path, change, touched=touched)
    return result
