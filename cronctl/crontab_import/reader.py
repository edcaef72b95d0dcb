"""Reading crontab text: one method per kind of line.

Reads what crontab(5) allows: entries of five time fields and a command, `@` macros,
`NAME=value` assignments (they apply to the entries below them, as in cron), comments and blank
lines; and the system format of /etc/crontab and /etc/cron.d, whose sixth field is a user.
Cron's special variables become task keys: `SHELL` -> `shell`, `CRON_TZ` (and `TZ` unless a
`CRON_TZ` was given) -> `timezone`, `HOME` -> `working_dir` (cron runs jobs there), cronie's
`RANDOM_DELAY` (minutes) -> `jitter`, and `MAILTO` with full addresses -> `notify.email` on
output and failure (cron mails whatever a job prints; `MAILTO=""` mails nothing). Every other
assignment goes into `env`.

Nothing is silently reinterpreted: a line that cannot be imported exactly is a `Problem` with
its number and the reason, and the others are read.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, TypeAlias

from cronctl import model
from cronctl.crontab_import.naming import derive_name
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
_NameComment: TypeAlias = tuple[str, str | None]  # (name, description) of a NAME_COMMENT
_ASSIGNMENT = re.compile(r"\s*(?P<name>[^\s=]+)\s*=(?P<value>.*)$")
# Variables that only shape the mail cron sends: cronctl has no use for them.
_MAIL_ONLY = ("MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING", "CRON_CORRECT_MAIL_HEADER")
_SYSTEM_NOTE = (
    "system crontab format: the user field of each line is dropped; cronctl runs every task as you"
)
_PERCENT_PROBLEM = (
    "the command has an unescaped '%': cron sends the text after it to the job's standard "
    "input; cronctl has no input for jobs (write '\\%' for a percent sign)"
)


@dataclass(frozen=True)
class Candidate:
    """One crontab entry that can become a task (its name is chosen later)."""

    line: int
    text: str
    base_name: str
    table: dict[str, Any]
    wanted_name: str | None = None  # from a `# cronctl: NAME` comment written by export
    user: str | None = None  # the user field of the system format

    @property
    def preferred_name(self) -> str:
        """The name it asks for: its `# cronctl: NAME` comment's, else the one of its command."""
        return self.wanted_name or self.base_name


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
    users_note: Note | None = None  # the note on other users' lines, one of `notes`


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
    """Read crontab `text` into candidate task tables, problems and notes.

    `system` says whether lines carry a user field (None: guessed from `path` and the lines).
    """
    lines = text.replace("\r\n", "\n").split("\n")
    if system is None:
        system = is_system_path(path) or looks_like_system(_entry_words(lines))
    return CrontabReader(system).read(lines)


@dataclass
class _Settings:
    """What the assignments read so far set for the entries below them."""

    env: dict[str, str] = field(default_factory=dict)
    shell: str | None = None
    zone: str | None = None
    cron_tz: bool = False
    """A CRON_TZ was given: TZ no longer sets the zone (as in cronie)."""
    home: str | None = None
    jitter: int | None = None
    """RANDOM_DELAY, in minutes."""
    mail_to: list[str] | None = None

    def task_keys(self) -> dict[str, Any]:
        """The task keys an entry gets from them, in the order the task table shows them."""
        keys: dict[str, Any] = {}
        if self.zone:
            keys["timezone"] = self.zone
        if self.jitter:
            keys["jitter"] = f"{self.jitter}m"
        if self.home:
            keys["working_dir"] = self.home
        if self.shell and self.shell != model.DEFAULT_SHELL:
            keys["shell"] = self.shell
        if self.env:
            keys["env"] = dict(self.env)
        if self.mail_to:
            keys["notify"] = {"on": ["output", "failure"], "email": list(self.mail_to)}
        return keys


