"""Fixtures of the serve tests (the doubles live in fakes.py)."""

from __future__ import annotations

import pytest

from tests.serve.fakes import harness_maker, utc

START = utc(2026, 1, 5, 12, 0, 0)


@pytest.fixture
def harness():
    yield from harness_maker(START)


@pytest.fixture(autouse=True)
def serve_logger():
    """Tests that set up serve's log (handlers, propagate=False) must not hide it from caplog."""
    import logging

    logger = logging.getLogger("cronctl.serve")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield logger
    logger.handlers[:] = saved[0]
    logger.propagate, logger.level = saved[1], saved[2]
