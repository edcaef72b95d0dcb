"""Time zones: which names are zones, the machine's zone, loading one, and its offset changes.

Every zone rule of cronctl lives here: the task model checks `timezone` keys with
`is_valid_zone`/`zone_hint`, a task without a `timezone` runs in `default_zone` (the [defaults]
timezone, else the system zone `machine_timezone`, never $TZ), and schedules load zones and walk
their transitions.

zoneinfo answers "what is the UTC offset at this instant" but does not list its transitions, so
they are found by probing once a day through a year and bisecting to the second where the offset
changed. In tzdata no two offset changes are less than about four days apart (the closest pair:
Africa/Freetown, 1939), so a daily probe cannot step over one. Results are cached per zone and
year. Instants here are naive datetimes in UTC; wall times are naive datetimes in the zone.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronctl.errors import ScheduleError

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
# The longest shift of wall clocks that is still daylight saving (README.md#daylight-saving-time).
# Vixie cron and cronie treat a clock change of more than three hours as the clock being set,
# not as DST. tzdata's larger ones are date-line moves (Pacific/Apia 2011 and Kwajalein 1993
# skipped a day, Kwajalein 1969 lived 23 hours twice) and Antarctic stations (Vostok 1994,
# 7 hours each way); Antarctica/Casey's 3-hour changes (2009-2011) are the largest kept as DST.
LONGEST_DST_SHIFT = timedelta(hours=3)

# Files in the zoneinfo folder that are not IANA zone names: `localtime` is whatever the machine
# uses (a task would change zone with it), `posixrules` is a template, and posix/ and right/ are
# copies of the whole tree that systemd and Kubernetes do not know.
_NOT_ZONES = ("localtime", "posixrules")
_COPY_FOLDERS = ("posix/", "right/")
_OFFSET = r"(?:UTC|GMT|Z)?\s*([+-])(\d{1,2})(?::?(\d{2}))?"  # compiled when a hint needs it


# Where the machine's zone is set: cron and systemd timers read it, and so does cronctl.
LOCALTIME = "/etc/localtime"
# Names of UTC itself (tzdata's links to Etc/UTC): TZ=UTC on a machine in Etc/UTC is no change.
_UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"}
)


def machine_timezone(localtime: str | os.PathLike[str] = LOCALTIME) -> str:
    """Return the IANA name of the machine's zone: the zone file `localtime` links to, else UTC.

    $TZ is not read (README.md#time-zones): it is the zone of one shell, and serve under
    systemd, cron and systemd timers never see it, so a zone read from it would be confirmed
    by `add` and then not be the zone the task runs in. `localtime` is a parameter so that a
    test can point it at a link of its own."""
    try:
        target = os.path.realpath(localtime)
    except OSError:
        return "UTC"
    marker = "zoneinfo" + os.sep
    if marker in target:
        name = _without_copy_folder(target.split(marker, 1)[1])
        if is_valid_zone(name):
            return name
    return "UTC"


DEFAULTS_SOURCE = "the [defaults] timezone of the task file"


@dataclass(frozen=True)
class DefaultZone:
    """The zone of a task without a `timezone` of its own, and where it comes from."""

    zone: str
    source: str  # for the note: "the system zone (/etc/localtime)"


def default_zone(
    configured: str | None, localtime: str | os.PathLike[str] = LOCALTIME
) -> DefaultZone:
    """The zone of a task without its own `timezone`: the [defaults] timezone (`configured`),
    else the system zone, else UTC; the one rule of add, list, explain, serve and the service."""
    if configured:
        return DefaultZone(configured, DEFAULTS_SOURCE)
    return DefaultZone(machine_timezone(localtime), f"the system zone ({os.fspath(localtime)})")


def ignored_tz_note(used: DefaultZone, environ: Mapping[str, str] | None = None) -> str | None:
    """The note for a $TZ that differs from the zone tasks run in, which it does not change;
    None when TZ is unset or names that zone."""
    env = os.environ if environ is None else environ
    tz = env.get("TZ")
    if not tz:
        return None
    name = _without_copy_folder(tz.lstrip(":"))
    if name == used.zone or (name in _UTC_NAMES and used.zone in _UTC_NAMES):
        return None
    return f"note: TZ={tz} is ignored; tasks run in {used.zone}, {used.source}"


def _without_copy_folder(name: str) -> str:
    """`posix/Europe/Berlin` (where some systems link /etc/localtime) is `Europe/Berlin`."""
    for folder in _COPY_FOLDERS:
        if name.startswith(folder):
            return name[len(folder) :]
    return name


def is_valid_zone(name: str) -> bool:
    """Whether `name` is an IANA zone name this machine has data for."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        return False  # never let a path-like key reach the file system
    if name in _NOT_ZONES or name.startswith(_COPY_FOLDERS):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def zone_hint(name: str) -> str:
    """Return the hint for a zone name that is_valid_zone refused: the nearest IANA name, the
    Etc/GMT form of a fixed offset, or how to install the zone data."""

    known = {z for z in available_timezones() if z not in _NOT_ZONES}
    if not known:
        return (
            "this machine has no time zone data: install it "
            "(apt install tzdata, or pip install tzdata)"
        )
    text = name.strip() if isinstance(name, str) else ""
    if text in _NOT_ZONES:
        return f"name the zone itself, e.g. '{machine_timezone()}' (this machine's zone)"
    plain = _without_copy_folder(text)
    if plain != text and plain in known:
        folder = text[: len(text) - len(plain)]
        return f"did you mean '{plain}'? ({folder} holds copies of the zone files, not IANA names)"
    if text.upper() == "Z":
        return "did you mean 'UTC'?"
    offset = re.fullmatch(_OFFSET, text, re.IGNORECASE)
    if offset:
        return _offset_hint(offset, known)
    near = _nearest_zone(text, known) if text else None
    if near is not None and near != name:
        return f"did you mean '{near}'?"
    return "use an IANA name such as Europe/Berlin or UTC"


def _offset_hint(offset: re.Match[str], known: set[str]) -> str:
    """The hint for a fixed offset such as `+05:00` or `UTC-3`."""
    sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
    if minutes == 0 and hours <= 14:
        etc = "Etc/UTC" if hours == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
        if etc in known:
            return (
                f"a fixed offset is the zone '{etc}' (POSIX inverts the sign), or name a place "
                "such as Europe/Berlin to follow its daylight saving time"
            )
    return "a zone is an IANA name such as Asia/Kolkata, not an offset"


def _nearest_zone(text: str, known: set[str]) -> str | None:
    """The zone `text` most likely means: same name in another case, a near spelling, or a
    zone whose city is spelt nearly so (`Berln` -> Europe/Berlin)."""
    by_case = {z.lower(): z for z in known}
    near = by_case.get(text.lower().replace(" ", "_"))
    if near is not None:
        return near
    ordered = sorted(known)
    found = difflib.get_close_matches(text, ordered, n=1, cutoff=0.6)
    if found:
        return found[0]
    cities: dict[str, str] = {}
    for zone in ordered:
        cities.setdefault(zone.rsplit("/", 1)[-1].lower(), zone)
    wanted = text.rsplit("/", 1)[-1].lower().replace(" ", "_")
    found = difflib.get_close_matches(wanted, sorted(cities), n=1, cutoff=0.8)
    return cities[found[0]] if found else None


@dataclass(frozen=True)
class Transition:
    """A change of UTC offset: `at` is the first instant (naive UTC) on the new offset."""

    at: datetime
    before: timedelta
    after: timedelta

    @property
    def is_gap(self) -> bool:
        """True when clocks jump forward: wall times [at+before, at+after) do not exist.

        Otherwise clocks go back and wall times [at+after, at+before) happen twice.
        """
        return self.after > self.before

    @property
    def is_big_jump(self) -> bool:
        """True when wall clocks move by more than LONGEST_DST_SHIFT, either way: a change of
        calendar (a date-line move), which cron's daylight-saving rules do not apply to."""
        return abs(self.after - self.before) > LONGEST_DST_SHIFT


def load_zone(name: str) -> ZoneInfo:
    """Return the zone named `name`; raise ScheduleError when there is none."""
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ScheduleError(
        f"unknown time zone '{name}'",
        hint="use an IANA zone name such as Europe/Berlin, America/New_York or UTC",
    )


def instant_of(dt: datetime, zone: ZoneInfo) -> datetime:
    """Return the instant of `dt` as naive UTC; a naive `dt` is a wall time in `zone`."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return dt.astimezone(UTC).replace(tzinfo=None)


def zoned(instant: datetime, zone: ZoneInfo) -> datetime:
    """Return the instant (naive UTC) as an aware time in `zone`, `fold` set in a repeat."""
    return zone.fromutc(instant.replace(tzinfo=zone))


def transitions_between(zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Transition]:
    """Yield the transitions with start < at <= end, in order."""
    for year in range(start.year, end.year + 1):
        for transition in _transitions_in_year(zone, year):
            if start < transition.at <= end:
                yield transition


def next_transition(zone: ZoneInfo, start: datetime, end: datetime) -> Transition | None:
    """Return the first transition with start < at <= end, or None."""
    return next(transitions_between(zone, start, end), None)


@functools.lru_cache(maxsize=512)
def _transitions_in_year(zone: ZoneInfo, year: int) -> tuple[Transition, ...]:
    """Transitions with Jan 1 `year` < at <= Jan 1 `year`+1 (UTC)."""
    start = datetime(year, 1, 1)
    days = (datetime(year + 1, 1, 1) - start).days if year < MAXYEAR else 364
    found = []
    earlier, before = start, _offset(zone, start)
    for day in range(1, days + 1):
        later = start + day * _DAY
        after = _offset(zone, later)
        if after != before:
            found.append(Transition(_first_instant_on(zone, earlier, later, before), before, after))
        earlier, before = later, after
    return tuple(found)


def _first_instant_on(
    zone: ZoneInfo, earlier: datetime, later: datetime, before: timedelta
) -> datetime:
    """Bisect to the first second after `earlier` whose offset is no longer `before`."""
    while later - earlier > _SECOND:
        middle = earlier + (later - earlier) // _SECOND // 2 * _SECOND
        if _offset(zone, middle) == before:
            earlier = middle
        else:
            later = middle
    return later


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = zoned(instant, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return offset
