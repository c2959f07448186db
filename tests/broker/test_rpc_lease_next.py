"""Ack/Nack with ``lease_next``: the settle scripts and the lease share one Redis round trip,
settle first; a refused single item leases nothing for the caller and loses no task."""

from __future__ import annotations

from typing import Any

import grpc
from flow_testing import configure
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb


async def test_an_ack_with_lease_next_leases_into_the_slot_it_frees_under_max_active_one(
    broker_stub: Any, inspect_stub: Any
) -> None:
    await configure(inspect_stub, "default", max_active=1)
    for _ in range(2):
        await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    first = (await broker_stub.Lease(lease_request(max_tasks=2))).tasks
    assert len(first) == 1  # max active 1: the second waits for the first's slot
    answer = await broker_stub.Ack(pb.AckRequest(
        worker_id="w1", items=[pb.AckItem(lease=ref(first[0]))],
        lease_next=lease_request(worker_id="", max_tasks=1)))
    assert not answer.results[0].HasField("error")
    assert len(answer.next_tasks) == 1 and answer.next_tasks[0].id != first[0].id


async def test_a_nack_with_lease_next_leases_the_next_task_in_the_same_call(
    broker_stub: Any,
) -> None:
    for _ in range(2):
        await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    first = (await broker_stub.Lease(lease_request())).tasks[0]
    answer = await broker_stub.Nack(pb.NackRequest(
        worker_id="w1", items=[pb.NackItem(lease=ref(first), error="boom")],
        lease_next=lease_request(worker_id="", max_tasks=1)))
    assert [t.id for t in answer.next_tasks] != [first.id] and len(answer.next_tasks) == 1


async def test_a_refused_single_ack_with_lease_next_gives_the_task_it_leased_back_at_once(
    broker_stub: Any, inspect_stub: Any
) -> None:
    for _ in range(2):
        await broker_stub.Enqueue(pb.EnqueueRequest(task=spec()))
    first = (await broker_stub.Lease(lease_request())).tasks[0]
    stale = ref(first)
    stale.lease_token = "not-the-token"
    refused = await refusal(broker_stub.Ack(pb.AckRequest(
        worker_id="w1", items=[pb.AckItem(lease=stale)],
        lease_next=lease_request(worker_id="", max_tasks=1))))
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    # The task leased along with the refused item goes back to pending (its requeue wakes this
    # long poll), with no attempt spent.
    got = (await broker_stub.Lease(lease_request(wait=Duration(seconds=10)))).tasks
    assert len(got) == 1 and got[0].id != first.id and got[0].retried == 0
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="default"))).stats
    assert (stats.active, stats.pending) == (2, 0)
