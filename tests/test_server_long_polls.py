"""The cap on waiting long polls (--max-waiting-leases), and a worker that meets it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import grpc
import grpc.aio
from broker_process import BrokerFactory, BrokerHandle
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_worker import Registry, Task, Worker

LONG = Duration(seconds=30)
SHORT = Duration(nanos=200_000_000)


async def _answer(call: Any) -> Any:
    return await call


def _long_poll(stub: Any, queue: str) -> Any:
    return stub.Lease(lease_request(queue, wait=LONG), timeout=60)


async def _fill_and_refuse(
    stub: Any, polls: list[Any], queue: str, seconds: float
) -> tuple[grpc.aio.AioRpcError, int]:
    """Keep ``polls`` (long polls on ``queue``) waiting and send short polls until one is
    refused while all of them still wait; the refusal, and how many calls were refused in all.
    No event says when a long poll has started to wait, and whichever call comes last is the
    one refused: a long poll refused instead of a short one is sent again."""
    give_up = time.monotonic() + seconds
    refused = 0
    while True:
        assert time.monotonic() < give_up, "no short Lease was refused"
        for index, call in enumerate(polls):
            if call.done():
                refused += 1
                polls[index] = _long_poll(stub, queue)
        try:
            await stub.Lease(lease_request("short", wait=SHORT), timeout=5)
        except grpc.aio.AioRpcError as error:
            refused += 1
            if not any(call.done() for call in polls):
                return error, refused


async def test_a_lease_that_would_wait_beyond_the_cap_is_refused_as_resource_exhausted(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(max_waiting_leases=2)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        polls = [_long_poll(stub, "idle") for _ in range(2)]

        refused, _ = await _fill_and_refuse(stub, polls, "idle", 10)
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-waiting-leases" in refused.details()
        # A Lease that does not wait, or finds a task ready, is never refused.
        assert list((await stub.Lease(lease_request("idle"), timeout=5)).tasks) == []
        await stub.Enqueue(pb.EnqueueRequest(task=spec(queue="busy")), timeout=5)
        ready = await stub.Lease(lease_request("busy", wait=LONG), timeout=5)
        assert len(ready.tasks) == 1

        # A task for the waiting polls ends one of them: a new long poll is taken again.
        await stub.Enqueue(pb.EnqueueRequest(task=spec(queue="idle")), timeout=5)
        answers = [asyncio.ensure_future(_answer(call)) for call in polls]
        done, _ = await asyncio.wait(answers, return_when=asyncio.FIRST_COMPLETED)
        assert [len(answer.result().tasks) for answer in done] == [1]
        again = await stub.Lease(lease_request("idle", wait=SHORT), timeout=5)
        assert list(again.tasks) == []
        for call in polls:
            call.cancel()
        await asyncio.gather(*answers, return_exceptions=True)


def _lease_codes(broker: BrokerHandle) -> list[str]:
    """Status codes of the Lease calls in the broker's access log (after it stopped)."""
    broker.stop()
    codes = []
    for line in broker.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "rpc" and entry.get("method", "").endswith("/Lease"):
                codes.append(entry["code"])
    return codes


async def test_a_worker_refused_a_long_poll_backs_off_and_serves_once_there_is_room(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(max_waiting_leases=1, log_level="debug")
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("job")
    async def job(task: Task) -> None:
        ran.set()

    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        blockers = [_long_poll(stub, "other")]
        _, refused_before = await _fill_and_refuse(stub, blockers, "other", 10)
        worker = Worker(registry, broker=broker.address, queues=["work"], poll_wait=5,
                        handle_signals=False)  # fmt: skip
        running = asyncio.create_task(worker.run())
        refused_since = time.monotonic()
        # The worker meets the cap for as long as the blocker waits; a spinning worker would
        # send hundreds of Lease calls in this time.
        await asyncio.wait({running}, timeout=3)
        assert not running.done(), "the worker stopped on RESOURCE_EXHAUSTED"
        blockers[0].cancel()
        await stub.Enqueue(pb.EnqueueRequest(task=spec("job", queue="work")), timeout=5)
        await asyncio.wait_for(ran.wait(), 10)
        worker.stop()
        await asyncio.wait_for(running, 30)
    refused_for = time.monotonic() - refused_since
    codes = await asyncio.to_thread(_lease_codes, broker)
    exhausted = codes.count("RESOURCE_EXHAUSTED") - refused_before
    assert exhausted >= 2  # the worker met the cap and asked again later
    assert exhausted <= refused_for / 0.25 + 2  # at least 0.25 s between attempts on average
