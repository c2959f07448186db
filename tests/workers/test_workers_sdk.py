"""The SDK's worker calls on both clients: list_workers, quiet_worker and stop_worker return
typed WorkerInfo values, and an unknown or malformed worker id raises the typed errors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from broker_process import BrokerHandle
from google.protobuf import timestamp_pb2

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_sdk import (
    AsyncClient,
    Client,
    InvalidArgument,
    WorkerCommand,
    WorkerInfo,
    WorkerNotFound,
    WorkerTask,
)
from leasq_sdk.channel import IDEMPOTENT_METHODS
from leasq_sdk.workers import worker_command

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def _register(stub: Any, queue: str, *, with_task: bool) -> tuple[str, str | None]:
    """A raw worker that leased (a task, if asked) with meta; its id and the task id."""
    task_id = None
    if with_task:
        spec = task_pb2.TaskSpec(type="thumb", queue=queue)
        task_id = (await stub.Enqueue(pb.EnqueueRequest(task=spec))).task.id
    worker_id = f"sdk-{uuid.uuid4().hex[:8]}"
    meta = pb.WorkerMeta(host="h1", pid=77, concurrency=8, sdk="custom/2",
                         started_at=timestamp_pb2.Timestamp(seconds=int(STARTED.timestamp())))
    await stub.Lease(pb.LeaseRequest(worker_id=worker_id, strict=True, worker=meta,
                                     queues=[pb.QueueWeight(queue=queue, weight=2)]))
    return worker_id, task_id


def _check(info: WorkerInfo, worker_id: str, queue: str, task_id: str | None) -> None:
    assert (info.worker_id, info.host, info.pid, info.concurrency, info.sdk) == (
        worker_id, "h1", 77, 8, "custom/2")
    assert info.started_at == STARTED
    assert (info.queues, info.strict) == ([(queue, 2)], True)
    assert info.first_seen_at is not None and info.last_seen_at is not None
    if task_id is None:
        assert info.tasks == []
    else:
        [task] = info.tasks
        assert isinstance(task, WorkerTask)
        assert (task.queue, task.task_id, task.type) == (queue, task_id, "thumb")
        assert task.leased_at is not None and task.lease_expires_at is not None
        assert task.lease_expires_at > task.leased_at


async def test_async_client_lists_quiets_and_stops_workers(
    broker: BrokerHandle, stubs: tuple[Any, Any], queue: str
) -> None:
    stub, _ = stubs
    worker_id, task_id = await _register(stub, queue, with_task=True)
    other_id, _ = await _register(stub, queue, with_task=False)
    async with AsyncClient(broker.address) as client:
        workers = {w.worker_id: w for w in await client.list_workers()}
        assert sorted([worker_id, other_id]) == [w for w in workers if w in (worker_id, other_id)]
        _check(workers[worker_id], worker_id, queue, task_id)
        _check(workers[other_id], other_id, queue, None)
        assert workers[worker_id].command is WorkerCommand.NONE

        quiet = await client.quiet_worker(worker_id)
        _check(quiet, worker_id, queue, task_id)
        assert quiet.command is WorkerCommand.QUIET
        stopped = await client.stop_worker(other_id)
        assert stopped.command is WorkerCommand.STOP
        commands = {w.worker_id: w.command for w in await client.list_workers()}
        assert (commands[worker_id], commands[other_id]) == (WorkerCommand.QUIET,
                                                             WorkerCommand.STOP)

        with pytest.raises(WorkerNotFound, match="no-such-worker"):
            await client.stop_worker("no-such-worker")
        with pytest.raises(InvalidArgument, match="worker_id"):
            await client.quiet_worker("")


async def test_sync_client_lists_quiets_and_stops_workers(
    broker: BrokerHandle, stubs: tuple[Any, Any], queue: str
) -> None:
    stub, _ = stubs
    worker_id, task_id = await _register(stub, queue, with_task=True)

    def operate() -> tuple[list[WorkerInfo], WorkerInfo, WorkerInfo]:
        with Client(broker.address) as client:
            listed = client.list_workers(rpc_timeout=5)
            quiet = client.quiet_worker(worker_id)
            stopped = client.stop_worker(worker_id)
            with pytest.raises(WorkerNotFound):
                client.quiet_worker("no-such-worker")
            with pytest.raises(InvalidArgument, match="worker_id"):
                client.stop_worker("bad\x01id")
            return listed, quiet, stopped

    listed, quiet, stopped = await asyncio.to_thread(operate)
    [info] = [w for w in listed if w.worker_id == worker_id]
    _check(info, worker_id, queue, task_id)
    assert (quiet.command, stopped.command) == (WorkerCommand.QUIET, WorkerCommand.STOP)
    _check(stopped, worker_id, queue, task_id)


def test_worker_calls_are_retried_as_idempotent_and_commands_map_from_the_contract() -> None:
    for name in ("ListWorkers", "QuietWorker", "StopWorker"):
        assert f"leasq.v1.InspectService/{name}" in IDEMPOTENT_METHODS
    assert [worker_command(n) for n in (pb.WORKER_COMMAND_UNSPECIFIED, pb.WORKER_COMMAND_QUIET,
                                        pb.WORKER_COMMAND_STOP, 99)] == [
        WorkerCommand.NONE, WorkerCommand.QUIET, WorkerCommand.STOP, WorkerCommand.NONE]
    assert [str(c) for c in WorkerCommand] == ["none", "quiet", "stop"]
