"""Restarts and shutdown: tasks survive a restart on the same data dir; calls get their grace."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import grpc.aio
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leasq.v1 import (
    broker_service_pb2,
    broker_service_pb2_grpc,
    inspect_service_pb2,
    inspect_service_pb2_grpc,
    task_pb2,
)

QUEUE = "durable"


def _health_stub(channel: grpc.aio.Channel) -> Any:
    """The health stub, untyped: its published stubs describe the sync API only."""
    return health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call, unused-ignore]


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


async def test_sigterm_lets_an_in_flight_long_poll_lease_finish_within_the_grace_period(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(grace=10)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        lease = stub.Lease(
            broker_service_pb2.LeaseRequest(
                worker_id="w-1",
                queues=[broker_service_pb2.QueueWeight(queue="idle")],
                wait=Duration(seconds=2),
            ),
            timeout=20,
        )
        # The server has seen the Lease once it answers a call sent after it on the same
        # connection.
        await _health_stub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert broker.process is not None
        signalled = time.monotonic()
        broker.process.send_signal(signal.SIGTERM)

        answer = await lease
        assert list(answer.tasks) == []
        assert await lease.code() == grpc.StatusCode.OK
    exit_code = await asyncio.to_thread(broker.process.wait, 15)
    assert exit_code == 0
    assert time.monotonic() - signalled < 10
