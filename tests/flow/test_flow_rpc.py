"""Flow control over gRPC on a real broker: settings, what Lease hands out under each limit,
how a held-back Lease wakes, and GetTask's account of why a task is not running."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from flow_testing import ack, configure, enqueue, lease
from google.protobuf.duration_pb2 import Duration
from rpc_testing import refusal, spec
from waiting import eventually

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq.v1.broker_service_pb2_grpc import BrokerServiceStub
from leasq.v1.inspect_service_pb2_grpc import InspectServiceStub

Q = "flow"


async def test_settings_default_to_no_limit_change_by_mask_and_reset(
    inspect_stub: InspectServiceStub,
) -> None:
    got = (await inspect_stub.GetQueueSettings(ipb.GetQueueSettingsRequest(queue=Q))).settings
    assert (got.HasField("rate_limit"), got.max_active, got.concurrency_keys.per_key_limit) == (
        False, 0, 1)
    changed = await configure(inspect_stub, Q, rate_limit=ipb.RateLimit(per_second=2.5),
                              max_active=7,
                              concurrency_keys=ipb.ConcurrencyKeySettings(per_key_limit=3))
    assert (changed.rate_limit.per_second, changed.rate_limit.burst, changed.max_active,
            changed.concurrency_keys.per_key_limit) == (2.5, 3, 7, 3)
    assert changed.groups.max_size == 100  # untouched
    reset = await configure(inspect_stub, Q, "rate_limit", "max_active")
    assert (reset.HasField("rate_limit"), reset.max_active,
            reset.concurrency_keys.per_key_limit) == (False, 0, 3)


async def test_bad_settings_and_keys_are_refused_naming_the_field(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    cases = {
        "settings.rate_limit.per_second": {"rate_limit": ipb.RateLimit(per_second=-1)},
        "settings.rate_limit.per_second ": {"rate_limit": ipb.RateLimit()},
        "settings.rate_limit.per_second  ": {"rate_limit": ipb.RateLimit(per_second=2e6)},
        "settings.rate_limit.burst": {"rate_limit": ipb.RateLimit(per_second=1, burst=2_000_000)},
        "settings.max_active": {"max_active": 1_000_001},
        "settings.concurrency_keys.per_key_limit": {
            "concurrency_keys": ipb.ConcurrencyKeySettings(per_key_limit=10_001)},
    }
    for field, fields in cases.items():
        refused = await refusal(inspect_stub.UpdateQueueSettings(
            ipb.UpdateQueueSettingsRequest(queue=Q, settings=ipb.QueueSettings(**fields))))
        assert (refused.code, refused.field) == (grpc.StatusCode.INVALID_ARGUMENT, field.strip())
    for task in (spec(queue=Q, concurrency_key="k" * 257),
                 spec(queue=Q, concurrency_key="tab\there"),
                 spec(queue=Q, concurrency_key="c1", group="g")):
        refused = await refusal(broker_stub.Enqueue(bpb.EnqueueRequest(task=task)))
        assert (refused.code, refused.field) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                 "task.concurrency_key")
    ok = await broker_stub.Enqueue(bpb.EnqueueRequest(task=spec(queue=Q,
                                                                concurrency_key="k" * 256)))
    assert ok.task.id


async def test_max_active_caps_leases_and_an_ack_wakes_a_waiting_lease_at_once(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    await configure(inspect_stub, Q, max_active=2)
    await enqueue(broker_stub, Q, 5)
    first = await lease(broker_stub, Q, 5)
    assert len(first) == 2
    assert await lease(broker_stub, Q, 5) == []
    waiting = asyncio.create_task(lease(broker_stub, Q, 5, wait_ms=20_000, worker="w2"))
    await asyncio.sleep(0.3)  # let it reach its wait (the result is checked, not the timing)
    assert not waiting.done()
    started = time.monotonic()
    await ack(broker_stub, first[0])
    woken = await asyncio.wait_for(waiting, 5)
    assert len(woken) == 1
    assert time.monotonic() - started < 1.0  # a wake-up, not the 5 s re-check


async def test_rate_limit_gives_the_burst_then_one_lease_per_token(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    await configure(inspect_stub, Q, rate_limit=ipb.RateLimit(per_second=5, burst=3))
    await enqueue(broker_stub, Q, 10)
    assert len(await lease(broker_stub, Q, 10)) == 3
    started = time.monotonic()
    got = await lease(broker_stub, Q, 10, wait_ms=5_000)
    waited = time.monotonic() - started
    # The next token comes 200 ms after the burst: the long poll sleeps until then.
    assert len(got) == 1
    assert 0.1 < waited < 1.5


async def test_concurrency_key_limit_one_runs_a_key_in_enqueue_order_and_serves_keys_round_robin(
    broker_stub: BrokerServiceStub,
) -> None:
    a = await enqueue(broker_stub, Q, 5, key="A", prefix="a")
    b = await enqueue(broker_stub, Q, 2, key="B", prefix="b")
    got = await lease(broker_stub, Q, 10)
    assert sorted(t.id for t in got) == ["a0", "b0"]  # one per key
    assert {t.id: t.concurrency_key for t in got} == {"a0": "A", "b0": "B"}
    order = []
    held = {t.concurrency_key: t for t in got}
    while held:
        _, task = held.popitem()
        order.append(task.id)
        await ack(broker_stub, task)
        for t in await lease(broker_stub, Q, 10):
            assert t.concurrency_key not in held
            held[t.concurrency_key] = t
    assert [i for i in order if i.startswith("a")] == a
    assert [i for i in order if i.startswith("b")] == b


async def test_get_task_explains_why_a_task_is_not_running(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    async def block(task_id: str) -> task_pb2.TaskBlock:
        reply = await inspect_stub.GetTask(ipb.GetTaskRequest(queue=Q, task_id=task_id))
        return reply.task.blocked

    await enqueue(broker_stub, Q, 1, prefix="never")
    never = await block("never0")
    assert never.reason == task_pb2.BLOCK_REASON_NO_WORKER
    assert not never.HasField("last_lease_at")
    await broker_stub.Enqueue(bpb.EnqueueRequest(task=spec(
        queue=Q, task_id="later", process_in=Duration(seconds=3600))))
    later = await block("later")
    assert later.reason == task_pb2.BLOCK_REASON_SCHEDULED
    assert later.until.seconds > time.time() + 3500
    assert await lease(broker_stub, Q, 1)  # leases never0: the queue now has a worker
    await enqueue(broker_stub, Q, 1, prefix="ready")
    ready = await block("ready0")
    assert ready.reason == task_pb2.BLOCK_REASON_READY
    assert ready.HasField("last_lease_at")

    await enqueue(broker_stub, Q, 2, key="K", prefix="k")
    got = await lease(broker_stub, Q, 5)
    assert "k0" in [t.id for t in got]
    key_limit = await block("k1")
    assert (key_limit.reason, key_limit.active, key_limit.limit) == (
        task_pb2.BLOCK_REASON_KEY_LIMIT, 1, 1)
    assert "'K'" in key_limit.message

    await configure(inspect_stub, Q, max_active=2)
    await enqueue(broker_stub, Q, 1, prefix="capped")
    capped = await block("capped0")
    assert (capped.reason, capped.active, capped.limit) == (task_pb2.BLOCK_REASON_MAX_ACTIVE,
                                                            3, 2)
    await configure(inspect_stub, Q, "max_active")
    await configure(inspect_stub, Q, rate_limit=ipb.RateLimit(per_second=0.01, burst=1))
    assert await lease(broker_stub, Q, 1)  # takes the one token
    await enqueue(broker_stub, Q, 1, prefix="slow")
    slow = await block("slow0")
    assert slow.reason == task_pb2.BLOCK_REASON_RATE_LIMITED
    assert 90 < slow.until.seconds - time.time() < 110  # 1 token per 100 s

    await inspect_stub.PauseQueue(ipb.PauseQueueRequest(queue=Q))
    assert (await block("slow0")).reason == task_pb2.BLOCK_REASON_QUEUE_PAUSED
    active = await inspect_stub.GetTask(ipb.GetTaskRequest(queue=Q, task_id="k0"))
    assert not active.task.HasField("blocked")


async def test_operators_archive_run_and_delete_a_pending_task_with_a_key(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    await enqueue(broker_stub, Q, 3, key="Z", prefix="z")
    stats = await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue=Q))
    assert stats.stats.pending == 3  # tasks in key lists count as pending
    await inspect_stub.ArchiveTask(ipb.ArchiveTaskRequest(queue=Q, task_id="z0"))
    await inspect_stub.DeleteTask(ipb.DeleteTaskRequest(queue=Q, task_id="z1"))
    [only] = await lease(broker_stub, Q, 5)
    assert only.id == "z2"  # neither the archived nor the deleted task is leased
    await inspect_stub.RunTask(ipb.RunTaskRequest(queue=Q, task_id="z0"))
    assert await lease(broker_stub, Q, 5) == []  # back in its key's list: the key is at 1
    await ack(broker_stub, only)
    assert [t.id for t in await lease(broker_stub, Q, 5)] == ["z0"]


async def test_delete_queue_deletes_the_tasks_waiting_in_key_lists(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub, redis_client: Any,
) -> None:
    await enqueue(broker_stub, Q, 1500, key="big", prefix="b")
    await enqueue(broker_stub, Q, 2, key="small", prefix="s")
    await configure(inspect_stub, Q, max_active=3)
    reply = await inspect_stub.DeleteQueue(ipb.DeleteQueueRequest(queue=Q, force=True))
    assert reply.deleted_tasks == 1502
    assert [key async for key in redis_client.scan_iter(match=f"leasq:{{{Q}}}:*")] == []


async def test_run_all_puts_keyed_tasks_back_in_their_key_lists(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    for i in range(3):
        await broker_stub.Enqueue(bpb.EnqueueRequest(task=spec(
            queue=Q, task_id=f"later{i}", concurrency_key="L",
            process_in=Duration(seconds=3600))))
    ran = await inspect_stub.RunAllTasks(ipb.RunAllTasksRequest(
        queue=Q, state=task_pb2.TASK_STATE_SCHEDULED))
    assert ran.affected == 3
    assert [t.id for t in await lease(broker_stub, Q, 5)] == ["later0"]  # one at a time


async def test_strict_leasing_passes_over_a_queue_held_by_its_limit(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    await configure(inspect_stub, "first", max_active=1)
    await enqueue(broker_stub, "first", 3, prefix="f")
    await enqueue(broker_stub, "second", 3, prefix="s")
    reply = await broker_stub.Lease(bpb.LeaseRequest(
        worker_id="w1", strict=True, max_tasks=3,
        queues=[bpb.QueueWeight(queue="first"), bpb.QueueWeight(queue="second")]))
    # The first queue serves what its limit allows; the rest comes from the next one.
    assert [t.id for t in reply.tasks] == ["f0", "s0", "s1"]


async def test_a_lease_by_pattern_held_by_max_active_wakes_on_ack(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub, redis_client: Any,
) -> None:
    await configure(inspect_stub, "capped.a", max_active=1)
    await enqueue(broker_stub, "capped.a", 2)
    [first] = await lease(broker_stub, "capped.a", 2)
    waiting = asyncio.ensure_future(broker_stub.Lease(bpb.LeaseRequest(
        worker_id="w2", queues=[bpb.QueueWeight(pattern="capped.*")], max_tasks=2,
        wait=Duration(seconds=20))))
    # The held queue, reached through the pattern, is marked so that its Ack publishes.
    await eventually(lambda: redis_client.exists("leasq:{capped.a}:held"), 5,
                     "the pattern's held queue marked")
    assert not waiting.done()
    await ack(broker_stub, first)
    woken = await asyncio.wait_for(waiting, 5)
    assert [t.id for t in woken.tasks] == ["t1"]


async def test_get_task_explains_a_retry_wait_and_an_aggregating_task(
    inspect_stub: InspectServiceStub, broker_stub: BrokerServiceStub,
) -> None:
    await enqueue(broker_stub, Q, 1, prefix="failing")
    [task] = await lease(broker_stub, Q, 1)
    await broker_stub.Nack(bpb.NackRequest(worker_id="w1", items=[bpb.NackItem(
        lease=bpb.LeaseRef(queue=Q, task_id=task.id, lease_token=task.lease_token),
        error="boom", retry_after=Duration(seconds=3600))]))
    retry = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue=Q, task_id=task.id))
             ).task.blocked
    assert retry.reason == task_pb2.BLOCK_REASON_RETRY_WAIT
    assert 3500 < retry.until.seconds - time.time() < 3700
    assert retry.HasField("last_lease_at")
    await broker_stub.Enqueue(bpb.EnqueueRequest(task=spec(queue=Q, task_id="member",
                                                           group="g1")))
    grouped = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue=Q, task_id="member"))
               ).task.blocked
    assert grouped.reason == task_pb2.BLOCK_REASON_AGGREGATING
    assert 0 < grouped.until.seconds - time.time() < 10  # the default 5 s grace period
