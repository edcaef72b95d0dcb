"""Task names for imported crontab lines: the program a command runs, made unique.

`derive_name` skips what does not name a job (shell keywords, guards such as `test -x ... ||`,
wrappers such as `nice`, `flock -w 5 lock`, `sh -c '...'`) and keeps the script's name without
its suffix, so `test -x /usr/lib/php/sessionclean && /usr/lib/php/sessionclean` is
`sessionclean`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence

from cronctl import model
from cronctl.errors import UsageError

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
    return bool(sep) and bool(model.ENV_NAME.fullmatch(name))


def unique_names(wanted: Sequence[str], taken: set[str], prefix: str | None) -> list[str]:
    """Return one new name per wanted name, none of them in `taken`.

    With a `prefix` the names are `prefix-1`, `prefix-2`... whatever was wanted; otherwise a
    wanted name already used gets `-2`, `-3`... (cut so that it stays within MAX_NAME).
    """
    used = set(taken)
    names = []
    counter = 0
    for base in wanted:
        if prefix is not None:
            while True:
                counter += 1
                name = f"{prefix}-{counter}"
                if name not in used:
                    break
        else:
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
