"""Coalesced one-task enqueues against a real broker: each caller gets its own outcome.

Which calls the client sent is read from the broker's ``leasq_rpc_requests`` counter on its
/metrics endpoint, so the tests see what reached the broker, not what the client says it did.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from broker_process import BrokerFactory, BrokerHandle, stable_port
from observability.scraping import scrape
from waiting import SETTLE, within

from leasq.v1 import broker_service_pb2
from leasq_sdk import (
    AsyncClient,
    BrokerUnavailable,
    Client,
    DuplicateTask,
    EnqueuedTask,
    InvalidTask,
    LeasqError,
    TaskNotFound,
)
from leasq_sdk.coalescing_aio import AsyncCoalescer

CALLERS = 50


@dataclass(frozen=True)
class Served:
    """A broker with its /metrics URL."""

    broker: BrokerHandle
    metrics_url: str

    async def calls(self, method: str) -> float:
        """How many calls of ``method`` the broker answered (any status)."""
        scraped = await scrape(self.metrics_url)
        name = "leasq_rpc_requests_total"
        return sum(s.value for s in scraped.samples
                   if s.name == name and s.labels.get("method") == method)  # fmt: skip

    async def lone_enqueues(self) -> float:
        """Tasks sent alone: unary Enqueue calls and EnqueueStream messages (the clients'
        default transport for a call that goes out alone)."""
        scraped = await scrape(self.metrics_url)
        streamed = sum(s.value for s in scraped.samples
                       if s.name == "leasq_rpc_stream_messages_total"
                       and s.labels.get("method") == "EnqueueStream")  # fmt: skip
        return await self.calls("Enqueue") + streamed


@pytest.fixture
def served(broker_factory: BrokerFactory) -> Served:
    port = stable_port()
    broker = broker_factory(http_listen=f"127.0.0.1:{port}")
    return Served(broker, f"http://127.0.0.1:{port}/metrics")


@pytest.fixture
async def client(served: Served) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(served.broker.address, timeout=30) as client:
        yield client


async def test_concurrent_async_callers_each_get_their_own_task_sent_in_batches(
    served: Served, client: AsyncClient
) -> None:
    results = await asyncio.gather(
        *(client.enqueue("coalesce:async", str(i), queue="many") for i in range(CALLERS))
    )
    assert len({r.id for r in results}) == CALLERS
    for number, enqueued in enumerate(results):
        task = await client.get_task("many", enqueued.id)
        assert task.payload == str(number).encode()
    assert await served.calls("EnqueueBatch") >= 1
    assert await served.lone_enqueues() + await served.calls("EnqueueBatch") < CALLERS


async def test_concurrent_threads_on_one_sync_client_each_get_their_own_task_in_batches(
    served: Served,
) -> None:
    start = threading.Barrier(CALLERS)

    def calls(client: Client, thread: int) -> list[EnqueuedTask]:
        start.wait()
        # While one thread's call is in flight (its gRPC call releases the GIL), the others
        # run and queue theirs: with 50 threads making 4 calls each, batches always form.
        return [client.enqueue("coalesce:sync", f"{thread}.{n}", queue="threads")
                for n in range(4)]  # fmt: skip

    with Client(served.broker.address, timeout=30) as client:
        with ThreadPoolExecutor(CALLERS) as pool:
            results = list(pool.map(lambda n: calls(client, n), range(CALLERS)))
        assert len({r.id for own in results for r in own}) == CALLERS * 4
        for thread, own in enumerate(results):
            for n, enqueued in enumerate(own):
                task = client.get_task("threads", enqueued.id)
                assert task.payload == f"{thread}.{n}".encode()
    assert await served.calls("EnqueueBatch") >= 1


async def test_an_invalid_task_among_coalesced_calls_fails_only_its_own_caller(
    client: AsyncClient,
) -> None:
    with pytest.raises(InvalidTask) as alone:
        await client.enqueue("coalesce:bad", queue="not a queue")
    queues = ["fine"] * 10
    queues[5] = "not a queue"
    results = await asyncio.gather(
        *(client.enqueue("coalesce:mixed", queue=q) for q in queues), return_exceptions=True
    )
    refused = results.pop(5)
    assert isinstance(refused, InvalidTask)
    assert (refused.field, refused.reason) == (alone.value.field, alone.value.reason)
    assert all(isinstance(r, EnqueuedTask) for r in results)
    assert (await client.queue_stats("fine")).pending == 9


async def test_a_duplicate_unique_task_among_coalesced_calls_raises_for_its_caller_only(
    client: AsyncClient,
) -> None:
    await client.enqueue("coalesce:unique", queue="uniq", unique=60, unique_key="k")
    calls: list[Any] = [client.enqueue("coalesce:other", str(i), queue="uniq")
                        for i in range(8)]  # fmt: skip
    calls.insert(4, client.enqueue("coalesce:unique", queue="uniq", unique=60, unique_key="k"))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results.pop(4), DuplicateTask)
    assert all(isinstance(r, EnqueuedTask) for r in results)
    assert (await client.queue_stats("uniq")).pending == 9


async def test_async_calls_made_while_the_broker_is_down_fail_for_their_callers(
    served: Served, client: AsyncClient
) -> None:
    await client.enqueue("coalesce:warmup")
    served.broker.stop()
    results = await within(
        SETTLE,
        asyncio.gather(*(client.enqueue("coalesce:down", rpc_timeout=1) for _ in range(20)),
                       return_exceptions=True),
        "coalesced calls to a stopped broker did not all return",
    )  # fmt: skip
    assert all(isinstance(r, BrokerUnavailable) for r in results), results
    served.broker.restart()
    back = await asyncio.gather(*(client.enqueue("coalesce:back") for _ in range(5)))
    assert len({r.id for r in back}) == 5


def test_sync_calls_made_while_the_broker_is_down_fail_for_their_callers(
    served: Served,
) -> None:
    with Client(served.broker.address, timeout=30) as client:
        client.enqueue("coalesce:warmup")
        served.broker.stop()
        outcomes = _in_threads(20, lambda: client.enqueue("coalesce:down", rpc_timeout=1))
        assert all(isinstance(o, BrokerUnavailable) for o in outcomes), outcomes
        served.broker.restart()
        assert len({o.id for o in _in_threads(5, lambda: client.enqueue("x"))}) == 5  # type: ignore[union-attr]


def _in_threads(count: int, call: Callable[[], EnqueuedTask]) -> list[EnqueuedTask | LeasqError]:
    """Every thread's result or LeasqError; fails if any thread is still waiting after SETTLE."""

    def guarded() -> EnqueuedTask | LeasqError:
        try:
            return call()
        except LeasqError as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(guarded) for _ in range(count)]
        return [future.result(timeout=SETTLE) for future in futures]


