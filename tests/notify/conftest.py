from __future__ import annotations

import pytest

from tests.notify.servers import http_server, smtp_server


@pytest.fixture
def web():
    with http_server() as recorder:
        yield recorder


@pytest.fixture
def smtp():
    with smtp_server() as recorder:
        yield recorder
