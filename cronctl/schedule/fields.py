"""One cron field: its grammar, the values it selects, and `H` (hashed) items.

Grammar of a field: a comma-separated list of items, each one of
`*`, `*/n`, `a`, `a-b`, `a-b/n`, `a/n` (meaning `a-max/n`), `H`, `H/n`, `H(a-b)`, `H(a-b)/n`;
plus, in day-of-month, `L`, `L-n`, `LW`, `L-nW`, `nW` and `a-L` (`a-L/n`) (monthdays.py),
and in day-of-week `DOW#N` and `DOWL`. Values are ASCII numbers, or names (JAN-DEC, SUN-SAT,
either case) in the month and day-of-week fields.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from cronctl.errors import ScheduleError, excerpt
from cronctl.schedule.monthdays import MonthDays, merge, parse_month_day, shared


@dataclass(frozen=True)
class FieldKind:
    """The range and names of one of the five cron fields."""

    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for the value low + i
    # `H` without an explicit range hashes within [low, hash_high]: day-of-month stops at 28 so
    # that a hashed day exists in every month (as Jenkins does), day-of-week at 6 (7 is Sunday).
    hash_high: int = -1

    @property
    def hash_top(self) -> int:
        return self.high if self.hash_high < 0 else self.hash_high


MINUTE = FieldKind("minute", 0, 59)
HOUR = FieldKind("hour", 0, 23)
DAY_OF_MONTH = FieldKind("day-of-month", 1, 31, hash_high=28)
MONTH = FieldKind(
    "month",
    1,
    12,
    names=("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
)
# 0 and 7 are both Sunday, so that ranges such as 5-7 (Friday to Sunday) can be written.
DAY_OF_WEEK = FieldKind(
    "day-of-week", 0, 7, names=("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), hash_high=6
)
KINDS = (MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK)


@dataclass(frozen=True)
class Field:
    """A parsed field: the values it selects (day-of-week 7 folded into 0)."""

    text: str
    values: frozenset[int]
    month_days: MonthDays = MonthDays()  # day-of-month `L`, `L-n`, `nW`, `LW`, `L-nW`
    nth_weekdays: frozenset[tuple[int, int]] = frozenset()  # day-of-week `FRI#1` -> (5, 1)
    last_weekdays: frozenset[int] = frozenset()  # day-of-week `FRIL` -> 5
    hashed: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (H item, the values it resolved to)

    @property
    def starts_with_star(self) -> bool:
        return self.text.startswith("*")

    @property
    def last_day(self) -> bool:
        """Whether the field has `L` (the last day of the month)."""
        return 0 in self.month_days.before_last


_VALUE = r"[0-9]+|[A-Za-z]+"
_RANGE_ITEM = re.compile(rf"(?P<lo>{_VALUE})(?:-(?P<hi>{_VALUE}))?(?:/(?P<step>[0-9]+))?")
_STAR_ITEM = re.compile(r"\*(?:/(?P<step>[0-9]+))?")
_HASH_ITEM = re.compile(rf"H(?:\((?P<lo>{_VALUE})-(?P<hi>{_VALUE})\))?(?:/(?P<step>[0-9]+))?")
_NTH_ITEM = re.compile(rf"(?P<day>{_VALUE})#(?P<n>[0-9]+)")
_LAST_WEEKDAY = re.compile(r"(?P<day>[0-9]+|[A-Za-z]+?)L", re.IGNORECASE)
# croniter writes the last Friday `L5`; Quartz, cronsim and Cronos (and cronctl) `5L`.
_LAST_WEEKDAY_REVERSED = re.compile(r"L(?P<day>[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)", re.IGNORECASE)


def parse_field(text: str, kind: FieldKind, name: str | None) -> Field:
    """Parse one field; raise ScheduleError saying what is wrong and what is allowed."""
    # The same few field texts recur across thousands of tasks; only `H` depends on the name.
    if "H" not in text:
        return _parse_field(text, kind, None)
    # A field with `H` is each task's own, but tasks whose names hash alike get equal fields
    # (`H * * * *` has 60): they share one, and so share their cron fields (spec.parse_cron)
    # and their next-slot searches (docs/performance.md, "100,000 tasks", round 3).
    field = _read_field(text, kind, name)
    if len(_EQUAL_FIELDS) >= _EQUAL_FIELDS_KEPT:
        _EQUAL_FIELDS.clear()
    return _EQUAL_FIELDS.setdefault(field, field)


_EQUAL_FIELDS: dict[Field, Field] = {}
_EQUAL_FIELDS_KEPT = 65536


@functools.lru_cache(maxsize=4096)
def _parse_field(text: str, kind: FieldKind, name: str | None) -> Field:
    return _read_field(text, kind, name)


def _read_field(text: str, kind: FieldKind, name: str | None) -> Field:
    values: set[int] = set()
    month_days: list[MonthDays] = []
    nth: set[tuple[int, int]] = set()
    last_weekdays: set[int] = set()
    hashed: list[tuple[str, tuple[int, ...]]] = []
    for item in text.split(","):
        if not item:
            raise _error(kind, text, "has an empty list item")
        if kind is DAY_OF_MONTH and (form := parse_month_day(item)) is not None:
            month_days.append(form)
        elif (match := _NTH_ITEM.fullmatch(item)) and kind is DAY_OF_WEEK:
            nth.add(_nth_weekday(match, item))
        elif (match := _LAST_WEEKDAY.fullmatch(item)) and kind is DAY_OF_WEEK:
            last_weekdays.add(_value(DAY_OF_WEEK, match["day"], item) % 7)
        elif match := _STAR_ITEM.fullmatch(item):
            values.update(range(kind.low, kind.high + 1, _step(kind, match["step"], item)))
        elif match := _HASH_ITEM.fullmatch(item):
            selected = _hashed(kind, match, item, name)
            hashed.append((item, tuple(sorted(_fold_sunday(kind, selected)))))
            values.update(selected)
        elif match := _RANGE_ITEM.fullmatch(item):
            values.update(_range(kind, match, item))
        else:
            raise _unsupported(kind, item)
    forms = merge(month_days)
    if (forms.nearest_weekday or forms.nearest_weekday_before_last) and "," in text:
        # Quartz and Cronos refuse W in a list (Cronos: `1,2W`); so does cronctl.
        raise _error(kind, text, "lists a W item; nW, LW and L-nW stand alone in day-of-month")
    return Field(
        text,
        shared(frozenset(_fold_sunday(kind, values))),
        month_days=forms,
        nth_weekdays=shared(frozenset(nth)),
        last_weekdays=shared(frozenset(last_weekdays)),
        hashed=tuple(hashed),
    )


def _range(kind: FieldKind, match: re.Match[str], item: str) -> range:
    low = _value(kind, match["lo"], item)
    if kind is DAY_OF_MONTH and (match["hi"] or "").upper() == "L":
        # `a-L` is a to the last day: as a-31, since no month has a day after its last.
        high = kind.high
    elif match["hi"] is not None:
        high = _value(kind, match["hi"], item)
        if high < low:
            raise _error(
                kind,
                item,
                f"is a reversed range ({low} > {high}); ranges do not wrap"
                + _wrapped_range(kind, low, high, match),
            )
    elif match["step"] is not None:
        high = kind.high  # `a/n` means `a-max/n`
    else:
        high = low
    return range(low, high + 1, _step(kind, match["step"], item))


def _wrapped_range(kind: FieldKind, low: int, high: int, match: re.Match[str]) -> str:
    """The advice for a reversed range `low-high`: the two ranges it was meant as, split at
    the end of the field (`FRI-MON` is `FRI-SAT,SUN-MON`, `22-2` is `22-23,0-2`), written in
    names when the range was. A stepped range has no such simple split."""
    # Day-of-week wraps from Saturday (6) to Sunday (0); 7 is Sunday again.
    top = 6 if kind is DAY_OF_WEEK else kind.high
    if match["step"] is not None:
        return f"; split it in two at the end of the field ({top})"
    named = bool(kind.names) and match["lo"].isalpha() and match["hi"].isalpha()

    def shown(value: int) -> str:
        return kind.names[value - kind.low] if named else str(value)

    def span(first: int, last: int) -> str:
        return shown(first) if first == last else f"{shown(first)}-{shown(last)}"

    parts = [span(kind.low, high)]
    if not (kind is DAY_OF_WEEK and low == 7):  # 7-1 is Sunday to Monday: just 0-1
        parts.insert(0, span(low, top))
    return f", so write {','.join(parts)}"


def _step(kind: FieldKind, text: str | None, item: str) -> int:
    step = 1 if text is None else _number(kind, text, item)
    if step == 0:
        raise _error(kind, item, "has a step of 0; a step must be 1 or more")
    return step


def _hashed(kind: FieldKind, match: re.Match[str], item: str, name: str | None) -> range:
    if not name:
        raise ScheduleError(
            f"'{item}' in the {kind.label} field needs a task name: H picks a stable value "
            "by hashing the name",
            hint="give the task a name (explain --name NAME)",
        )
    low, high = kind.low, kind.hash_top
    if match["lo"] is not None:
        low, high = _value(kind, match["lo"], item), _value(kind, match["hi"], item)
        if high < low:
            raise _error(kind, item, f"has a reversed range ({low} > {high})")
    import hashlib  # here: loading OpenSSL costs 2 ms, and only H needs it

    digest = hashlib.sha256(f"{name}\n{kind.label}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    if match["step"] is None:
        start = low + number % (high - low + 1)
        return range(start, start + 1)
    # H/n: an offset hashed within [0, n), then every n, as */n shifted by that offset.
    step = _step(kind, match["step"], item)
    return range(low + number % min(step, high - low + 1), high + 1, step)


def _nth_weekday(match: re.Match[str], item: str) -> tuple[int, int]:
    weekday = _value(DAY_OF_WEEK, match["day"], item) % 7
    n = _number(DAY_OF_WEEK, match["n"], item)
    if not 1 <= n <= 5:
        raise _error(DAY_OF_WEEK, item, f"asks for weekday number {n}; #N takes N from 1 to 5")
    return weekday, n


def _value(kind: FieldKind, token: str, item: str) -> int:
    if token.isdigit():
        number = _number(kind, token, item)
    elif token.upper() in kind.names:
        number = kind.low + kind.names.index(token.upper())
    else:
        raise _unsupported(kind, token if token.isalpha() and kind.names else item)
    if not kind.low <= number <= kind.high:
        raise _error(kind, item, f"is out of range: {number} is not in {kind.low}-{kind.high}")
    return number


def _fold_sunday(kind: FieldKind, values: set[int] | range) -> set[int]:
    return {v % 7 for v in values} if kind is DAY_OF_WEEK else set(values)


def _names(kind: FieldKind) -> str:
    return f"{kind.names[0]}-{kind.names[-1]}"


def _unsupported(kind: FieldKind, item: str) -> ScheduleError:
    """Say why an item that is not in the grammar is refused."""
    if "?" in item:
        return _error(kind, item, "uses '?', which is Quartz syntax, not cron; use '*'")
    upper = item.upper()
    if kind is DAY_OF_WEEK and (match := _LAST_WEEKDAY_REVERSED.fullmatch(item)):
        return _error(kind, item, f"is not valid; the last such weekday is written {match['day']}L")
    if kind is DAY_OF_MONTH and ("L" in upper or "W" in upper):
        return _error(
            kind,
            item,
            "is not valid; day-of-month takes L, L-n, LW, L-nW, nW and a-L (a-L/n) "
            "as whole list items",
        )
    if upper == "L" or (("L" in upper or "W" in upper) and not kind.names):
        return _error(
            kind,
            item,
            "is not supported; L and W are day-of-month items (L, L-n, LW, nW), and DOWL "
            "(the last such weekday) is day-of-week's",
        )
    if "#" in item:
        return _error(kind, item, "is not supported; '#' is written DOW#N in day-of-week")
    if kind.names and re.fullmatch("[A-Za-z]+", item):
        return _error(kind, item, f"is not a {kind.label} name ({_names(kind)})")
    allowed = "*, a, a-b, a,b, */n, a-b/n, a/n, H, H/n, H(a-b)"
    if kind is DAY_OF_MONTH:
        allowed += ", L, L-n, LW, L-nW, nW, a-L"
    if kind is DAY_OF_WEEK:
        allowed += f", DOW#N, DOWL, names {_names(kind)}"
    if kind is MONTH:
        allowed += f", names {_names(kind)}"
    return _error(kind, item, f"is not valid; allowed: {allowed}")


def _error(kind: FieldKind, item: str, reason: str) -> ScheduleError:
    return ScheduleError(f"{kind.label} field: '{excerpt(item)}' {reason}")


# No field, step or #N takes a number of more digits; and int() of a text of more than 4,300
# digits raises a bare ValueError (Python's guard against quadratic conversion).
_MAX_DIGITS = 4


def _number(kind: FieldKind, text: str, item: str) -> int:
    """The ASCII decimal `text` (the grammar's regexes matched it) as an int."""
    if len(text.lstrip("0")) > _MAX_DIGITS:
        raise _error(kind, item, f"is out of range: a number of {len(text)} digits")
    return int(text)
