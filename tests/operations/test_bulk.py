"""RunAllTasks, ArchiveAllTasks and DeleteAllTasks on a real broker: filters, chunks, the
single-task transitions' semantics, refusals, and a bulk run while a worker leases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from operations_testing import archived, enqueue, lease, nack
from redis.asyncio import Redis
from rpc_testing import refusal

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2
from leasq_sdk import AsyncClient, DuplicateTask, TaskState


async def test_run_all_makes_every_archived_task_pending_keeping_its_retry_count(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    await enqueue(aclient, "q", 3, max_retry=5)
    tasks = await lease(broker_stub, "q", 3)
    await nack(broker_stub, tasks, pb.NACK_ACTION_RETRY, "Flaky")
    assert await aclient.archive_all("q", TaskState.RETRY) == 3

    assert await aclient.run_all("q", "archived") == 3

    stats = await aclient.queue_stats("q")
    assert (stats.pending, stats.archived, stats.retry) == (3, 0, 0)
    for task in tasks:
        info = await aclient.get_task("q", task.id)
        assert (info.state, info.retried, info.archived_at) == (TaskState.PENDING, 1, None)
    again = await lease(broker_stub, "q", 3)
    assert sorted(t.id for t in again) == sorted(t.id for t in tasks)


async def test_run_all_wakes_a_waiting_lease(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    await archived(aclient, broker_stub, "wake", 1, "Boom")
    waiting = asyncio.ensure_future(broker_stub.Lease(pb.LeaseRequest(
        worker_id="w2", queues=[pb.QueueWeight(queue="wake")], max_tasks=1,
        wait=Duration(seconds=20))))
    await asyncio.sleep(0.5)  # not synchronisation: an earlier run_all would also pass
    assert await aclient.run_all("wake", "archived") == 1
    response = await asyncio.wait_for(waiting, 10)
    assert len(response.tasks) == 1


async def test_archive_all_releases_unique_locks(aclient: AsyncClient) -> None:
    await aclient.enqueue("t:u", b"same", queue="uq", unique=3600)
    with pytest.raises(DuplicateTask):
        await aclient.enqueue("t:u", b"same", queue="uq", unique=3600)

    assert await aclient.archive_all("uq", "pending") == 1

    await aclient.enqueue("t:u", b"same", queue="uq", unique=3600)
    stats = await aclient.queue_stats("uq")
    assert (stats.pending, stats.archived) == (1, 1)


async def test_delete_all_releases_unique_locks_and_keeps_counts_consistent(
    aclient: AsyncClient
) -> None:
    await aclient.enqueue("t:u", b"same", queue="dq", unique=3600, process_in=3600)
    await enqueue(aclient, "dq", 4, process_in=3600)

    assert await aclient.delete_all("dq", "scheduled") == 5

    stats = await aclient.queue_stats("dq")
    assert stats.scheduled == 0
    assert (await aclient.enqueue("t:u", b"same", queue="dq", unique=3600)).queue == "dq"


@pytest.mark.parametrize("state", ["pending", "scheduled", "retry", "archived", "completed"])
async def test_delete_all_empties_each_state(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub, state: str
) -> None:
    queue = f"del-{state}"
    if state == "scheduled":
        await enqueue(aclient, queue, 3, process_in=3600)
    elif state == "completed":
        await enqueue(aclient, queue, 3, retention=3600)
        tasks = await lease(broker_stub, queue, 3)
        await broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[
            pb.AckItem(lease=pb.LeaseRef(queue=queue, task_id=t.id, lease_token=t.lease_token))
            for t in tasks]))
    elif state in ("retry", "archived"):
        await enqueue(aclient, queue, 3)
        tasks = await lease(broker_stub, queue, 3)
        action = pb.NACK_ACTION_RETRY if state == "retry" else pb.NACK_ACTION_ARCHIVE
        await nack(broker_stub, tasks, action, "Boom", retry_after=timedelta(hours=1))
    else:
        await enqueue(aclient, queue, 3)
    assert getattr(await aclient.queue_stats(queue), state) == 3

    assert await aclient.delete_all(queue, state) == 3

    assert getattr(await aclient.queue_stats(queue), state) == 0
    assert (await aclient.list_tasks(queue, state)).tasks == []


async def test_each_filter_narrows_the_tasks_moved(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    smtp = await archived(aclient, broker_stub, "f", 4, "SMTPError", "email:send", prefix="s")
    dns = await archived(aclient, broker_stub, "f", 3, "DNSError", "email:send", prefix="d")
    other = await archived(aclient, broker_stub, "f", 2, "SMTPError", "sms:send", prefix="o")

    assert await aclient.run_all("f", "archived", type="nothing:like:this") == 0
    assert await aclient.run_all("f", "archived", older_than=timedelta(hours=1)) == 0
    assert await aclient.run_all("f", "archived", error_type="SMTPError",
                                 type="email:send") == 4
    pending = {t.id for t in (await aclient.list_tasks("f", "pending")).tasks}
    assert pending == set(smtp)

    assert await aclient.delete_all("f", "archived", type="sms:send") == 2
    remaining = {t.id for t in (await aclient.list_tasks("f", "archived")).tasks}
    assert remaining == set(dns) and not remaining & set(other)

    await asyncio.sleep(1.1)  # the tasks must be at least 1 s old for the filter below
    assert await aclient.archive_all("f", "pending", older_than=1.0) == 4
    assert await aclient.run_all("f", "archived", error_type="DNSError") == 3


async def test_bulk_work_spans_several_chunks(
    aclient: AsyncClient, redis_client: Redis
) -> None:
    await enqueue(aclient, "big", 2500, prefix="a")
    await enqueue(aclient, "big", 2500, task_type="t:keep", prefix="k")

    # 5,000 pending tasks: the archive walks 5 chunks of the pending list, moving one in two.
    assert await aclient.archive_all("big", "pending", type="t:x") == 2500
    stats = await aclient.queue_stats("big")
    assert (stats.pending, stats.archived) == (2500, 2500)
    assert {t.type for t in (await aclient.list_tasks("big", "pending",
                                                      page_size=1000)).tasks} == {"t:keep"}

    assert await aclient.run_all("big", "archived") == 2500
    assert await aclient.delete_all("big", "pending", type="t:keep") == 2500
    stats = await aclient.queue_stats("big")
    assert (stats.pending, stats.archived) == (2500, 0)
    assert await redis_client.llen("leasq:{big}:pending") == 2500
    assert await aclient.delete_all("big", "pending") == 2500
    assert await redis_client.exists("leasq:{big}:pending") == 0


async def test_bulk_run_while_a_worker_leases_loses_and_duplicates_nothing(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    ids = await archived(aclient, broker_stub, "race", 3000, "Boom", prefix="r")
    seen: list[str] = []
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set() or len(seen) < len(ids):
            response = await broker_stub.Lease(pb.LeaseRequest(
                worker_id="racer", queues=[pb.QueueWeight(queue="race")], max_tasks=50,
                wait=Duration(seconds=1)))
            seen.extend(t.id for t in response.tasks)
            if response.tasks:
                await broker_stub.Ack(pb.AckRequest(worker_id="racer", items=[
                    pb.AckItem(lease=pb.LeaseRef(queue="race", task_id=t.id,
                                                 lease_token=t.lease_token))
                    for t in response.tasks]))
            elif stop.is_set():
                break

    leasing = asyncio.ensure_future(worker())
    moved = await aclient.run_all("race", "archived")
    stop.set()
    await asyncio.wait_for(leasing, 60)

    assert moved == 3000
    assert sorted(seen) == sorted(ids)  # each task leased exactly once
    stats = await aclient.queue_stats("race")
    assert (stats.pending, stats.archived, stats.active) == (0, 0, 0)


@pytest.mark.parametrize(("method", "request_type", "bad_states"), [
    ("RunAllTasks", ipb.RunAllTasksRequest,
     [task_pb2.TASK_STATE_PENDING, task_pb2.TASK_STATE_ACTIVE, task_pb2.TASK_STATE_COMPLETED,
      task_pb2.TASK_STATE_AGGREGATING, task_pb2.TASK_STATE_UNSPECIFIED]),
    ("ArchiveAllTasks", ipb.ArchiveAllTasksRequest,
     [task_pb2.TASK_STATE_ARCHIVED, task_pb2.TASK_STATE_ACTIVE, task_pb2.TASK_STATE_COMPLETED,
      task_pb2.TASK_STATE_UNSPECIFIED]),
    ("DeleteAllTasks", ipb.DeleteAllTasksRequest,
     [task_pb2.TASK_STATE_ACTIVE, task_pb2.TASK_STATE_AGGREGATING,
      task_pb2.TASK_STATE_UNSPECIFIED, 42]),
])
async def test_bulk_calls_refuse_bad_fields_naming_them(
    inspect_stub: ipb_grpc.InspectServiceStub, method: str, request_type: type,
    bad_states: list[int]
) -> None:
    call = getattr(inspect_stub, method)
    for state in bad_states:
        denied = await refusal(call(request_type(queue="q", state=state)))
        assert (denied.code, denied.field) == (grpc.StatusCode.INVALID_ARGUMENT, "state")
        assert "choose one of" in denied.message
    good = task_pb2.TASK_STATE_SCHEDULED
    cases = [
        ({"queue": "{bad}"}, "queue"),
        ({"filter": ipb.TaskFilter(type="x" * 300)}, "filter.type"),
        ({"filter": ipb.TaskFilter(error_type="x" * 300)}, "filter.error_type"),
        ({"filter": ipb.TaskFilter(older_than={"seconds": -5})}, "filter.older_than"),
        ({"filter": ipb.TaskFilter(older_than={"seconds": 3651 * 86400})},
         "filter.older_than"),
    ]
    for fields, field in cases:
        message = request_type(queue="q", state=good)
        for name, value in fields.items():
            if name == "filter":
                message.filter.CopyFrom(value)
            else:
                setattr(message, name, value)
        denied = await refusal(call(message))
        assert (denied.code, denied.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), fields
