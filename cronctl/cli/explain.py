"""`cronctl explain`: a schedule in words, its next fire times, and what DST does to it."""

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from cronctl.cli.common import AppState, JsonFlag, command, state
from cronctl.errors import UsageError


def parse_from(text: str, zone: str) -> datetime:
    """Return the aware start time for `--from`: ISO 8601, naive times read in `zone`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--from {text!r} is not a date and time",
            hint="use ISO 8601, e.g. 2026-03-08T01:00 or 2026-03-08T01:00-05:00",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


def _defaults_zone(app: AppState) -> str | None:
    """The [defaults] timezone of the task file; none when there is no file or it is invalid
    (explain reads an expression, not the file, and says nothing about the file's state)."""
    from cronctl.errors import CronctlError

    if not app.locations.tasks_file.exists():
        return None
    try:
        zone = app.tasks().defaults.values.get("timezone")
    except CronctlError:
        return None
    return zone if isinstance(zone, str) else None


@command("explain")
def explain_command(
    ctx: typer.Context,
    expression: Annotated[
        str, typer.Argument(metavar="EXPR", help="A schedule, e.g. '0 9 * * MON-FRI'.")
    ],
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            help="IANA time zone (default: the [defaults] timezone, else the system zone).",
        ),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", min=1, max=1000, help="How many fire times.")
    ] = 5,
    start: Annotated[
        str | None, typer.Option("--from", help="Start from this time (ISO 8601) instead of now.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Task name that H values are hashed from.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Say what a schedule means in English, list its next fire times, and flag DST changes."""
    from cronctl.schedule.explain import explain
    from cronctl.schedule.zones import default_zone, ignored_tz_note, is_valid_zone, zone_hint

    app = state(ctx)
    if tz is None:  # `--tz ""` is an error, not "the default"
        # The zone a task added now would run in (README.md#time-zones); $TZ is not read.
        fallback = default_zone(_defaults_zone(app))
        zone = fallback.zone
        note = ignored_tz_note(fallback)
        if note is not None:
            app.renderer.note(note)
    else:
        zone = tz
    if not is_valid_zone(zone):
        raise UsageError(f"unknown time zone {zone!r}", hint=zone_hint(zone))
    begin = parse_from(start, zone) if start else app.clock.now()
    result = explain(expression, zone, count=count, start=begin, name=name)
    if json_output:
        app.renderer.json(result.to_json())
        return
    out = app.renderer
    out.line(result.description)
    out.line(f"time zone: {result.timezone}")
    if result.next:
        out.line("next:")
        for moment in result.next:
            out.line(f"  {_fire_time(moment, result.on_whole_minutes, terminal=out.rich)}")
    for note in result.notes:
        out.line(f"note: {note}")


def _fire_time(moment: datetime, whole_minutes: bool, *, terminal: bool) -> str:
    """A fire time as a person reads it on a terminal (`Sat 2026-03-07 02:30 EST (UTC-05:00)`);
    piped, ISO 8601 to the second first, then the weekday and the zone's abbreviation
    (README.md#commands: plain timestamps are ISO 8601 with their offset)."""
    if not terminal:
        return f"{moment.isoformat(timespec='seconds')}  {moment:%a} {moment.tzname()}"
    offset = moment.strftime("%z")
    when = moment.strftime("%a %Y-%m-%d %H:%M" + ("" if whole_minutes else ":%S"))
    return f"{when} {moment.tzname()} (UTC{offset[:3]}:{offset[3:]})"
