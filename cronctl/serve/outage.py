"""The history's database out of reach (README.md#more-than-one-machine, docs/reliability.md
"The database unreachable"): what serve does while it cannot reach it, and after.

* Fail closed: a run whose claim cannot be written does not start (serve/workers.py); the
  scheduled slots so left unclaimed are kept here, by task.
* One error line when an outage starts (the host, the database, the driver's reason), none
  while it lasts: the claimer, the finisher and the background writer report their failures
  here instead of logging them. The connections retry with back-off themselves
  (cronctl/store/postgres/connection.py, RECONNECT_BACKOFF).
* The first call that reaches the database again ends it; the loop then takes the unclaimed
  slots (`take`) and applies each task's catch-up policy to them, as at serve's start
  (serve/catchup.py `after_outage`), and logs one info line: how long, how many slots, what
  became of them.

An outage is "a connect failed": a call whose connection was lost while a new one opened at
once (ConnectionLostError: the server restarted between two calls) loses its slots, which are
caught up the same way, but starts no outage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cronctl.clock import Clock
from cronctl.errors import ConnectionLostError, DatabaseUnavailableError, StoreError
from cronctl.records import Trigger
from cronctl.serve.plan import MAX_CATCH_UP
from cronctl.store.runs import Claim

log = logging.getLogger("cronctl.serve")

SLOT_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)


@dataclass
class Unclaimed:
    """The slots left unclaimed while the database could not be reached, and the outage's
    span (None: no outage, a connection lost and opened again at once)."""

    slots: dict[str, list[datetime]] = field(default_factory=dict)
    began: datetime | None = None
    ended: datetime | None = None
    older: dict[str, int] = field(default_factory=dict)  # older slots not kept, by task
    others: int = 0  # runs not started that were no slot (retries, `after`, @reboot)

    @property
    def count(self) -> int:
        return sum(len(slots) for slots in self.slots.values()) + sum(self.older.values())

    def total(self, task: str) -> int:
        return len(self.slots.get(task, ())) + self.older.get(task, 0)


class Outage:
    """This serve's view of its database's reachability; safe to share between threads.

    `unreachable` and `claims_failed` report a failure (True: it was the database being out of
    reach, said here: the caller says nothing), `reached` a call that worked."""

    def __init__(self, clock: Clock, *, host: str, database: str) -> None:
        self.clock = clock
        self.host = host
        self.database = database
        self.wake: threading.Event | None = None  # the loop's: set when slots wait for it
        self._lock = threading.Lock()
        self._began: datetime | None = None
        self._span: tuple[datetime, datetime] | None = None  # the outage that just ended
        self._slots: dict[str, list[datetime]] = {}
        self._older: dict[str, int] = {}
        self._others = 0
        self.outages = 0  # how many this serve has seen (tests, the report)

    @property
    def down(self) -> bool:
        return self._began is not None

    def unreachable(self, exc: StoreError) -> bool:
        """A call failed: start the outage (one error line) when the database is out of reach
        and no outage runs; return whether `exc` was the database out of reach."""
        if not isinstance(exc, DatabaseUnavailableError):
            return False
        if isinstance(exc, ConnectionLostError):
            return True
        with self._lock:
            if self._began is not None:
                return True
            self._began = self.clock.now()
            self.outages += 1
        log.error(
            "the history database is out of reach from host %s: %s (%s); nothing starts until"
            " it is back (no run without its claim); retrying with back-off; the slots that"
            " pass meanwhile go through each task's catch_up policy then",
            self.host,
            exc.message,
            self.database,
        )
        return True

    def claims_failed(self, claims: Sequence[Claim], exc: StoreError) -> bool:
        """Claims could not be written: keep their scheduled slots for the catch-up when the
        failure was the database out of reach (as `unreachable`)."""
        if not self.unreachable(exc):
            return False
        with self._lock:
            for task, trigger, attempt, scheduled_at in claims:
                if scheduled_at is not None and trigger in SLOT_TRIGGERS and attempt == 1:
                    self._keep(task, scheduled_at)
                else:
                    self._others += 1
        if isinstance(exc, ConnectionLostError):
            self._wake()  # no outage to wait for: caught up at the loop's next step
        return True

    def _keep(self, task: str, slot: datetime) -> None:
        """Keep `slot` of `task`: the newest MAX_CATCH_UP of a task (what catch-up may record
        or run), the older ones counted (a day's outage of `@every 1s` is 86,400 slots)."""
        kept = self._slots.setdefault(task, [])
        kept.append(slot)
        if len(kept) > 2 * MAX_CATCH_UP:
            kept.sort()
            self._older[task] = self._older.get(task, 0) + len(kept) - MAX_CATCH_UP
            del kept[:-MAX_CATCH_UP]

    def reached(self) -> None:
        """A call reached the database: end the outage, if one runs."""
        if self._began is None:
            return
        with self._lock:
            if self._began is None:
                return
            self._span = (self._began, self.clock.now())
            self._began = None
        self._wake()

    def take(self) -> Unclaimed | None:
        """What to catch up and report now that the database is reachable: the unclaimed
        slots and the outage that ended (if any); None when there is nothing."""
        if self._began is not None or not (self._slots or self._span or self._others):
            return None
        with self._lock:
            if self._began is not None:
                return None
            slots, self._slots = self._slots, {}
            older, self._older = self._older, {}
            others, self._others = self._others, 0
            span, self._span = self._span, None
        for taken in slots.values():
            taken.sort()
        if span is None:
            return Unclaimed(slots, older=older, others=others) if slots or others else None
        return Unclaimed(slots, *span, older=older, others=others)

    def _wake(self) -> None:
        if self.wake is not None:
            self.wake.set()
