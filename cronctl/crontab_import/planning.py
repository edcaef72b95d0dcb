"""Planning and writing an import: named, validated tasks appended to the task file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronctl import model, taskfile
from cronctl.crontab_import.naming import check_prefix, unique_names
from cronctl.crontab_import.reader import Candidate, Note, Problem, other_users_note, parse
from cronctl.errors import ScheduleError, TaskFileError


@dataclass(frozen=True)
class Planned:
    name: str
    line: int
    text: str
    table: dict[str, Any]
    task: model.Task


@dataclass(frozen=True)
class Present:
    """A line whose task the file already holds (imported before): it is not added again."""

    line: int
    text: str
    task: str


@dataclass
class Plan:
    """What `import` will add: named, validated tasks, the lines whose tasks the file holds
    already, and the lines it cannot import."""

    tasks: list[Planned] = field(default_factory=list)
    present: list[Present] = field(default_factory=list)
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
    unmatched = _by_identity(existing)
    # Validated before naming, so that a line that cannot be imported uses up no name.
    valid: list[Candidate] = []
    for candidate in parsed.candidates:
        try:
            task = model.parse_task(candidate.preferred_name, candidate.table, defaults, zone)
        except (TaskFileError, ScheduleError) as exc:
            result.problems.append(Problem(candidate.line, candidate.text, _reason(exc)))
            continue
        # Each task of the file stands for one line: a crontab that holds a line twice, imported
        # twice, finds both copies.
        same = unmatched.get(_identity(task))
        if same:
            result.present.append(Present(candidate.line, candidate.text, same.pop(0)))
            continue
        valid.append(candidate)
    users: set[str] = set()
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
        if candidate.user is not None:
            users.add(candidate.user)
    result.problems.sort(key=lambda p: p.line)
    result.notes = _notes_of_imported(parsed.notes, parsed.users_note, users, result.problems)
    return result


# What makes a task the one a crontab line was imported as: what runs, when, where and with
# what environment; what a user may have changed since (description, retries, notify...) is not.
def _identity(task: model.Task) -> tuple[Any, ...]:
    env = tuple(sorted(task.env.items()))
    return (task.schedule, task.command, task.timezone, env, task.working_dir, task.shell)


def _by_identity(existing: Mapping[str, model.Task]) -> dict[tuple[Any, ...], list[str]]:
    found: dict[tuple[Any, ...], list[str]] = {}
    for name, task in existing.items():
        found.setdefault(_identity(task), []).append(name)
    return found


def _notes_of_imported(
    notes: list[Note], users_note: Note | None, users: set[str], problems: list[Problem]
) -> list[Note]:
    """The reader's notes without those about refused lines: a note on a refused line is left
    out, and the note on other users' lines names only the users of lines imported."""
    refused = {problem.line for problem in problems}
    kept = [n for n in notes if n is not users_note and (n.line is None or n.line not in refused)]
    note = other_users_note(users)
    return [*kept, note] if note else kept


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
