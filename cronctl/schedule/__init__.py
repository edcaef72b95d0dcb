"""Schedules: parsing, fire times with cron's daylight-saving rules, English, explain.

Pure functions of their arguments: no clock, no I/O. Time is always passed in.
"""

from cronctl.schedule.explain import Explanation as Explanation
from cronctl.schedule.explain import explain as explain
from cronctl.schedule.schedule import Schedule as Schedule

__all__ = ["Explanation", "Schedule", "explain"]
