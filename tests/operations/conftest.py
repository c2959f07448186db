"""Fixtures of the operator-call tests: the SDK clients on a real broker (helpers that put
tasks into given states are in ``operations_testing``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from broker_process import BrokerHandle

from leasq_sdk import AsyncClient, Client


@pytest.fixture
def client(broker: BrokerHandle) -> Iterator[Client]:
    """The sync SDK client on ``broker``."""
    with Client(broker.address, timeout=30) as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(broker: BrokerHandle) -> AsyncIterator[AsyncClient]:
    """The asyncio SDK client on ``broker``."""
    async with AsyncClient(broker.address, timeout=30) as async_client:
        yield async_client
