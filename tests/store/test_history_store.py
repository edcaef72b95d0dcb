"""HistoryStore as assembled in cronctl/store/__init__.py: the protocols of cronctl.history it
implements, the names the package exports, and opening for serve."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest

from cronctl import store as store_package
from cronctl.history import (
    Acknowledgements,
    HealthReader,
    History,
    Renames,
    Retention,
    RunReader,
    RunRecorder,
    ServeStateRecorder,
    TaskDefinitions,
)
from cronctl.records import Status, Trigger
from cronctl.store import open_for_serve
from cronctl.store.database import SQLITE_HEADER

from .support import T0

PROTOCOLS = [
    RunRecorder,
    RunReader,
    HealthReader,
    ServeStateRecorder,
    Retention,
    Acknowledgements,
    Renames,
    TaskDefinitions,
    History,
]


def members(protocol: type) -> list[str]:
    """The methods a protocol asks for, its bases' included."""
    return sorted(
        name
        for klass in protocol.__mro__
        if klass not in (object, typing.Protocol, typing.Generic)
        for name, value in vars(klass).items()
        if callable(value) and not name.startswith("_")
    )


def shape(function) -> tuple:
    """A method's parameters and return type, annotations resolved."""
    hints = typing.get_type_hints(function)
    parameters = [
        (p.name, p.kind, p.default, hints.get(p.name))
        for p in inspect.signature(function).parameters.values()
        if p.name != "self"
    ]
    return parameters, hints.get("return")


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_history_store_implements_the_protocol(protocol, store):
    """Every method with the protocol's exact signature (mypy checks the same statically in
    cronctl/store/__init__.py)."""
    assert members(protocol), protocol
    for name in members(protocol):
        assert shape(getattr(type(store), name)) == shape(getattr(protocol, name)), name
    typed: History = store  # as callers hold it
    assert typed is store


def test_history_members_are_the_union_of_the_readers():
    readers = {name for p in PROTOCOLS[:-1] for name in members(p)}
    # skip_while_running_elsewhere: serve's `overlap = "skip"` tasks for the claims (schema 8);
    # wait_while_running_elsewhere: its `queue` and `replace` tasks
    own = {
        "record_notify_error",
        "skip_while_running_elsewhere",
        "wait_while_running_elsewhere",
        "close",
    }
    assert set(members(History)) == readers | own


def test_a_run_through_the_protocols(store):
    """One run's life through the narrow doors only, as the Executor, `history`, `list`,
    serve and `prune` use them."""
    recorder: RunRecorder = store
    reader: RunReader = store
    health: HealthReader = store
    serve: ServeStateRecorder = store
    retention: Retention = store
    serve.serve_started(pid=1, hostname="h", version="v", now=T0)
    run_id = recorder.start_run("a", Trigger.SCHEDULE, started_at=T0, scheduled_at=T0)
    assert health.running_tasks() == {"a"}
    finished = recorder.finish_run(run_id, status=Status.SUCCEEDED, finished_at=T0)
    assert reader.runs("a") == [dataclasses.replace(finished, stdout=None, stderr=None)]
    assert reader.latest_slot("a") == T0 and recorder.last_success_at("a") == T0
    assert health.task_stats("a").recent == (Status.SUCCEEDED,)
    assert retention.prune(now=T0, keep_days=1, default_keep_runs=1, dry_run=True) == {}
    assert serve.serve_state().pid == 1


# Names that modules and tests outside the package import from `cronctl.store`.
IMPORTED = [
    "DamagedDatabaseError",
    "DatabaseFullError",
    "HistoryStore",
    "MIGRATIONS",
    "ReadOnlyDatabaseError",
    "SCHEMA_VERSION",
    "SlotTakenError",
    "open_for_serve",
]


@pytest.mark.parametrize("name", IMPORTED)
def test_the_package_exports_what_others_import(name):
    assert name in store_package.__all__ and getattr(store_package, name) is not None


def test_open_for_serve_moves_a_damaged_file_aside(tmp_path):
    path = tmp_path / "history.db"
    # SQLite's header, then damage: only such a file is ever moved aside (see test_h9_*)
    path.write_bytes(SQLITE_HEADER + b"not a database at all\n" * 200)
    opened, moved = open_for_serve(path, now=T0)
    with opened:
        assert moved is not None and moved.name == "history.db.corrupt-20260301T120000Z"
        assert moved.read_bytes().startswith(SQLITE_HEADER + b"not a database")
        assert opened.runs() == []
        opened.check_writable()
    opened, moved = open_for_serve(path, now=T0)
    opened.close()
    assert moved is None
