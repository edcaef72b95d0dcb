"""`cronctl serve`: the scheduler (README, "serve").

`plan` holds the pure decisions, `loop` the Scheduler, `workers` the job threads, `storage`
serve's doors to the history, `daemon` the wiring (lock, database, signals, systemd);
`daemon.serve(locations)` runs it. The Executor and the run listeners are put together in
`cronctl.pipeline`, as for `run-now`.

The defaults of a stop live here, where `cronctl service` reads them without loading serve:
the unit's TimeoutStopSec must cover all of them.
"""

GRACE = 30.0
"""Seconds running jobs may finish after SIGTERM/SIGINT before serve stops them (--grace)."""
KILL_GRACE = 10.0
"""Seconds between SIGTERM and SIGKILL of a job's process group (--kill-grace)."""
NOTIFY_FLUSH_SECONDS = 15.0
"""Seconds pending notifications get to go out at shutdown."""
