"""The worker reports outcomes as messages on one SettleStream call, and as unary Ack and Nack
calls when told not to stream."""

from __future__ import annotations

import asyncio

import grpc.aio
import pytest
from broker_process import BrokerFactory, stable_port
from observability.scraping import scrape
from waiting import SETTLE, within
from worker_testing import enqueue_many, stats, stop

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, task_pb2
from leasq_worker import Registry, SkipRetry, Task, Worker

TASKS = 40


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "unary"])
async def test_outcomes_are_settled_on_one_stream_or_by_unary_calls(
    broker_factory: BrokerFactory, streamed: bool
) -> None:
    port = stable_port()
    broker = broker_factory(http_listen=f"127.0.0.1:{port}")
    registry = Registry()
    ran: list[str] = []
    everything_ran = asyncio.Event()

    @registry.handler("work")
    async def work(task: Task) -> None:
        ran.append(task.id)
        if len(ran) == TASKS:
            everything_ran.set()
        if task.json()["n"] % 4 == 0:
            raise SkipRetry("every fourth task fails for good")

    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        await enqueue_many(stub, [
            task_pb2.TaskSpec(type="work", queue="settled", payload=b'{"n": %d}' % n)
            for n in range(TASKS)])  # fmt: skip
        worker = Worker(registry, broker=broker.address, queues=["settled"], concurrency=4,
                        handle_signals=False, settle_stream=streamed)  # fmt: skip
        running = asyncio.create_task(worker.run())
        await within(SETTLE, everything_ran.wait(), "not every task ran")
        await stop(worker)
        await running
        counts = await stats(inspect, "settled")
    assert (counts.pending, counts.active, counts.archived) == (0, 0, TASKS // 4)
    scraped = await scrape(f"http://127.0.0.1:{port}/metrics")
    calls = "leasq_rpc_requests_total"
    unary = scraped.total(calls, method="Ack") + scraped.total(calls, method="Nack")
    messages = scraped.total("leasq_rpc_stream_messages_total", method="SettleStream")
    if streamed:
        assert unary == 0 and messages >= 2  # at least one Ack and one Nack
        assert scraped.total(calls, method="SettleStream") >= 1  # the stream ended with the worker
    else:
        assert unary >= 2 and messages == 0
