"""Fixtures for tests on a real Sentinel deployment (see ``sentinel_testing``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sentinel_testing import SentinelGroup


@pytest.fixture
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A fresh primary, replica and three sentinels per test (a test may fail the primary
    over); all stopped after the test."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    try:
        yield group.start()
    finally:
        group.stop()
