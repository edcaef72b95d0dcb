"""The history store's tests: a fresh in-memory store per test."""

from __future__ import annotations

import pytest

from cronctl.store import HistoryStore


@pytest.fixture
def store():
    with HistoryStore(":memory:") as opened:
        yield opened
