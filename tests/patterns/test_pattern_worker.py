"""A worker serving a pattern gets tasks from a queue created after it started, no restart."""

from __future__ import annotations

import asyncio

import grpc
from broker_process import BrokerHandle
from pattern_testing import fill
from waiting import MARGIN, SETTLE, within
from worker_testing import stop

from leasq.v1 import broker_service_pb2_grpc
from leasq_worker import Registry, Task, Worker
from leasq_worker.cli import parse_queue

# The broker re-reads known queues twice a second; a waiting Lease is woken by the new queue.
NEW_QUEUE_S = 1.0


def test_the_queue_flag_takes_a_pattern_with_one_weight() -> None:
    assert parse_queue("tenant.*=2") == ("tenant.*", 2)
    assert parse_queue("t?-eu") == ("t?-eu", 1)


async def test_a_worker_with_a_pattern_serves_a_queue_created_after_it_started(
    broker: BrokerHandle,
) -> None:
    seen: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    registry = Registry()

    @registry.handler("noop")
    async def noop(task: Task) -> None:
        seen.put_nowait((task.queue, task.id))

    worker = Worker(registry, broker=broker.address, queues={"tenant.*": 2, "email": 1},
                    handle_signals=False, poll_wait=5)
    running = asyncio.create_task(worker.run())
    try:
        async with grpc.aio.insecure_channel(broker.address) as channel:
            stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
            await fill(stub, {"email": 1})
            # Once email's task ran, the worker is serving (and long-polling its entries).
            assert (await within(SETTLE, seen.get(), "email's task ran"))[0] == "email"
            await fill(stub, {"tenant.created-later": 1})
            queue, _ = await within(NEW_QUEUE_S + MARGIN, seen.get(),
                                    "the new queue's task ran")
            assert queue == "tenant.created-later"
    finally:
        await stop(worker)
        await running
