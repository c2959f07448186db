"""Lease with queue patterns: matching queues only, queues that appear later (also through
another broker replica, also during a long poll), weights across a pattern and a queue, strict
positions, and malformed entries."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import grpc
import pytest
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from pattern_testing import entry, fill, lease_of, leased_queues
from rpc_testing import ref, refusal
from waiting import MARGIN, eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, task_pb2
from leasq_broker.config import BrokerConfig
from leasq_broker.keys import Keys

KEYS = Keys(BrokerConfig().key_prefix)
# The pattern index re-reads the known queues every 0.5 s: "within about a second".
NEW_QUEUE_S = 1.0
# ... and probes its patterns' queues for pending tasks every second.
SWEEP_S = 1.0


async def test_a_pattern_leases_from_its_matching_queues_only(broker_stub: Any) -> None:
    await fill(broker_stub, {"tenant.a": 3, "tenant.b": 3, "tenantx": 3, "email": 3})
    got = await leased_queues(broker_stub, lease_of("tenant.*", max_tasks=100))
    assert Counter(got) == {"tenant.a": 3, "tenant.b": 3}


async def test_a_queue_created_after_the_pattern_was_first_used_is_served(
    broker_stub: Any,
) -> None:
    await fill(broker_stub, {"tenant.old": 1})
    assert await leased_queues(broker_stub, lease_of("tenant.*", max_tasks=5)) == ["tenant.old"]
    await fill(broker_stub, {"tenant.new": 2})
    assert await leased_queues(broker_stub, lease_of("tenant.*", max_tasks=5)) == ["tenant.new"] * 2


async def test_a_queue_created_through_another_replica_is_served_within_about_a_second(
    broker_factory: BrokerFactory,
) -> None:
    leasing, enqueuing = broker_factory(), broker_factory()
    async with grpc.aio.insecure_channel(leasing.address) as a, \
            grpc.aio.insecure_channel(enqueuing.address) as b:
        stub_a = broker_service_pb2_grpc.BrokerServiceStub(a)
        stub_b = broker_service_pb2_grpc.BrokerServiceStub(b)
        assert await leased_queues(stub_a, lease_of("tenant.*")) == []  # the index is loaded
        await fill(stub_b, {"tenant.remote": 1})
        enqueued = time.monotonic()

        async def served() -> list[str]:
            return await leased_queues(stub_a, lease_of("tenant.*"))

        assert await eventually(served, NEW_QUEUE_S + MARGIN, "tenant.remote served") == [
            "tenant.remote"]
        assert time.monotonic() - enqueued <= NEW_QUEUE_S + MARGIN


async def _wait_until_polling(redis_client: Any, queue: str) -> None:
    """A long poll has marked ``queue`` as waited on: it is past its first check."""
    async def marked() -> bool:
        return bool(await redis_client.exists(KEYS.waiting(queue)))
    await eventually(marked, 5 + MARGIN, f"a long poll marked {queue} as waited on")


@pytest.mark.parametrize("replica", ["same broker", "other replica"])
async def test_a_long_poll_wakes_for_a_task_in_a_queue_that_did_not_exist_when_it_began(
    broker_factory: BrokerFactory, redis_client: Any, replica: str
) -> None:
    leasing = broker_factory()
    enqueuing = leasing if replica == "same broker" else broker_factory()
    async with grpc.aio.insecure_channel(leasing.address) as a, \
            grpc.aio.insecure_channel(enqueuing.address) as b:
        stub_a = broker_service_pb2_grpc.BrokerServiceStub(a)
        stub_b = broker_service_pb2_grpc.BrokerServiceStub(b)
        await fill(stub_a, {"tenant.old": 1})
        assert await leased_queues(stub_a, lease_of("tenant.*")) == ["tenant.old"]
        poll = asyncio.ensure_future(
            stub_a.Lease(lease_of("tenant.*", wait=Duration(seconds=20))))
        await _wait_until_polling(redis_client, "tenant.old")
        assert not poll.done()
        await fill(stub_b, {"tenant.fresh": 1})
        enqueued = time.monotonic()
        response = await within(NEW_QUEUE_S + MARGIN, poll, "the long poll answered")
        assert [task.queue for task in response.tasks] == ["tenant.fresh"]
        assert time.monotonic() - enqueued <= NEW_QUEUE_S + MARGIN


async def test_a_long_poll_wakes_at_once_for_a_known_queue_enqueued_on_another_replica(
    broker_factory: BrokerFactory, redis_client: Any
) -> None:
    leasing, enqueuing = broker_factory(), broker_factory()
    async with grpc.aio.insecure_channel(leasing.address) as a, \
            grpc.aio.insecure_channel(enqueuing.address) as b:
        stub_a = broker_service_pb2_grpc.BrokerServiceStub(a)
        stub_b = broker_service_pb2_grpc.BrokerServiceStub(b)
        await fill(stub_a, {"tenant.k": 1})
        assert await leased_queues(stub_a, lease_of("tenant.*")) == ["tenant.k"]
        poll = asyncio.ensure_future(
            stub_a.Lease(lease_of("tenant.*", wait=Duration(seconds=20))))
        await _wait_until_polling(redis_client, "tenant.k")
        await fill(stub_b, {"tenant.k": 1})
        # The marked queue publishes a wake-up: no refresh period involved.
        response = await within(MARGIN, poll, "the long poll answered")
        assert [task.queue for task in response.tasks] == ["tenant.k"]


async def test_weights_hold_across_a_pattern_and_a_named_queue(broker_stub: Any) -> None:
    await fill(broker_stub, {"tenant.a": 700, "tenant.b": 700, "tenant.c": 700, "email": 700})
    request = lease_of(entry("tenant.*", 3), entry("email", 1), max_tasks=1)
    got: Counter[str] = Counter()
    for _ in range(800):
        got.update(await leased_queues(broker_stub, request))
    assert sum(got.values()) == 800
    pattern_share = (got["tenant.a"] + got["tenant.b"] + got["tenant.c"]) / 800
    # Expected 0.75; the standard deviation over 800 draws is ~0.015: 4 of them tolerated.
    assert abs(pattern_share - 0.75) <= 0.06, got
    for queue in ("tenant.a", "tenant.b", "tenant.c"):  # spread over the pattern's queues
        assert abs(got[queue] / 800 - 0.25) <= 0.06, got


async def test_strict_mode_serves_a_pattern_at_its_position_and_its_queues_in_name_order(
    broker_stub: Any,
) -> None:
    await fill(broker_stub, {"urgent": 1, "tenant.b": 2, "tenant.a": 2, "email": 2})
    request = lease_of("urgent", "tenant.*", "email", strict=True, max_tasks=1)
    order = [q for _ in range(8) for q in await leased_queues(broker_stub, request)]
    assert order == ["urgent", "tenant.a", "tenant.a", "tenant.b", "tenant.b", "email", "email"]


async def test_a_queue_listed_by_name_is_served_under_its_own_entry(broker_stub: Any) -> None:
    await fill(broker_stub, {"tenant.a": 2, "tenant.vip": 2})
    request = lease_of("tenant.vip", "tenant.*", strict=True, max_tasks=1)
    order = [q for _ in range(4) for q in await leased_queues(broker_stub, request)]
    assert order == ["tenant.vip", "tenant.vip", "tenant.a", "tenant.a"]


@pytest.mark.parametrize(("entries", "field"), [
    ([pb.QueueWeight(queue="email", pattern="tenant.*")], "queues[0].pattern"),
    ([pb.QueueWeight(queue="email"), pb.QueueWeight(weight=2)], "queues[1].pattern"),
    ([pb.QueueWeight(pattern="ten{ant}*")], "queues[0].pattern"),
    ([pb.QueueWeight(pattern="t" * 129)], "queues[0].pattern"),
    ([pb.QueueWeight(pattern="[ab]*")], "queues[0].pattern"),
    ([pb.QueueWeight(pattern="t.*"), pb.QueueWeight(pattern="t.*")], "queues"),
    ([pb.QueueWeight(pattern="t.*", weight=1001)], "queues[0].weight"),
])  # fmt: skip
async def test_malformed_entries_are_refused_naming_the_field(
    broker_stub: Any, entries: list[pb.QueueWeight], field: str
) -> None:
    refused = await refusal(broker_stub.Lease(pb.LeaseRequest(worker_id="w", queues=entries)))
    assert (refused.code, refused.field) == (grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_ack_with_lease_next_keeps_the_patterns(broker_stub: Any) -> None:
    await fill(broker_stub, {"tenant.a": 1, "tenant.b": 1})
    first = (await broker_stub.Lease(lease_of("tenant.*", strict=True))).tasks[0]
    assert first.queue == "tenant.a"
    ack = pb.AckRequest(worker_id="w-patterns", lease_next=lease_of("tenant.*", worker_id=""),
                        items=[pb.AckItem(lease=ref(first))])
    response = await broker_stub.Ack(ack)
    assert [task.queue for task in response.next_tasks] == ["tenant.b"]


@pytest.mark.parametrize("key", ["", "customer-1"])
async def test_a_known_queue_emptied_then_refilled_through_another_replica_is_served_again(
    broker_factory: BrokerFactory, key: str
) -> None:
    """No Lease waits, so no wake-up is published: the broker's once-a-second sweep of its
    patterns' queues finds the task (in the pending list, or a concurrency key's list)."""
    leasing, enqueuing = broker_factory(), broker_factory()
    async with grpc.aio.insecure_channel(leasing.address) as a, \
            grpc.aio.insecure_channel(enqueuing.address) as b:
        stub_a = broker_service_pb2_grpc.BrokerServiceStub(a)
        stub_b = broker_service_pb2_grpc.BrokerServiceStub(b)
        await fill(stub_a, {"tenant.k": 1})
        assert await leased_queues(stub_a, lease_of("tenant.*")) == ["tenant.k"]
        assert await leased_queues(stub_a, lease_of("tenant.*")) == []  # known to be empty
        await stub_b.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
            type="noop", queue="tenant.k", concurrency_key=key)))

        async def served() -> list[str]:
            return await leased_queues(stub_a, lease_of("tenant.*"))

        assert await eventually(served, SWEEP_S + MARGIN, "tenant.k served again") == [
            "tenant.k"]


@pytest.mark.parametrize("wait_s", [0, 20])
async def test_a_lease_asks_past_stale_maybe_ready_queues_instead_of_answering_empty(
    broker_factory: BrokerFactory, wait_s: int
) -> None:
    """200 queues this broker saw filled were drained through another replica: its index still
    takes them for maybe ready. A pattern Lease drops 16 of them per empty answer and asks on
    at once, so the one queue with a task is served at once, without a long poll's re-check
    and also by a Lease that does not wait."""
    leasing, other = broker_factory(), broker_factory()
    async with grpc.aio.insecure_channel(leasing.address) as a, \
            grpc.aio.insecure_channel(other.address) as b:
        stub_a = broker_service_pb2_grpc.BrokerServiceStub(a)
        stub_b = broker_service_pb2_grpc.BrokerServiceStub(b)
        stale = {f"s.x{i:03}": 1 for i in range(200)}
        await fill(stub_a, {**stale, "s.real": 1})
        while await leased_queues(stub_b, lease_of("s.x*", max_tasks=1000)):
            pass
        started = time.monotonic()
        request = lease_of("s.*", wait=Duration(seconds=wait_s))
        response = await within(MARGIN, stub_a.Lease(request), "the Lease answered")
        assert [task.queue for task in response.tasks] == ["s.real"]
        assert time.monotonic() - started <= MARGIN