class CrontabReader:
    """Reads one crontab, line by line, with one method for each kind of line."""

    def __init__(self, system: bool) -> None:
        self.system = system
        """Lines carry a user field after the schedule (/etc/crontab, /etc/cron.d)."""
        self.result = Parsed(system=system)
        self.settings = _Settings()
        self.wanted: _NameComment | None = None
        """(name, description) of a `# cronctl: NAME - description` comment for the next entry."""
        self.comments: list[str] = []
        """The comment block right above the current line."""
        self.users: set[str] = set()
        self.user: str | None = None
        """The user field of the entry being read."""
        if system:
            self.result.notes.append(Note(None, _SYSTEM_NOTE))

    def read(self, lines: list[str]) -> Parsed:
        """Read every line (numbered from 1); return what was found."""
        for number, raw in enumerate(lines, start=1):
            self.read_line(number, raw.rstrip("\r"))
        self._note_other_users()
        return self.result

    def read_line(self, number: int, line: str) -> None:
        """Hand line `number` to the method of its kind."""
        stripped = line.strip()
        if not stripped:
            self.blank()
        elif "\ufffd" in line:
            self._problem(number, line, "the line is not valid UTF-8")
            self.comments = []
        elif stripped.startswith("#"):
            self.comment(stripped)
        else:
            above, self.comments = self.comments, []
            assignment = _ASSIGNMENT.match(line)
            if assignment and not stripped.startswith("@"):
                self.wanted = None
                self.assignment(number, line, assignment["name"], _unquote(assignment["value"]))
                return
            wanted, self.wanted = self.wanted, None
            if stripped.startswith("@"):
                self.macro_entry(number, line, above, wanted)
            else:
                self.timed_entry(number, line, above, wanted)

    # ----------------------------------------------------------------------- blank and comment

    def blank(self) -> None:
        """A blank line ends a comment block and any `# cronctl: NAME` above it."""
        self.wanted = None
        self.comments = []

    def comment(self, stripped: str) -> None:
        match = NAME_COMMENT.match(stripped)
        if match and re.fullmatch(model.NAME_RULE, match["name"]):
            self.wanted = (match["name"], match["description"])
        self.comments.append(stripped)

    # ----------------------------------------------------------------------- NAME=value

    def assignment(self, number: int, line: str, name: str, value: str) -> None:
        settings = self.settings
        if not model.ENV_NAME.fullmatch(name):
            self._problem(number, line, f"'{name}' is not a valid environment variable name")
        elif name == "SHELL":
            settings.shell = value or None
        elif name == "CRON_TZ" or (name == "TZ" and not settings.cron_tz):
            self.zone(number, line, name, value)
        elif name == "MAILTO":
            self.mail_to(number, value)
        elif name == "RANDOM_DELAY":
            self.random_delay(number, line, value)
        elif name in _MAIL_ONLY:
            self._note(number, f"{name} not imported: it only shapes cron's mail")
        else:
            if name == "HOME":
                settings.home = value or None
            settings.env[name] = value

    def zone(self, number: int, line: str, name: str, value: str) -> None:
        """CRON_TZ, or TZ before any CRON_TZ: the zone of the entries below (TZ stays in env)."""
        settings = self.settings
        if name == "TZ":
            settings.env[name] = value
        if value and not model.is_valid_zone(value):
            self._problem(
                number,
                line,
                f"unknown time zone '{value}'; the lines below keep the zone before it",
            )
            return
        settings.zone = value or None
        settings.cron_tz = settings.cron_tz or name == "CRON_TZ"

    def mail_to(self, number: int, value: str) -> None:
        """MAILTO: full addresses become notify.email on output and failure, as cron mails a
        job's output (and a failure that printed nothing is still worth a mail); an empty
        MAILTO turns mail off for the entries below; anything else is dropped."""
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        self.settings.mail_to = None
        if not addresses:
            self._note(number, 'MAILTO="": no mail for the lines below, as in cron')
            return
        if all("@" in a for a in addresses):
            self.settings.mail_to = addresses
            self._note(
                number,
                f"MAILTO {value}: imported as notify.email on output and failure "
                "(cron mails any output)",
            )
        else:
            self._note(
                number,
                f"MAILTO {value} not imported: cronctl mails full "
                "addresses only (user@host); see notify in cronctl(1)",
            )

    def random_delay(self, number: int, line: str, value: str) -> None:
        """cronie's RANDOM_DELAY (whole minutes) becomes the entries' jitter."""
        if value.isdigit():
            self.settings.jitter = int(value) or None
        else:
            self._problem(number, line, "RANDOM_DELAY is not a whole number of minutes")

    # ----------------------------------------------------------------------- entries

    def macro_entry(
        self, number: int, line: str, above: list[str], wanted: _NameComment | None
    ) -> None:
        """`@daily command` (in the system format `@daily user command`)."""
        split = self._fields(number, line, 1, "a macro")
        if split is None:
            return
        (macro,), rest = split
        if macro not in CRON_MACROS:
            self._problem(
                number, line, f"unknown macro '{macro}'; crontab has {', '.join(CRON_MACROS)}"
            )
            return
        self._add_entry(number, line, macro, rest, above, wanted)

    def timed_entry(
        self, number: int, line: str, above: list[str], wanted: _NameComment | None
    ) -> None:
        """`m h dom mon dow command` (in the system format with a user before the command)."""
        split = self._fields(number, line, 5, "5 time fields")
        if split is None:
            return
        words, rest = split
        self._add_entry(number, line, " ".join(words), rest, above, wanted)

    def _fields(
        self, number: int, line: str, count: int, what: str
    ) -> tuple[list[str], str] | None:
        """Split off `count` schedule words (and the user field); None when no command follows."""
        split = _split_entry(line, count + (1 if self.system else 0))
        if split is None or not split[1]:
            user = " and a user" if self.system else ""
            self._problem(number, line, f"expected {what}{user}, then a command")
            return None
        words, rest = split
        if self.system:
            words = self.user_field(words)
        return words, rest

    def user_field(self, words: list[str]) -> list[str]:
        """The system format's user (last of `words`): dropped, and noted if it is not us."""
        self.users.add(words[-1])
        self.user = words[-1]
        return words[:-1]

    def _add_entry(
        self,
        number: int,
        line: str,
        schedule: str,
        rest: str,
        above: list[str],
        wanted: _NameComment | None,
    ) -> None:
        command = unescape_command(rest)
        if command is None:
            self._problem(number, line, _PERCENT_PROBLEM)
            return
        table: dict[str, Any] = {"schedule": schedule, "command": command}
        if wanted and wanted[1]:
            table["description"] = wanted[1]
        elif description := _description(above):
            table["description"] = description
        table.update(self.settings.task_keys())
        self.result.candidates.append(
            Candidate(
                number,
                line,
                derive_name(command),
                table,
                wanted[0] if wanted else None,
                self.user if self.system else None,
            )
        )

    # ----------------------------------------------------------------------- reporting

    def _problem(self, number: int, line: str, reason: str) -> None:
        self.result.problems.append(Problem(number, line, reason))

    def _note(self, number: int | None, message: str) -> None:
        self.result.notes.append(Note(number, message))

    def _note_other_users(self) -> None:
        self.result.users_note = other_users_note(self.users)
        if self.result.users_note:
            self.result.notes.append(self.result.users_note)


def other_users_note(users: set[str]) -> Note | None:
    """The note that lines of other users will run as the one importing them, or None."""
    me = _me()
    others = sorted(u for u in users if u != me)
    if not others:
        return None
    return Note(None, f"lines for user {', '.join(others)} will run as {me or 'you'}")


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
