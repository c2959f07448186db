"""Leasing semantics through real brokers: exactly-once leasing, fencing, expiry, timing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2

ONE_SECOND = Duration(seconds=1)


def ms(timestamp: Any) -> float:
    return timestamp.seconds * 1000 + timestamp.nanos / 1e6


async def enqueue_n(stub: Any, n: int, queue: str = "default") -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 1000):
        batch = await stub.EnqueueBatch(pb.EnqueueBatchRequest(
            tasks=[spec(queue=queue) for _ in range(min(1000, n - start))]))
        ids += [r.task.id for r in batch.results]
    return ids


async def test_concurrent_leasers_on_two_brokers_get_each_of_10000_tasks_exactly_once(
    broker: Any, broker_factory: Any, broker_stub: Any, inspect_stub: Any
) -> None:
    ids = await enqueue_n(broker_stub, 10_000)
    second = broker_factory()
    seen: list[str] = []

    async def leaser(address: str, name: str) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            while True:
                got = await stub.Lease(lease_request(worker_id=name, max_tasks=50))
                if not got.tasks:
                    return
                seen.extend(t.id for t in got.tasks)
                await stub.Ack(pb.AckRequest(worker_id=name, items=[
                    pb.AckItem(lease=ref(t)) for t in got.tasks]))

    await asyncio.gather(*(leaser(b.address, f"w{i}") for i, b in
                           enumerate([broker, second] * 4)))
    assert len(seen) == len(set(seen)) == 10_000
    assert set(seen) == set(ids)
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="default"))).stats
    assert (stats.pending, stats.active, stats.processed_total) == (0, 0, 10_000)


async def test_a_stale_lease_token_is_refused_after_the_task_was_leased_again(
    broker_stub: Any,
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    first = (await broker_stub.Lease(lease_request(lease_duration=ONE_SECOND))).tasks[0]
    again = (await broker_stub.Lease(lease_request(wait=Duration(seconds=5)))).tasks[0]
    assert again.id == first.id and again.lease_token != first.lease_token
    assert again.lease_lost_count == 1 and again.retried == 0
    got = await refusal(broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[
        pb.AckItem(lease=ref(first))])))
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LEASE_LOST")
    got = await refusal(broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[
        pb.NackItem(lease=ref(first))])))
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LEASE_LOST")
    beat = await broker_stub.Heartbeat(pb.HeartbeatRequest(worker_id="w1", leases=[
        ref(first), ref(again)]))
    assert [s.status for s in beat.leases] == [pb.LEASE_STATUS_LOST, pb.LEASE_STATUS_EXTENDED]
    batch = await broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[
        pb.AckItem(lease=ref(first)), pb.AckItem(lease=ref(again))]))
    assert [r.error.reason for r in batch.results] == ["LEASE_LOST", ""]


async def test_an_expired_lease_returns_within_a_second_of_expiry(broker_stub: Any,
                                                                  inspect_stub: Any) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    first = (await broker_stub.Lease(lease_request(lease_duration=ONE_SECOND))).tasks[0]
    again = (await broker_stub.Lease(lease_request(wait=Duration(seconds=5)))).tasks[0]
    returned_after_expiry_ms = time.time() * 1000 - ms(first.lease_expires_at)
    assert again.id == first.id
    # Not before its expiry (5 ms for rounding to whole ms), and within the promised second.
    assert -5 <= returned_after_expiry_ms <= 1000
    info = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue="default", task_id=first.id))).task
    assert (info.state, info.retried, info.lease_lost_count) == (task_pb2.TASK_STATE_ACTIVE, 0, 1)


async def test_heartbeats_keep_a_lease_past_its_duration(broker_stub: Any) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    held = (await broker_stub.Lease(lease_request(lease_duration=ONE_SECOND))).tasks[0]
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        beat = await broker_stub.Heartbeat(pb.HeartbeatRequest(worker_id="w1", leases=[ref(held)]))
        assert beat.leases[0].status == pb.LEASE_STATUS_EXTENDED
        other = await broker_stub.Lease(lease_request(wait=Duration(nanos=300_000_000)))
        assert list(other.tasks) == []
    await broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref(held))]))


async def test_a_task_whose_leases_keep_expiring_is_archived_as_poison(broker_factory: Any) -> None:
    broker = broker_factory(lease_lost_cap=2)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        inspect = __import__("leasq.v1.inspect_service_pb2_grpc",
                             fromlist=["x"]).InspectServiceStub(channel)
        task_id = (await stub.Enqueue(pb.EnqueueRequest(task=spec()))).task.id
        await stub.Lease(lease_request(lease_duration=ONE_SECOND))
        again = await stub.Lease(lease_request(lease_duration=ONE_SECOND, wait=Duration(seconds=5)))
        assert again.tasks[0].id == task_id
        give_up = time.monotonic() + 5
        while True:
            info = (await inspect.GetTask(ipb.GetTaskRequest(queue="default",
                                                             task_id=task_id))).task
            if info.state == task_pb2.TASK_STATE_ARCHIVED or time.monotonic() > give_up:
                break
            await asyncio.sleep(0.05)
    assert (info.state, info.lease_lost_count, info.last_error_type) == (
        task_pb2.TASK_STATE_ARCHIVED, 2, "LeaseLost")


async def test_a_scheduled_task_becomes_leasable_on_time_not_before(broker_stub: Any) -> None:
    enqueued = (await broker_stub.Enqueue(pb.EnqueueRequest(
        task=spec(process_in=Duration(nanos=600_000_000))))).task
    assert enqueued.state == task_pb2.TASK_STATE_SCHEDULED
    early = await broker_stub.Lease(lease_request())
    assert list(early.tasks) == []
    got = await broker_stub.Lease(lease_request(wait=Duration(seconds=5)))
    lateness_ms = time.time() * 1000 - ms(enqueued.next_process_at)
    assert got.tasks[0].id == enqueued.id
    assert -5 <= lateness_ms <= 100


async def test_a_retry_becomes_leasable_at_its_retry_time(broker_stub: Any,
                                                          inspect_stub: Any) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(max_retry=2)))
    leased = (await broker_stub.Lease(lease_request())).tasks[0]
    nacked = await broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(leased), error="boom", error_type="ValueError",
        retry_after=Duration(nanos=400_000_000))]))
    due_ms = ms(nacked.next_process_at[0])
    info = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue="default", task_id=leased.id))).task
    assert (info.state, info.retried, info.last_error) == (task_pb2.TASK_STATE_RETRY, 1, "boom")
    got = await broker_stub.Lease(lease_request(wait=Duration(seconds=5)))
    lateness_ms = time.time() * 1000 - due_ms
    assert got.tasks[0].id == leased.id and got.tasks[0].retried == 1
    assert -5 <= lateness_ms <= 100


async def poll_registered(redis: Any, queue: str) -> None:
    """Wait until a long poll on ``queue`` has marked it as waited on (then no task that
    arrives can be missed by it)."""
    give_up = time.monotonic() + 5
    while not await redis.exists(f"leasq:{{{queue}}}:waiting"):
        assert time.monotonic() < give_up, "the long poll never registered"
        await asyncio.sleep(0.01)


async def test_a_long_poll_wakes_when_another_broker_takes_the_enqueue(
    broker_stub: Any, broker_factory: Any, redis_client: Any
) -> None:
    other = broker_factory()
    polling = asyncio.ensure_future(broker_stub.Lease(lease_request("mail",
                                                                    wait=Duration(seconds=20))))
    async with grpc.aio.insecure_channel(other.address) as channel:
        other_stub = pb_grpc.BrokerServiceStub(channel)
        await poll_registered(redis_client, "mail")
        started = time.monotonic()
        enqueued = (await other_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="mail")))).task
    got = await asyncio.wait_for(polling, 5)
    assert got.tasks[0].id == enqueued.id
    assert time.monotonic() - started < 1.0


async def test_paused_queues_are_skipped_until_resumed(broker_stub: Any, inspect_stub: Any) -> None:
    for queue in ("slow", "fast"):
        await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue, task_id=queue)))
    await inspect_stub.PauseQueue(ipb.PauseQueueRequest(queue="slow"))
    got = await broker_stub.Lease(lease_request("slow", "fast", max_tasks=10))
    assert [t.id for t in got.tasks] == ["fast"]
    listed = await inspect_stub.ListQueues(ipb.ListQueuesRequest())
    assert [(q.queue, q.paused) for q in listed.queues] == [("fast", False), ("slow", True)]
    await inspect_stub.ResumeQueue(ipb.ResumeQueueRequest(queue="slow"))
    got = await broker_stub.Lease(lease_request("slow", "fast", max_tasks=10))
    assert [t.id for t in got.tasks] == ["slow"]


async def test_strict_order_serves_a_lower_queue_only_when_higher_ones_are_empty(
    broker_stub: Any,
) -> None:
    for queue, count in (("high", 3), ("low", 3)):
        await enqueue_n(broker_stub, count, queue)
    request = pb.LeaseRequest(worker_id="w", strict=True, max_tasks=4, queues=[
        pb.QueueWeight(queue="high"), pb.QueueWeight(queue="low")])
    got = await broker_stub.Lease(request)
    assert [t.queue for t in got.tasks] == ["high"] * 3 + ["low"]


async def test_ack_can_lease_the_next_task_in_the_same_call(broker_stub: Any) -> None:
    await enqueue_n(broker_stub, 3)
    first = (await broker_stub.Lease(lease_request())).tasks[0]
    answer = await broker_stub.Ack(pb.AckRequest(
        worker_id="w1", items=[pb.AckItem(lease=ref(first))],
        lease_next=lease_request(worker_id="", max_tasks=5)))
    assert len(answer.next_tasks) == 2 and not answer.results[0].HasField("error")


async def test_requeue_gives_a_task_back_without_spending_an_attempt(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await enqueue_n(broker_stub, 2)
    first = (await broker_stub.Lease(lease_request())).tasks[0]
    await broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(first), action=pb.NACK_ACTION_REQUEUE)]))
    again = (await broker_stub.Lease(lease_request())).tasks[0]
    assert (again.id, again.retried) == (first.id, 0)
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="default"))).stats
    assert (stats.processed_total, stats.failed_total) == (0, 0)


async def test_exhausted_retries_archive_the_task_and_release_its_unique_lock(
    broker_stub: Any, inspect_stub: Any
) -> None:
    unique = spec(max_retry=0, unique_ttl=Duration(seconds=60), payload=b"same")
    await broker_stub.Enqueue(pb.EnqueueRequest(task=unique))
    got = await refusal(broker_stub.Enqueue(pb.EnqueueRequest(task=unique)))
    assert (got.code, got.reason) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_TASK")
    leased = (await broker_stub.Lease(lease_request())).tasks[0]
    await broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
        lease=ref(leased), error="final")]))
    info = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue="default", task_id=leased.id))).task
    assert (info.state, info.last_error) == (task_pb2.TASK_STATE_ARCHIVED, "final")
    again = await broker_stub.Enqueue(pb.EnqueueRequest(task=unique))
    assert again.task.id != leased.id


async def test_a_task_id_is_refused_while_the_task_exists_in_any_state(broker_stub: Any) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(task_id="once",
                                                          retention=Duration(seconds=60))))
    leased = (await broker_stub.Lease(lease_request())).tasks[0]
    await broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref(leased))]))
    got = await refusal(broker_stub.Enqueue(pb.EnqueueRequest(task=spec(task_id="once"))))
    assert (got.code, got.reason) == (grpc.StatusCode.ALREADY_EXISTS, "TASK_ID_CONFLICT")
    other_queue = await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(task_id="once",
                                                                        queue="other")))
    assert other_queue.task.queue == "other"


async def test_a_completed_task_keeps_its_result_for_its_retention(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(retention=Duration(seconds=60))))
    leased = (await broker_stub.Lease(lease_request())).tasks[0]
    await broker_stub.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(
        lease=ref(leased), result=b"done!")]))
    info = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue="default", task_id=leased.id))).task
    assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"done!")
    assert ms(info.expires_at) - ms(info.completed_at) == 60_000


async def test_attempt_deadline_is_the_earlier_of_timeout_and_deadline(broker_stub: Any) -> None:
    soon = int(time.time()) + 5
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(
        timeout=Duration(seconds=60), deadline={"seconds": soon})))
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(timeout=Duration(seconds=2))))
    tasks = (await broker_stub.Lease(lease_request(max_tasks=2))).tasks
    by_deadline, by_timeout = sorted(tasks, key=lambda t: t.timeout.seconds, reverse=True)
    assert by_deadline.attempt_deadline.seconds == soon
    leased_at = ms(by_timeout.lease_expires_at) - 15_000
    assert ms(by_timeout.attempt_deadline) - leased_at == 2_000


async def test_an_operator_cancel_reaches_the_worker_at_its_next_heartbeat(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    leased = (await broker_stub.Lease(lease_request())).tasks[0]
    canceled = await inspect_stub.CancelTask(ipb.CancelTaskRequest(queue="default",
                                                                   task_id=leased.id))
    assert canceled.task.cancel_requested
    beat = await broker_stub.Heartbeat(pb.HeartbeatRequest(worker_id="w1", leases=[ref(leased)]))
    assert beat.leases[0].status == pb.LEASE_STATUS_CANCEL_REQUESTED


async def test_queue_stats_and_task_listing_page_through_every_task(
    broker_stub: Any, inspect_stub: Any
) -> None:
    ids = await enqueue_n(broker_stub, 25, "pages")
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="pages",
                                                          process_in=Duration(seconds=600))))
    listed: list[str] = []
    token = ""
    while True:
        page = await inspect_stub.ListTasks(ipb.ListTasksRequest(
            queue="pages", state=task_pb2.TASK_STATE_PENDING, page_size=10, page_token=token))
        listed += [t.id for t in page.tasks]
        assert page.total_size == 25
        token = page.next_page_token
        if not token:
            break
    assert listed == ids
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="pages"))).stats
    assert (stats.pending, stats.scheduled) == (25, 1)
    assert stats.latency.ToMilliseconds() >= 0


async def test_a_requeued_task_wakes_a_long_poll_on_another_broker(
    broker_stub: Any, broker_factory: Any, redis_client: Any
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue="give-back")))
    held = (await broker_stub.Lease(lease_request("give-back"))).tasks[0]
    other = broker_factory()
    async with grpc.aio.insecure_channel(other.address) as channel:
        other_stub = pb_grpc.BrokerServiceStub(channel)
        polling = asyncio.ensure_future(other_stub.Lease(lease_request(
            "give-back", worker_id="w2", wait=Duration(seconds=20))))
        await poll_registered(redis_client, "give-back")
        started = time.monotonic()
        await broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
            lease=ref(held), action=pb.NACK_ACTION_REQUEUE)]))
        got = await asyncio.wait_for(polling, 5)
    assert got.tasks[0].id == held.id and got.tasks[0].retried == 0
    assert time.monotonic() - started < 1.0


async def test_operators_run_archive_and_delete_tasks_by_hand(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(task_id="dead", max_retry=0)))
    leased = (await broker_stub.Lease(lease_request())).tasks[0]
    await broker_stub.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(lease=ref(leased))]))
    ran = await inspect_stub.RunTask(ipb.RunTaskRequest(queue="default", task_id="dead"))
    assert ran.task.state == task_pb2.TASK_STATE_PENDING
    archived = await inspect_stub.ArchiveTask(ipb.ArchiveTaskRequest(queue="default",
                                                                     task_id="dead"))
    assert archived.task.state == task_pb2.TASK_STATE_ARCHIVED
    got = await refusal(inspect_stub.ArchiveTask(ipb.ArchiveTaskRequest(queue="default",
                                                                        task_id="dead")))
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WRONG_STATE")
    await inspect_stub.DeleteTask(ipb.DeleteTaskRequest(queue="default", task_id="dead"))
    got = await refusal(inspect_stub.GetTask(ipb.GetTaskRequest(queue="default", task_id="dead")))
    assert got.reason == "TASK_NOT_FOUND"
