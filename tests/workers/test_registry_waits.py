"""The registry's wait for a long poll or an operator's command, at its edges."""

from __future__ import annotations

import asyncio
import gc

import pytest
import redis.asyncio

from leasq_broker.clock import RedisClock
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.keys import Keys
from leasq_broker.notifier import Notifier
from leasq_broker.scripts import Scripts
from leasq_broker.workers.models import Sighting
from leasq_broker.workers.registry import WorkerRegistry


async def test_a_lease_that_fails_while_its_call_is_cancelled_leaves_no_unretrieved_error(
    redis_client: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    """The call ends by another error (here: cancelled) in the loop turn its long poll failed
    (Redis lost): the poll's error belongs to nobody and must not be logged as a task
    exception that was never retrieved."""
    scripts = Scripts(redis_client)
    await scripts.load()
    keys = Keys("leasq", cluster=is_cluster(redis_client))
    registry = WorkerRegistry(redis_client, scripts, keys, RedisClock(),
                              Notifier(redis_client, keys.notify_channel()))  # fmt: skip
    await registry.record(Sighting("w-edge", None))
    failing = asyncio.Event()

    async def lease() -> list[str]:
        await failing.wait()
        raise ConnectionError("Connection closed by server.")

    try:
        call = asyncio.ensure_future(registry.until_commanded("w-edge", lease()))
        await asyncio.sleep(0.01)  # waiting on the poll
        failing.set()
        await asyncio.sleep(0)  # the poll fails in this turn ...
        call.cancel()  # ... and the call is cancelled before it looks at it
        await asyncio.gather(call, return_exceptions=True)
        del call
        for _ in range(3):  # done callbacks run, then the dropped tasks are collected
            await asyncio.sleep(0)
            gc.collect()
    finally:
        await registry.stop()
    assert [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()] == []
