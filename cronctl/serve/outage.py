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

A claim whose reply was lost with its connection may have been committed all the same: its
row says `running` on this host, and no job will ever start for it (nothing starts without the
claim's answer). Such claims are "in doubt"; before this serve's next claim, once the database
answers again, `settle` records any row they left `abandoned`, saying why (otherwise it would
stay `running` until serve restarts, and a `skip` task would be skipped on every host meanwhile).

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
from typing import Protocol

from cronctl import timefmt
from cronctl.clock import Clock
from cronctl.errors import ConnectionLostError, DatabaseUnavailableError, StoreError
from cronctl.history import RunReader, RunRecorder
from cronctl.records import Status, Trigger
from cronctl.serve.plan import MAX_CATCH_UP
from cronctl.store.runs import Claim

log = logging.getLogger("cronctl.serve")

SLOT_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)
IN_DOUBT_REASON = (
    "claimed as the connection to the history database was lost; the claim's answer never"
    " came back, so its job was never started"
)


class _Settling(RunReader, RunRecorder, Protocol):
    """The history as `settle` uses it: finds this host's `running` rows and ends them."""


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
        self.in_doubt: list[Claim] = []  # claims that may have been committed unanswered

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
        failure was the database out of reach (as `unreachable`). Only a call that lost its
        connection midway (the outage's first failure, or a connection lost and opened again)
        may have committed unanswered: once an outage runs, calls fail at their connect."""
        midway = isinstance(exc, ConnectionLostError) or not self.down
        if not self.unreachable(exc):
            return False
        with self._lock:
            if midway:
                self.in_doubt.extend(claims)
            for task, trigger, attempt, scheduled_at in claims:
                if scheduled_at is not None and trigger in SLOT_TRIGGERS and attempt == 1:
                    self._keep(task, scheduled_at)
                else:
                    self._others += 1
        if isinstance(exc, ConnectionLostError):
            self._wake()  # no outage to wait for: caught up at the loop's next step
        return True

    def settle(self, store: _Settling, now: datetime) -> None:
        """Record `abandoned` the rows the claims in doubt left `running` on this host (the
        caller holds the claims' lock: no claim of this serve runs meanwhile, so every such row
        is one whose answer was lost). On a failure they stay in doubt for the next claim."""
        with self._lock:
            doubts, self.in_doubt = self.in_doubt, []
        try:
            abandoned = abandon_in_doubt(store, doubts, host=self.host, now=now)
        except StoreError:
            with self._lock:
                self.in_doubt[:0] = doubts
            raise
        if abandoned:
            log.warning(
                "%s committed as the connection to the history database was lost, its answer"
                " with it (run %s): never started; recorded abandoned",
                timefmt.counted(len(abandoned), "claim"),
                ", ".join(str(run_id) for run_id in abandoned),
            )

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


def abandon_in_doubt(
    store: _Settling, claims: Sequence[Claim], *, host: str, now: datetime
) -> list[int]:
    """End as `abandoned` the `running` rows of this host that `claims` wrote unanswered;
    return their ids. A row matches on task, trigger, attempt and slot (to the millisecond,
    the store's precision); `run-now`'s rows (trigger manual) never do."""
    wanted: dict[str, set[tuple[Trigger, int, int | None]]] = {}
    for task, trigger, attempt, scheduled_at in claims:
        wanted.setdefault(task, set()).add((trigger, attempt, _ms(scheduled_at)))
    abandoned: list[int] = []
    for task, keys in wanted.items():
        for run in store.runs(task, statuses=[Status.RUNNING], limit=None):
            if run.host == host and (run.trigger, run.attempt, _ms(run.scheduled_at)) in keys:
                store.finish_run(
                    run.id, status=Status.ABANDONED, finished_at=now, reason=IN_DOUBT_REASON
                )
                abandoned.append(run.id)
    return abandoned


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)
