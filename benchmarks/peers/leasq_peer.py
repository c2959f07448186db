"""Leasq: the SDK's AsyncClient as producer, the ``leasq_worker`` CLI (asyncio) as worker."""

from __future__ import annotations

import asyncio
import os

from leasq_sdk import AsyncClient, LeasqError, TaskRequest
from leasq_worker import Registry, Task
from peers.base import QUEUE, Producer, in_flight
from peers.recorder import AsyncRecorder

# enqueue_many sends 1,000 tasks per RPC and waits for each answer; four calls in flight keep
# the producer, the broker and Redis busy at once (as the one-task API's 64 in flight do).
BULK_IN_FLIGHT = 4
BULK_SLICE = 5_000

registry = Registry()
_recorder = AsyncRecorder()


@registry.handler("bench:noop")
async def noop(task: Task) -> None:
    await _recorder.noop()


@registry.handler("bench:probe")
async def probe(task: Task) -> None:
    await _recorder.probe(float(task.payload))


@registry.handler("bench:crash")
async def crash(task: Task) -> None:
    await _recorder.crash()


class LeasqProducer(Producer):
    """``enqueue`` with 64 calls in flight (which the client coalesces into EnqueueBatch
    calls); ``enqueue_many`` calls, 4 in flight, for bulk."""

    has_bulk = True

    def __init__(self) -> None:
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        assert self._client is not None
        return self._client

    async def open(self) -> None:
        self._client = AsyncClient(os.environ["BENCH_LEASQ_ADDRESS"])
        await self.client.list_queues()

    async def close(self) -> None:
        await self.client.close()

    async def single(self, n: int) -> None:
        await in_flight(n, lambda: self.client.enqueue("bench:noop", queue=QUEUE))

    async def bulk(self, n: int) -> None:
        requests = [TaskRequest("bench:noop", queue=QUEUE) for _ in range(n)]
        slices = [requests[i : i + BULK_SLICE] for i in range(0, n, BULK_SLICE)]
        results: list[object] = []

        async def lane() -> None:
            while slices:
                results.extend(await self.client.enqueue_many(slices.pop()))

        await asyncio.gather(*(lane() for _ in range(BULK_IN_FLIGHT)))
        failed = [r for r in results if isinstance(r, LeasqError)]
        if failed:
            raise RuntimeError(f"{len(failed)} tasks refused, e.g. {failed[0]}")

    async def pending(self) -> int:
        return (await self.client.queue_stats(QUEUE)).pending

    async def probe(self, sent: float) -> None:
        await self.client.enqueue("bench:probe", repr(sent).encode(), queue=QUEUE)

    async def crash(self) -> None:
        await self.client.enqueue("bench:crash", queue=QUEUE)


producer = LeasqProducer
