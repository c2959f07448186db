"""Restarts and shutdown: tasks survive a restart on the same data dir; calls get their grace."""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import time
from pathlib import Path

import grpc.aio
import redis.asyncio
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from waiting import SETTLE, eventually

from leasq.v1 import (
    broker_service_pb2,
    broker_service_pb2_grpc,
    inspect_service_pb2,
    inspect_service_pb2_grpc,
    task_pb2,
)
from leasq_broker.keys import Keys
from leasq_sdk import AsyncClient, Client, LeasqError

QUEUE = "durable"


async def test_tasks_enqueued_before_a_restart_on_the_same_data_dir_are_all_still_there(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    broker = broker_factory(redis_url=None, data_dir=tmp_path / "data")
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        batch = await stub.EnqueueBatch(
            broker_service_pb2.EnqueueBatchRequest(
                tasks=[task_pb2.TaskSpec(queue=QUEUE, type="report:build", payload=b"%d" % i)
                       for i in range(50)]
            ),
            timeout=5,
        )  # fmt: skip
        single = await stub.Enqueue(
            broker_service_pb2.EnqueueRequest(
                task=task_pb2.TaskSpec(queue=QUEUE, type="report:build", task_id="the-one")
            ),
            timeout=5,
        )
    ids = [result.task.id for result in batch.results] + [single.task.id]
    assert batch.enqueued_count == 50

    assert await broker.stop_async() == 0
    await broker.restart_async()

    async with grpc.aio.insecure_channel(broker.address) as channel:
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        stats = await inspect.GetQueueStats(
            inspect_service_pb2.GetQueueStatsRequest(queue=QUEUE), timeout=5
        )
        assert stats.stats.pending == 51
        for task_id in ids:
            found = await inspect.GetTask(
                inspect_service_pb2.GetTaskRequest(queue=QUEUE, task_id=task_id), timeout=5
            )
            assert found.task.state == task_pb2.TASK_STATE_PENDING


class _EnqueueLoad:
    """Enqueues with task ids from threads (sync Client) and tasks (AsyncClient) until told to
    stop; records every id that was enqueued and every call that failed."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.done: list[str] = []
        self.failed: list[tuple[str, BaseException]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)

    def _record(self, task_id: str, error: BaseException | None) -> None:
        with self._progress:
            if error is None:
                self.done.append(task_id)
            else:
                self.failed.append((task_id, error))
            self._progress.notify_all()

    def thread(self, name: str) -> None:
        with Client(self.address, timeout=30) as client:
            for n in itertools.count():
                if self.stopping.is_set():
                    return
                task_id = f"{name}-{n}"
                try:
                    client.enqueue("load", b"", queue=QUEUE, task_id=task_id)
                except LeasqError as error:
                    self._record(task_id, error)
                else:
                    self._record(task_id, None)

    async def task(self, client: AsyncClient, name: str) -> None:
        for n in itertools.count():
            if self.stopping.is_set():
                return
            task_id = f"{name}-{n}"
            try:
                await client.enqueue("load", b"", queue=QUEUE, task_id=task_id)
            except LeasqError as error:
                self._record(task_id, error)
            else:
                self._record(task_id, None)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Block until ``count`` more enqueues than now have succeeded."""
        with self._progress:
            target = len(self.done) + count
            assert self._progress.wait_for(lambda: len(self.done) >= target, timeout)


async def test_no_enqueue_with_a_task_id_fails_while_a_broker_is_replaced_under_load(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(grace=10)
    load = _EnqueueLoad(broker.address)
    async with AsyncClient(broker.address, timeout=30) as client:
        tasks = [asyncio.create_task(load.task(client, f"a{i}")) for i in range(4)]
        threads = [threading.Thread(target=load.thread, args=(f"t{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            await asyncio.to_thread(load.wait_for, 200)
            # SIGTERM, wait for the old broker to exit, start a new one on the same port.
            await broker.restart_async()
            await asyncio.to_thread(load.wait_for, 200)
        finally:
            load.stopping.set()
            await asyncio.gather(*tasks)
            for thread in threads:
                await asyncio.to_thread(thread.join)
        assert load.failed == []
        stats = await client.queue_stats(QUEUE)
    assert stats.pending == len(load.done) == len(set(load.done))


async def test_a_broker_with_a_waiting_long_poll_exits_well_within_a_long_grace(
    broker_factory: BrokerFactory, redis_client: redis.asyncio.Redis,
) -> None:
    broker = broker_factory(grace=30)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        lease = stub.Lease(
            broker_service_pb2.LeaseRequest(
                worker_id="w-1",
                queues=[broker_service_pb2.QueueWeight(queue="idle")],
                wait=Duration(seconds=60),
            ),
            timeout=90,
        )
        # The Lease is waiting in its handler once the broker has marked the queue as polled
        # (before that, a shutdown would refuse it UNAVAILABLE as a call not yet started).
        await eventually(lambda: redis_client.exists(Keys().waiting("idle")), SETTLE,
                         "the long poll never started waiting")  # fmt: skip
        assert broker.process is not None
        signalled = time.monotonic()
        broker.process.send_signal(signal.SIGTERM)
        answer = await lease
        answered = time.monotonic() - signalled
        assert list(answer.tasks) == []
        exit_code = await asyncio.to_thread(broker.process.wait, 30)
        exited = time.monotonic() - signalled
    assert exit_code == 0
    # The long poll ends when shutdown starts, not when its 60 s wait or the 30 s grace do.
    assert answered < 3
    assert exited < 5
