"""`cronctl import`: crontab text into task tables.

Reads what crontab(5) allows: entries of five time fields and a command, `@` macros,
`NAME=value` assignments (they apply to the entries below them, as in cron), comments and blank
lines; and the system format of /etc/crontab and /etc/cron.d, whose sixth field is a user.
Cron's special variables become task keys: `SHELL` -> `shell`, `CRON_TZ` (and `TZ` unless a
`CRON_TZ` was given) -> `timezone`, `HOME` -> `working_dir` (cron runs jobs there), cronie's
`RANDOM_DELAY` (minutes) -> `jitter`, and `MAILTO` with full addresses -> `notify.email` on
failure. Every other assignment goes into `env`.

Nothing is silently reinterpreted: a line that cannot be imported exactly is reported with its
number and the reason, and the others are imported.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from cronctl import model, taskfile
from cronctl.errors import ScheduleError, TaskFileError, UsageError
from cronctl.export import crontab as crontab_export
from cronctl.schedule.spec import MACROS

CRON_MACROS = ("@reboot", *MACROS)
SYSTEM_PATHS = ("/etc/crontab", "/etc/anacrontab")
SYSTEM_DIRS = ("/etc/cron.d",)
# The comment `export --format crontab` writes before each entry, read with any spacing.
NAME_COMMENT = re.compile(
    r"\s*".join(map(re.escape, crontab_export.NAME_COMMENT.split()))
    + r"\s*(?P<name>\S+)(?:\s+-\s+(?P<description>.*))?$"
)
_ASSIGNMENT = re.compile(r"\s*(?P<name>[^\s=]+)\s*=(?P<value>.*)$")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME = 63

# Words that start a command but do not name it: guards, wrappers and shell keywords.
_KEYWORDS = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "for",
    "!",
    "{",
    "}",
    "(",
    ")",
    "exec",
    "command",
    "time",
    "builtin",
    "[[",
    "]]",
}
_GUARDS = {
    "[",
    "test",
    "cd",
    "true",
    ":",
    "false",
    "sleep",
    "echo",
    "printf",
    "which",
    "type",
    "hash",
}
_WRAPPERS = {
    "nice": 0,
    "ionice": 0,
    "timeout": 1,
    "flock": 1,
    "env": 0,
    "sudo": 0,
    "chronic": 0,
    "nohup": 0,
    "setsid": 0,
    "run-parts": 0,
    "sh": 0,
    "bash": 0,
    "dash": 0,
    "zsh": 0,
    "python": 0,
    "python3": 0,
    "perl": 0,
    "php": 0,
    "ruby": 0,
    "node": 0,
    "cronic": 0,
    "systemd-cat": 0,
    "unbuffer": 0,
    "caffeinate": 0,
    "nocache": 0,
}
_INLINE_CODE = {"-c", "-e", "-r", "--command"}
_SHELLS = {"sh", "bash", "dash", "zsh"}
_OPTION_ARGS = {  # options of wrappers that take a value as the next word
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"},
    "nice": {"-n"},
    "ionice": {"-c", "-n", "-p"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "flock": {"-w", "-E", "--timeout", "--conflict-exit-code"},
    "env": {"-u", "-C", "-S", "--unset", "--chdir"},
}
_SCRIPT_SUFFIXES = (".sh", ".bash", ".py", ".pl", ".php", ".rb", ".js")
_OPERATORS = {"&&", "||", ";", "|", "&", ";;", "|&"}


@dataclass(frozen=True)
class Candidate:
    """One crontab entry that can become a task (its name is chosen later)."""

    line: int
    text: str
    base_name: str
    table: dict[str, Any]
    wanted_name: str | None = None  # from a `# cronctl: NAME` comment written by export


@dataclass(frozen=True)
class Problem:
    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class Note:
    line: int | None
    message: str


@dataclass
class Parsed:
    candidates: list[Candidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    system: bool = False


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


# ---------------------------------------------------------------------------------------------
# Reading the crontab


def is_system_path(path: str | None) -> bool:
    if not path or path == "-":
        return False
    full = os.path.abspath(path)
    return full in SYSTEM_PATHS or any(str(PurePath(full).parent) == d for d in SYSTEM_DIRS)


def _is_account(word: str) -> bool:
    try:
        pwd.getpwnam(word)
    except (KeyError, TypeError, ValueError):
        return False
    return True


def looks_like_system(entries: list[list[str]]) -> bool:
    """Return whether every entry has a user account as its sixth word, followed by a command.

    A command that is also an account name and a program on PATH (`sync`) counts as a command.
    """
    if not entries:
        return False
    for words in entries:
        user_index = 1 if words[0].startswith("@") else 5
        if len(words) <= user_index + 1:
            return False
        user = words[user_index]
        if not _is_account(user) or shutil.which(user):
            return False
    return True


def unescape_command(command: str) -> str | None:
    """Return the command as cron passes it to the shell: `\\%` becomes `%`.

    Return None when it has an unescaped `%`: cron ends the command there and feeds the rest
    to the job's standard input, with each further `%` as a newline.
    """
    out: list[str] = []
    escaped = False
    for char in command:
        if escaped:
            if char == "%":
                out[-1] = "%"
            else:
                out.append(char)
            escaped = False
            continue
        if char == "%":
            return None
        out.append(char)
        escaped = char == "\\"
    return "".join(out)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _split_entry(body: str, count: int) -> tuple[list[str], str] | None:
    """Split off `count` whitespace-separated words; return them and the rest of the line."""
    words: list[str] = []
    rest = body
    for _ in range(count):
        rest = rest.lstrip(" \t")
        match = re.match(r"[^ \t]+", rest)
        if not match:
            return None
        words.append(match.group(0))
        rest = rest[match.end() :]
    return words, rest.lstrip(" \t")


def parse(text: str, *, system: bool | None = None, path: str | None = None) -> Parsed:
    """Read crontab `text` into candidate task tables, problems and notes."""
    lines = text.replace("\r\n", "\n").split("\n")
    if system is None:
        system = is_system_path(path) or looks_like_system(_entry_words(lines))
    result = Parsed(system=system)
    if system:
        result.notes.append(
            Note(
                None,
                "system crontab format: the user field of each line is dropped; "
                "cronctl runs every task as you",
            )
        )
    env: dict[str, str] = {}
    shell: str | None = None
    zone: str | None = None
    cron_tz = False
    home: str | None = None
    jitter: int | None = None
    mail_to: list[str] | None = None
    wanted: tuple[str, str | None] | None = None
    comments: list[str] = []  # the comment block right above the current line
    users: set[str] = set()

    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped:
            wanted = None
            comments = []
            continue
        if "\ufffd" in line:
            result.problems.append(Problem(number, line, "the line is not valid UTF-8"))
            comments = []
            continue
        if stripped.startswith("#"):
            match = NAME_COMMENT.match(stripped)
            if match and re.fullmatch(model.NAME_RULE, match["name"]):
                wanted = (match["name"], match["description"])
            comments.append(stripped)
            continue
        above, comments = comments, []
        assignment = _ASSIGNMENT.match(line)
        if assignment and not stripped.startswith("@"):
            wanted = None
            name, value = assignment["name"], _unquote(assignment["value"])
            if not model._ENV_NAME.fullmatch(name):
                result.problems.append(
                    Problem(number, line, f"'{name}' is not a valid environment variable name")
                )
                continue
            if name == "SHELL":
                shell = value or None
            elif name == "CRON_TZ" or (name == "TZ" and not cron_tz):
                if value and not model.is_valid_zone(value):
                    result.problems.append(
                        Problem(
                            number,
                            line,
                            f"unknown time zone '{value}'; the lines below keep the zone before it",
                        )
                    )
                    if name == "TZ":
                        env[name] = value
                    continue
                zone = value or None
                cron_tz = cron_tz or name == "CRON_TZ"
                if name == "TZ":
                    env[name] = value
            elif name == "MAILTO":
                addresses = [a.strip() for a in value.split(",") if a.strip()]
                if not addresses:
                    mail_to = None
                elif all("@" in a for a in addresses):
                    mail_to = addresses
                    result.notes.append(
                        Note(
                            number,
                            f"MAILTO {value}: imported as notify.email on failure "
                            "(cron mails any output; cronctl mails failures)",
                        )
                    )
                else:
                    mail_to = None
                    result.notes.append(
                        Note(
                            number,
                            f"MAILTO {value} not imported: cronctl mails full "
                            "addresses only (user@host); see notify in cronctl(1)",
                        )
                    )
            elif name == "RANDOM_DELAY":
                if value.isdigit():
                    jitter = int(value) or None
                else:
                    result.problems.append(
                        Problem(number, line, "RANDOM_DELAY is not a whole number of minutes")
                    )
            elif name in (
                "MAILFROM",
                "CONTENT_TYPE",
                "CONTENT_TRANSFER_ENCODING",
                "CRON_CORRECT_MAIL_HEADER",
            ):
                result.notes.append(
                    Note(number, f"{name} not imported: it only shapes cron's mail")
                )
            else:
                if name == "HOME":
                    home = value or None
                env[name] = value
            continue
        # An entry.
        entry_wanted, wanted = wanted, None
        words_before = 1 if stripped.startswith("@") else 5
        split = _split_entry(line, words_before + (1 if system else 0))
        if split is None or not split[1]:
            what = "a macro" if stripped.startswith("@") else "5 time fields"
            user = " and a user" if system else ""
            result.problems.append(Problem(number, line, f"expected {what}{user}, then a command"))
            continue
        words, rest = split
        if system:
            users.add(words[-1])
            words = words[:-1]
        if stripped.startswith("@"):
            macro = words[0]
            if macro not in CRON_MACROS:
                result.problems.append(
                    Problem(
                        number,
                        line,
                        f"unknown macro '{macro}'; crontab has {', '.join(CRON_MACROS)}",
                    )
                )
                continue
            schedule = macro
        else:
            schedule = " ".join(words)
        command = unescape_command(rest)
        if command is None:
            result.problems.append(
                Problem(
                    number,
                    line,
                    "the command has an unescaped '%': cron sends the text after it to the job's "
                    "standard input; cronctl has no input for jobs (write '\\%' for a percent "
                    "sign)",
                )
            )
            continue
        table: dict[str, Any] = {"schedule": schedule, "command": command}
        if entry_wanted and entry_wanted[1]:
            table["description"] = entry_wanted[1]
        elif description := _description(above):
            table["description"] = description
        if zone:
            table["timezone"] = zone
        if jitter:
            table["jitter"] = f"{jitter}m"
        if home:
            table["working_dir"] = home
        if shell and shell != model.DEFAULT_SHELL:
            table["shell"] = shell
        if env:
            table["env"] = dict(env)
        if mail_to:
            table["notify"] = {"on": ["failure"], "email": list(mail_to)}
        result.candidates.append(
            Candidate(
                number, line, derive_name(command), table, entry_wanted[0] if entry_wanted else None
            )
        )
    me = _me()
    others = sorted(u for u in users if u != me)
    if others:
        result.notes.append(
            Note(None, f"lines for user {', '.join(others)} will run as {me or 'you'}")
        )
    return result


def _description(comments: list[str]) -> str | None:
    """Return a one-line comment right above an entry as its description.

    Longer blocks are file headers or syntax diagrams (Debian's /etc/crontab), not descriptions;
    commented-out entries and assignments are not descriptions either.
    """
    if len(comments) != 1:
        return None
    text = comments[0].lstrip("#").strip()
    if not text or NAME_COMMENT.match(comments[0]) or _ASSIGNMENT.match(text):
        return None
    first = text.split()[0]
    if first.startswith("@") or first[0].isdigit() or first.startswith("*"):
        return None
    return text


def _me() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def _entry_words(lines: list[str]) -> list[list[str]]:
    entries = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _ASSIGNMENT.match(line) and not stripped.startswith("@"):
            continue
        entries.append(stripped.split())
    return entries


# ---------------------------------------------------------------------------------------------
# Names


def derive_name(command: str) -> str:
    """Return a task name for `command`: the program it runs, e.g. `sessionclean`, `cron.daily`."""
    word = _program(command) or "task"
    base = os.path.basename(word.rstrip("/")) or "task"
    for suffix in _SCRIPT_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    name = _NOT_NAME.sub("-", base).strip("-._")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalnum():
        name = "task"
    return name[:MAX_NAME]


def _tokens(command: str) -> list[str]:
    # Command substitutions run helpers (`$(date +%d)`); they do not name the job.
    command = re.sub(r"\$\([^()]*\)|`[^`]*`", "X", command)
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: fall back to words
        return command.split()


def _segments(command: str) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    for token in _tokens(command):
        if token in _OPERATORS or set(token) <= set("&|;()"):
            segments.append([])
        else:
            segments[-1].append(token)
    return [s for s in segments if s]


def _program(command: str, depth: int = 0) -> str | None:
    """Return the word naming the program a command line runs, skipping guards and wrappers."""
    segments = _segments(command)
    for words in segments:
        found = _segment_program(words, depth)
        if found:
            return found
    # Only guards and helpers (`echo hi > f`): name it after the first of them.
    for words in segments:
        for word in words:
            if word not in _KEYWORDS and not _is_assignment(word):
                return word
    return None


def _segment_program(words: list[str], depth: int) -> str | None:
    index = 0
    while index < len(words) and (words[index] in _KEYWORDS or _is_assignment(words[index])):
        if (
            words[index] == "command"
            and index + 1 < len(words)
            and words[index + 1] in ("-v", "-V")
        ):
            return None  # `command -v prog`: a check that prog exists
        index += 1
    if index >= len(words):
        return None
    first = words[index]
    if first in _GUARDS or first.startswith(("<", ">", "-")):
        return None
    name = os.path.basename(first)
    if name not in _WRAPPERS:
        return first
    skip = _WRAPPERS[name]
    takes_value = _OPTION_ARGS.get(name, set())
    rest = words[index + 1 :]
    position = 0
    while position < len(rest):
        word = rest[position]
        if word in _INLINE_CODE and name not in _OPTION_ARGS:
            if name in _SHELLS and position + 1 < len(rest) and depth < 3:
                return _program(rest[position + 1], depth + 1)
            return None  # perl -e '...': inline code names nothing
        if word.startswith("-"):
            position += 2 if word in takes_value else 1
            continue
        if skip:
            skip -= 1
            position += 1
            continue
        if _is_assignment(word) or word.isdigit() or word.startswith(("<", ">")):
            position += 1
            continue
        if os.path.basename(word) in _WRAPPERS:
            return _segment_program(rest[position:], depth)
        return word
    return first


def _is_assignment(word: str) -> bool:
    name, sep, _ = word.partition("=")
    return bool(sep) and bool(model._ENV_NAME.fullmatch(name))


def unique_names(candidates: list[Candidate], taken: set[str], prefix: str | None) -> list[str]:
    """Return one new name per candidate, none of them in `taken`."""
    used = set(taken)
    names = []
    counter = 0
    for candidate in candidates:
        if prefix is not None:
            while True:
                counter += 1
                name = f"{prefix}-{counter}"
                if name not in used:
                    break
        else:
            base = candidate.wanted_name or candidate.base_name
            name = base
            number = 1
            while name in used:
                number += 1
                suffix = f"-{number}"
                name = base[: MAX_NAME - len(suffix)] + suffix
        used.add(name)
        names.append(name)
    return names


def check_prefix(prefix: str) -> None:
    try:
        model.check_name(f"{prefix}-1")
    except UsageError:
        raise UsageError(
            f"--prefix {prefix!r} does not make valid task names ({prefix}-1, {prefix}-2, ...)",
            hint=f"a name matches {model.NAME_RULE}",
        ) from None


# ---------------------------------------------------------------------------------------------
# Planning and writing


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
            model.parse_task(
                candidate.wanted_name or candidate.base_name, candidate.table, defaults, zone
            )
        except (TaskFileError, ScheduleError) as exc:
            result.problems.append(Problem(candidate.line, candidate.text, _reason(exc)))
            continue
        valid.append(candidate)
    for candidate, name in zip(valid, unique_names(valid, set(existing), prefix), strict=True):
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
