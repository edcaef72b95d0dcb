"""serve's own row (cronctl/store/serve_state.py)."""

from __future__ import annotations

from datetime import timedelta

from .support import T0


def test_heartbeat(store):
    assert store.serve_state() is None
    store.serve_started(pid=42, hostname="h", version="0.1", now=T0)
    store.heartbeat(T0 + timedelta(seconds=30))
    state = store.serve_state()
    assert (state.pid, state.heartbeat_at, state.stopped_at) == (
        42,
        T0 + timedelta(seconds=30),
        None,
    )
    store.serve_stopped(T0 + timedelta(minutes=1))
    assert store.serve_state().stopped_at == T0 + timedelta(minutes=1)


def test_a_new_start_replaces_the_row(store):
    store.serve_started(pid=1, hostname="h", version="0.1", now=T0)
    store.serve_stopped(T0 + timedelta(minutes=1))
    store.serve_started(pid=2, hostname="h2", version="0.2", now=T0 + timedelta(minutes=2))
    state = store.serve_state()
    assert (state.pid, state.hostname, state.version, state.stopped_at) == (2, "h2", "0.2", None)
    assert state.started_at == state.heartbeat_at == T0 + timedelta(minutes=2)


def test_h1_serve_records_when_it_put_a_valid_task_file_in_force(store):
    """serve's start counts as a load; each reload moves the time; a stop keeps it (status
    tells which version of the task file serve ran)."""
    store.serve_started(pid=1, hostname="h", version="0.1", now=T0)
    assert store.serve_state().tasks_loaded_at == T0
    store.tasks_loaded(T0 + timedelta(minutes=5))
    store.heartbeat(T0 + timedelta(minutes=6))
    assert store.serve_state().tasks_loaded_at == T0 + timedelta(minutes=5)
    store.serve_started(pid=2, hostname="h", version="0.1", now=T0 + timedelta(hours=1))
    assert store.serve_state().tasks_loaded_at == T0 + timedelta(hours=1)
