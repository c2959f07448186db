"""Settlement semantics through a real broker: repeated Ack/Nack answered as already settled,
Nack RELEASE and its cap, and deadlines that archive instead of leasing."""

from __future__ import annotations

import time
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rpc_testing import lease_request, ref, refusal, spec
from waiting import MARGIN

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2

KEEP = Duration(seconds=600)


def ms(timestamp: Any) -> float:
    return timestamp.seconds * 1000 + timestamp.nanos / 1e6


async def info(inspect: Any, task: Any) -> task_pb2.TaskInfo:
    return (await inspect.GetTask(ipb.GetTaskRequest(queue=task.queue, task_id=task.id))).task


async def test_a_repeated_ack_is_a_success_marked_already_settled(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await broker_stub.EnqueueBatch(pb.EnqueueBatchRequest(
        tasks=[spec(retention=KEEP), spec(retention=KEEP)]))
    first, second = (await broker_stub.Lease(lease_request(max_tasks=2))).tasks
    ack = pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref(first), result=b"1")])
    done = await broker_stub.Ack(ack)
    assert not done.results[0].already_settled
    completed = await info(inspect_stub, first)
    again = await broker_stub.Ack(pb.AckRequest(
        worker_id="w1", items=[pb.AckItem(lease=ref(first), result=b"other")],
        lease_next=lease_request()))
    assert (again.results[0].already_settled, again.results[0].HasField("error")) == (True, False)
    assert [t.id for t in again.next_tasks] == []  # lease_next served: nothing else is pending
    assert await info(inspect_stub, first) == completed
    stolen = await refusal(broker_stub.Ack(pb.AckRequest(
        worker_id="w1", items=[pb.AckItem(lease=ref(first, token="not-the-token"))])))
    assert (stolen.code, stolen.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LEASE_LOST")
    batch = await broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[
        pb.AckItem(lease=ref(first)), pb.AckItem(lease=ref(second))]))
    assert [r.already_settled for r in batch.results] == [True, False]


async def test_a_repeated_nack_changes_nothing_and_answers_the_epoch(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    held = (await broker_stub.Lease(lease_request())).tasks[0]
    nack = pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(held), action=pb.NACK_ACTION_RETRY, error="boom", error_type="E")])
    first = await broker_stub.Nack(nack)
    assert ms(first.next_process_at[0]) > time.time() * 1000
    retrying = await info(inspect_stub, held)
    again = await broker_stub.Nack(nack)
    assert again.results[0].already_settled
    assert again.next_process_at[0] == Timestamp()
    after = await info(inspect_stub, held)
    assert after == retrying
    assert (after.state, after.retried) == (task_pb2.TASK_STATE_RETRY, 1)


async def test_release_gives_a_task_back_for_later_without_spending_a_retry(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec("t:new")))
    held = (await broker_stub.Lease(lease_request())).tasks[0]
    released = await broker_stub.Nack(pb.NackRequest(worker_id="old", items=[pb.NackItem(
        lease=ref(held), action=pb.NACK_ACTION_RELEASE, error="no handler for 't:new'",
        error_type="NoHandler")]))
    wait_ms = ms(released.next_process_at[0]) - time.time() * 1000
    assert 8_000 < wait_ms <= 10_000
    task = await info(inspect_stub, held)
    assert (task.state, task.retried, task.released_count) == (task_pb2.TASK_STATE_RETRY, 0, 1)
    assert (task.last_error_type, task.last_error) == ("NoHandler", "no handler for 't:new'")
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="default"))).stats
    assert (stats.processed_total, stats.failed_total) == (0, 0)


async def test_a_released_task_wakes_a_waiting_lease_when_it_falls_due(broker_stub: Any) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    held = (await broker_stub.Lease(lease_request())).tasks[0]
    released = await broker_stub.Nack(pb.NackRequest(worker_id="old", items=[pb.NackItem(
        lease=ref(held), action=pb.NACK_ACTION_RELEASE, retry_after=Duration(nanos=300_000_000))]))
    again = await broker_stub.Lease(lease_request(wait=Duration(seconds=10)))
    late_ms = time.time() * 1000 - ms(released.next_process_at[0])
    assert [t.id for t in again.tasks] == [held.id]
    # Leased when it fell due, not before (the ms of the due instant are rounded down) and not
    # at the end of the 10 s wait.
    assert -1 <= late_ms <= MARGIN * 1000
    assert again.tasks[0].retried == 0


async def test_a_task_released_up_to_the_cap_is_archived_as_no_handler(
    broker_factory: Any,
) -> None:
    broker = broker_factory(release_cap=2)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub, inspect = pb_grpc.BrokerServiceStub(channel), ipb_grpc.InspectServiceStub(channel)
        await stub.Enqueue(pb.EnqueueRequest(task=spec()))
        for expected_state in (task_pb2.TASK_STATE_RETRY, task_pb2.TASK_STATE_ARCHIVED):
            held = (await stub.Lease(lease_request(wait=Duration(seconds=5)))).tasks[0]
            await stub.Nack(pb.NackRequest(worker_id="old", items=[pb.NackItem(
                lease=ref(held), action=pb.NACK_ACTION_RELEASE, retry_after=Duration(),
                error="no handler", error_type="NoHandler")]))
            task = await info(inspect, held)
            assert task.state == expected_state
        assert (task.released_count, task.retried, task.last_error_type) == (2, 0, "NoHandler")
        assert "release cap" in task.last_error


async def test_a_task_whose_deadline_passes_before_it_is_due_is_archived_not_leased(
    broker_stub: Any, inspect_stub: Any
) -> None:
    deadline_ms = int(time.time() * 1000) + 300
    deadline = Timestamp(seconds=deadline_ms // 1000, nanos=deadline_ms % 1000 * 1_000_000)
    task = (await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(
        deadline=deadline, process_in=Duration(nanos=600_000_000))))).task
    got = await broker_stub.Lease(lease_request(wait=Duration(seconds=2)))
    assert list(got.tasks) == []
    archived = await info(inspect_stub, task)
    assert (archived.state, archived.last_error_type) == (task_pb2.TASK_STATE_ARCHIVED,
                                                          "DeadlineExceeded")
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="default"))).stats
    assert (stats.archived, stats.failed_total) == (1, 1)
