"""Fixtures shared by the billing tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm.testing import LocalHTTPServer


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A LocalHTTPServer on 127.0.0.1 (random port), closed after the test."""
    server = LocalHTTPServer()
    try:
        yield server
    finally:
        server.close()