async def test_a_lone_call_goes_out_at_once_as_one_enqueue_even_with_a_linger(
    served: Served,
) -> None:
    async with AsyncClient(served.broker.address, coalesce_linger=0.001) as client:
        await client.enqueue("coalesce:lone")
    with Client(served.broker.address, coalesce_linger=0.001) as sync_client:
        sync_client.enqueue("coalesce:lone")
    assert await served.lone_enqueues() == 2
    assert await served.calls("EnqueueBatch") == 0


async def test_a_cancelled_caller_waiting_for_its_batch_is_not_enqueued(
    client: AsyncClient,
) -> None:
    first = asyncio.ensure_future(client.enqueue("coalesce:first", queue="cancel"))
    await asyncio.sleep(0)  # the first call is in flight: the next ones wait
    dropped = asyncio.ensure_future(client.enqueue("coalesce:x", queue="cancel", task_id="gone"))
    kept = asyncio.ensure_future(client.enqueue("coalesce:x", queue="cancel", task_id="kept"))
    await asyncio.sleep(0)
    dropped.cancel()
    await asyncio.gather(first, kept)
    assert dropped.cancelled()
    assert (await client.get_task("cancel", "kept")).type == "coalesce:x"
    with pytest.raises(TaskNotFound):
        await client.get_task("cancel", "gone")


async def test_with_coalescing_off_every_call_is_its_own_enqueue(served: Served) -> None:
    async with AsyncClient(served.broker.address, coalesce=False) as client:
        results = await asyncio.gather(*(client.enqueue("coalesce:off") for _ in range(10)))
    assert len({r.id for r in results}) == 10
    assert await served.lone_enqueues() == 10
    assert await served.calls("EnqueueBatch") == 0


async def test_calls_with_different_deadlines_never_share_a_batch(served: Served) -> None:
    async with AsyncClient(served.broker.address) as client:
        first = asyncio.ensure_future(client.enqueue("coalesce:first"))
        await asyncio.sleep(0)
        await asyncio.gather(first, *(client.enqueue("coalesce:d", rpc_timeout=20 + i)
                                      for i in range(4)))  # fmt: skip
    assert await served.calls("EnqueueBatch") == 0
    assert await served.lone_enqueues() == 5


def test_a_linger_above_one_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match="coalesce_linger"):
        Client("127.0.0.1:1", coalesce_linger=0.01)


async def test_async_calls_made_while_one_is_in_flight_go_out_together_without_waiting_for_it(
    client: AsyncClient,
) -> None:
    # The client's own transport to the real broker, with the first call held in flight.
    release = asyncio.Event()
    sent: list[int] = []  # tasks per call, in the order the calls went out

    async def send_one(request: Any, limit: float | None, idempotent: bool) -> EnqueuedTask:
        sent.append(1)
        if len(sent) == 1:
            await release.wait()
        return await client._send_one(request, limit, idempotent)

    async def send_many(request: Any, limit: float | None, idempotent: bool) -> Any:
        sent.append(len(request.tasks))
        return await client._send_batch(request, limit, idempotent)

    def request(number: int) -> broker_service_pb2.EnqueueRequest:
        message = broker_service_pb2.EnqueueRequest()
        message.task.type, message.task.queue = "coalesce:overlap", "overlap"
        message.task.payload = str(number).encode()
        return message

    coalescer = AsyncCoalescer(send_one, send_many)
    first = asyncio.ensure_future(coalescer.enqueue(request(0), None, False))
    await asyncio.sleep(0)  # the first call is in flight (held)
    rest = await within(SETTLE, asyncio.gather(
        *(coalescer.enqueue(request(n), None, False) for n in range(1, 11))),
        "the calls made while the first was in flight were not answered")  # fmt: skip
    assert sent == [1, 10] and not first.done()
    release.set()
    results = [await first, *rest]
    assert len({r.id for r in results}) == 11
    assert (await client.queue_stats("overlap")).pending == 11
