"""`cronctl import`: crontab text into task tables.

`reader` reads the crontab (one method per kind of line), `naming` names a task after the
program its command runs, `planning` validates and names the tasks and appends them to the task
file. Nothing is silently reinterpreted: a line that cannot be imported exactly is reported with
its number and the reason, and the others are imported.
"""

from cronctl.crontab_import.naming import derive_name
from cronctl.crontab_import.planning import Plan, Planned, Present, import_into, plan, render
from cronctl.crontab_import.reader import (
    CRON_MACROS,
    Candidate,
    CrontabReader,
    Note,
    Parsed,
    Problem,
    parse,
    unescape_command,
)
from cronctl.crontab_import.source import read_crontab

__all__ = [
    "CRON_MACROS",
    "Candidate",
    "CrontabReader",
    "Note",
    "Parsed",
    "Plan",
    "Planned",
    "Present",
    "Problem",
    "derive_name",
    "import_into",
    "parse",
    "plan",
    "read_crontab",
    "render",
    "unescape_command",
]
