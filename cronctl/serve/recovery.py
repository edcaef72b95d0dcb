"""Start-up recovery: the runs a serve that died left `running`, and the jobs it left behind.

Only serve's own runs are recovered: those of this host (a history several hosts share
holds the others' too, README.md#more-than-one-machine). A `running` row with trigger
`manual` belongs to a `cronctl run-now` process, which may well be alive (it does not take
the serve lock): it records its own end. Every other `running` row of this host was written
by a serve, and since this serve holds the lock, that serve is gone: the row becomes
`abandoned`.

The job of such a run may still be running, orphaned, in its own process group (serve was
killed with SIGKILL, or crashed). Nothing would enforce its timeout or record its end, and the
task's next run could overlap it, so it is stopped as a timeout would stop it: SIGTERM to the
group, SIGKILL after the kill grace. The group is first verified to be that run's job (see
runner.process.group_runs_job): a pid reused by another process is never signalled.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cronctl.history import RunReader, RunRecorder
from cronctl.records import Run, Status, Trigger
from cronctl.runner.process import group_runs_job, stop_process_group
from cronctl.spool import remove_leftovers

log = logging.getLogger("cronctl.serve")

ABANDONED_REASON = "serve stopped unexpectedly while the run was running"


class _Recovery(RunRecorder, RunReader, Protocol):
    """The history as recovery uses it: finds the `running` rows and finishes them."""


def abandon_leftover_runs(store: _Recovery, now: datetime, *, host: str) -> list[Run]:
    """Mark the runs a previous serve of this `host` left `running` as `abandoned`; return
    them as recorded. Another host's `running` rows are its serve's, likely alive (a shared
    history: README.md#more-than-one-machine); a dead one's are abandoned by the lease
    (serve/fleet.py). Rows of no host were recorded before schema 8, by the one serve there
    was: this one's predecessor.

    The caller holds the serve lock: no other process of this host writes these rows.
    """
    leftovers = [
        run
        for run in store.runs(statuses=[Status.RUNNING], limit=None)
        if run.trigger != Trigger.MANUAL and run.host in (None, host)
    ]
    return [
        store.finish_run(run.id, status=Status.ABANDONED, finished_at=now, reason=ABANDONED_REASON)
        for run in leftovers
    ]


def remove_leftover_spools(state_dir: Path) -> int:
    """Remove the output spools the dead serve's runs left (and a killed `run-now`'s): every
    spool no live process holds (cronctl/spool.py); a `run-now` still running keeps its own."""
    try:
        removed = remove_leftovers(state_dir)
    except OSError as exc:  # never let recovery stop serve
        log.warning("cannot remove the output spools of ended runs: %s", exc)
        return 0
    if removed:
        log.info("removed the output spools of %d ended runs", removed)
    return removed


def stop_leftover_jobs(runs: list[Run], kill_grace: float) -> threading.Thread | None:
    """Stop the still-running jobs of abandoned `runs`, on a thread (the kill grace must not
    hold up start-up); return the thread, or None when no job was left."""
    groups = [(run, run.pid) for run in runs if run.pid and group_runs_job(run.pid, run.id)]
    if not groups:
        return None
    for run, pgid in groups:
        log.warning(
            "run %s of %s: its job (process group %d) outlived the serve that started it;"
            " stopping it",
            run.id,
            run.task,
            pgid,
        )

    def stop() -> None:
        for _run, pgid in groups:
            try:
                if not stop_process_group(pgid, kill_grace):
                    log.error("process group %d survived SIGKILL", pgid)
            except Exception:  # never let recovery stop serve
                log.exception("cannot stop process group %d", pgid)

    thread = threading.Thread(target=stop, name="cronctl-leftovers", daemon=True)
    thread.start()
    return thread
