"""Fire times of a cron expression in a time zone, with the daylight-saving rules of
README.md#daylight-saving-time.

The search walks the zone's offset segments: between two transitions, wall time and UTC differ
by a constant offset, so the next matching wall time of the segment gives the next instant
directly. At each transition the rules decide what happens:

- clocks jump forward (wall times [a, b) do not exist): a wildcard task loses the matching wall
  times in the gap; a fixed-time task whose matching wall time is in the gap fires once, at the
  transition itself (the first instant after the gap, wall time b);
- clocks go back (wall times [b, a) happen twice): a wildcard task fires in both passes; a
  fixed-time task fires in the first pass only.

Those are cron's rules for daylight saving. A clock change of more than three hours (a date-line
move, `Transition.is_big_jump`) is a change of calendar, and every task then follows the wall
clock as a wildcard task does: the skipped wall times have no runs, repeated ones run again
(Vixie cron and cronie run only the current minute's jobs after such a jump).

Instants are naive UTC datetimes, wall times naive local datetimes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronctl.schedule.spec import CronSpec
from cronctl.schedule.zones import Transition, next_transition, transitions_between, zoned

# Longer than any repeated interval in tzdata: 24 hours, where a zone moved across the date line.
_LONGEST_REPEAT = timedelta(days=2)


def next_fire(spec: CronSpec, zone: ZoneInfo, after: datetime) -> datetime | None:
    """Return the first fire instant strictly after the instant `after`; None past year 9999."""
    local = zoned(after, zone)
    offset = local.utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    wall, inclusive = local.replace(tzinfo=None, fold=0), False
    if local.fold and not spec.wildcard:
        fall_back = _repeat_containing(zone, after)
        if not fall_back.is_big_jump:
            # `after` is in the second pass of a repeated interval, whose wall times this
            # fixed-time task already had in the first pass: resume where the repeat ends.
            wall, inclusive = fall_back.at + fall_back.before, True
    cursor = after
    while (candidate := spec.next_wall(wall, inclusive)) is not None:
        instant = candidate - offset
        transition = next_transition(zone, cursor, instant)
        if transition is None:
            return instant
        # `candidate` is not on this segment's offset: continue on the next segment.
        follows_wall_clock = spec.wildcard or transition.is_big_jump
        if transition.is_gap:
            first_wall_after = transition.at + transition.after
            if candidate < first_wall_after:  # the candidate wall time does not exist
                if not follows_wall_clock:
                    return transition.at
                wall = first_wall_after
            else:
                wall = candidate
        elif follows_wall_clock:
            wall = transition.at + transition.after  # the repeated wall times, second pass
        else:
            wall = candidate  # past the repeated wall times (its instant is after `at`)
        inclusive, offset, cursor = True, transition.after, transition.at
    return None


def _repeat_containing(zone: ZoneInfo, instant: datetime) -> Transition:
    """Return the transition whose repeated wall times hold `instant` (in their second pass)."""
    *_, fall_back = transitions_between(zone, instant - _LONGEST_REPEAT, instant)
    return fall_back
