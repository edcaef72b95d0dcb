"""Schedules: parsing, fire times with cron's daylight-saving rules, English, explain.

Pure functions of their arguments: no clock, no I/O. Time is always passed in. `explain`
lives in `cronctl.schedule.explain` and is imported from there: only `cronctl explain` needs
it, and every command that reads the task file imports this package.
"""

from cronctl.schedule.schedule import Schedule as Schedule
from cronctl.schedule.schedule import SharedAnswers as SharedAnswers

__all__ = ["Schedule", "SharedAnswers"]
