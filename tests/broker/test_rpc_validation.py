"""Every request rule, table-driven: the right status, reason and field, and nothing stored."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from broker_process import RedisProcess
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rpc_testing import lease_request, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, task_pb2
from leasq.v1 import inspect_service_pb2 as ipb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
TOO_BIG = grpc.StatusCode.RESOURCE_EXHAUSTED
PAST = Timestamp(seconds=1_000_000_000)

ENQUEUE_CASES: list[tuple[str, dict[str, Any], grpc.StatusCode, str, str]] = [
    ("empty type", {"type": ""}, INVALID, "INVALID_FIELD", "task.type"),
    ("type too long", {"type": "x" * 257}, INVALID, "INVALID_FIELD", "task.type"),
    ("unprintable type", {"type": "a\nb"}, INVALID, "INVALID_FIELD", "task.type"),
    ("queue with braces", {"queue": "a{b}"}, INVALID, "INVALID_FIELD", "task.queue"),
    ("queue starting with dash", {"queue": "-q"}, INVALID, "INVALID_FIELD", "task.queue"),
    ("queue too long", {"queue": "q" * 129}, INVALID, "INVALID_FIELD", "task.queue"),
    ("task id with space", {"task_id": "a b"}, INVALID, "INVALID_FIELD", "task.task_id"),
    ("task id too long", {"task_id": "i" * 129}, INVALID, "INVALID_FIELD", "task.task_id"),
    ("payload over limit", {"payload": b"x" * 2049}, TOO_BIG, "PAYLOAD_TOO_LARGE",
     "task.payload"),
    ("too many headers", {"headers": {f"h{i}": "v" for i in range(65)}}, TOO_BIG,
     "HEADERS_TOO_LARGE", "task.headers"),
    ("headers too large", {"headers": {"h": "v" * 16385}}, TOO_BIG, "HEADERS_TOO_LARGE",
     "task.headers"),
    ("max_retry over 10000", {"max_retry": 10001}, INVALID, "INVALID_FIELD", "task.max_retry"),
    ("negative timeout", {"timeout": Duration(seconds=-1)}, INVALID, "INVALID_FIELD",
     "task.timeout"),
    ("zero timeout", {"timeout": Duration()}, INVALID, "INVALID_FIELD", "task.timeout"),
    ("timeout over 7 days", {"timeout": Duration(seconds=8 * 86400)}, INVALID, "INVALID_FIELD",
     "task.timeout"),
    ("deadline in the past", {"deadline": PAST}, INVALID, "INVALID_FIELD", "task.deadline"),
    ("process_at and process_in", {"process_at": PAST, "process_in": Duration(seconds=1)},
     INVALID, "INVALID_FIELD", "task.process_in"),
    ("negative process_in", {"process_in": Duration(seconds=-5)}, INVALID, "INVALID_FIELD",
     "task.process_in"),
    ("process_at beyond 10 years", {"process_at": Timestamp(seconds=4_000_000_000)}, INVALID,
     "INVALID_FIELD", "task.process_at"),
    ("unique ttl over 30 days", {"unique_ttl": Duration(seconds=31 * 86400)}, INVALID,
     "INVALID_FIELD", "task.unique_ttl"),
    ("unique key without ttl", {"unique_key": "k"}, INVALID, "INVALID_FIELD",
     "task.unique_key"),
    ("retention over 90 days", {"retention": Duration(seconds=91 * 86400)}, INVALID,
     "INVALID_FIELD", "task.retention"),
    ("group too long", {"group": "g" * 257}, INVALID, "INVALID_FIELD", "task.group"),
]


async def stored_tasks(inspect: Any) -> int:
    queues = await inspect.ListQueues(ipb.ListQueuesRequest())
    stats = [await inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=q.queue))
             for q in queues.queues]
    return sum(s.stats.pending + s.stats.scheduled for s in stats)


@pytest.mark.parametrize(("case", "fields", "code", "reason", "field"), ENQUEUE_CASES,
                         ids=[c[0] for c in ENQUEUE_CASES])
async def test_enqueue_refuses_bad_input_naming_the_field(
    shared_channel: grpc.aio.Channel, case: str, fields: dict[str, Any], code: grpc.StatusCode,
    reason: str, field: str,
) -> None:
    stub = broker_service_pb2_grpc.BrokerServiceStub(shared_channel)
    inspect = inspect_service_pb2_grpc.InspectServiceStub(shared_channel)
    before = await stored_tasks(inspect)
    values = {"type": "t:x", **fields}
    got = await refusal(stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(**values))))
    assert (got.code, got.reason, got.field) == (code, reason, field)
    assert field in got.message
    batch = await stub.EnqueueBatch(pb.EnqueueBatchRequest(
        tasks=[task_pb2.TaskSpec(type="ok"), task_pb2.TaskSpec(**values)]))
    assert batch.enqueued_count == 1
    assert batch.results[1].error.reason == reason
    assert batch.results[1].error.field == field.replace("task.", "tasks[1].")
    assert await stored_tasks(inspect) == before + 1


async def test_enqueue_without_a_task_is_refused(broker_stub: Any) -> None:
    got = await refusal(broker_stub.Enqueue(pb.EnqueueRequest()))
    assert (got.code, got.field) == (INVALID, "task")


async def test_a_batch_over_1000_items_is_refused_whole(broker_stub: Any) -> None:
    got = await refusal(broker_stub.EnqueueBatch(
        pb.EnqueueBatchRequest(tasks=[spec() for _ in range(1001)])))
    assert (got.code, got.reason, got.field) == (INVALID, "BATCH_TOO_LARGE", "tasks")


LEASE_CASES: list[tuple[str, pb.LeaseRequest, str]] = [
    ("no worker id", lease_request("q", worker_id=""), "worker_id"),
    ("no queues", pb.LeaseRequest(worker_id="w"), "queues"),
    ("bad queue", lease_request("a}b"), "queues[0].queue"),
    ("repeated queue", lease_request("q", "q"), "queues"),
    ("weight over 1000", pb.LeaseRequest(worker_id="w", queues=[pb.QueueWeight(queue="q",
                                                                               weight=1001)]),
     "queues[0].weight"),
    ("too many tasks", lease_request("q", max_tasks=1001), "max_tasks"),
    ("lease under 1s", lease_request("q", lease_duration=Duration(nanos=500_000_000)),
     "lease_duration"),
    ("lease over 12h", lease_request("q", lease_duration=Duration(seconds=12 * 3600 + 1)),
     "lease_duration"),
    ("wait over 60s", lease_request("q", wait=Duration(seconds=61)), "wait"),
    ("negative wait", lease_request("q", wait=Duration(seconds=-1)), "wait"),
]


@pytest.mark.parametrize(("case", "request_", "field"), LEASE_CASES,
                         ids=[c[0] for c in LEASE_CASES])
async def test_lease_refuses_bad_input_naming_the_field(
    shared_channel: grpc.aio.Channel, case: str, request_: pb.LeaseRequest, field: str
) -> None:
    broker_stub = broker_service_pb2_grpc.BrokerServiceStub(shared_channel)
    got = await refusal(broker_stub.Lease(request_))
    assert (got.code, got.reason, got.field) == (INVALID, "INVALID_FIELD", field)


def _ref(**fields: str) -> pb.LeaseRef:
    values = {"queue": "q", "task_id": "t1", "lease_token": "tok", **fields}
    return pb.LeaseRef(**values)


SETTLE_CASES: list[tuple[str, Any, str]] = [
    ("ack without items", pb.AckRequest(worker_id="w"), "items"),
    ("ack without worker", pb.AckRequest(items=[pb.AckItem(lease=_ref())]), "worker_id"),
    ("ack bad queue", pb.AckRequest(worker_id="w", items=[pb.AckItem(lease=_ref(queue="{"))]),
     "items[0].lease.queue"),
    ("ack empty token", pb.AckRequest(worker_id="w", items=[pb.AckItem(
        lease=_ref(lease_token=""))]), "items[0].lease.lease_token"),
    ("ack lease_next for another worker", pb.AckRequest(
        worker_id="w", items=[pb.AckItem(lease=_ref())],
        lease_next=lease_request("q", worker_id="other")), "lease_next.worker_id"),
    ("nack unknown action", pb.NackRequest(worker_id="w", items=[pb.NackItem(
        lease=_ref(), action=9)]), "items[0].action"),
    ("nack negative retry_after", pb.NackRequest(worker_id="w", items=[pb.NackItem(
        lease=_ref(), retry_after=Duration(seconds=-1))]), "items[0].retry_after"),
    ("nack bad task id", pb.NackRequest(worker_id="w", items=[pb.NackItem(
        lease=_ref(task_id="a b"))]), "items[0].lease.task_id"),
]


@pytest.mark.parametrize(("case", "request_", "field"), SETTLE_CASES,
                         ids=[c[0] for c in SETTLE_CASES])
async def test_ack_and_nack_refuse_bad_input_naming_the_field(
    shared_channel: grpc.aio.Channel, case: str, request_: Any, field: str
) -> None:
    broker_stub = broker_service_pb2_grpc.BrokerServiceStub(shared_channel)
    call = broker_stub.Ack if isinstance(request_, pb.AckRequest) else broker_stub.Nack
    got = await refusal(call(request_))
    assert (got.code, got.field) == (INVALID, field)


async def test_ack_refuses_a_result_over_the_payload_limit(broker_factory: Any) -> None:
    small = broker_factory(max_payload_bytes=10)
    async with grpc.aio.insecure_channel(small.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        got = await refusal(stub.Ack(pb.AckRequest(
            worker_id="w", items=[pb.AckItem(lease=_ref(), result=b"x" * 11)])))
    assert (got.code, got.reason, got.field) == (TOO_BIG, "PAYLOAD_TOO_LARGE", "items[0].result")


async def test_heartbeat_refuses_bad_leases_naming_the_field(broker_stub: Any) -> None:
    got = await refusal(broker_stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="w", leases=[_ref(), _ref(queue="")])))
    assert (got.code, got.field) == (INVALID, "leases[1].queue")
    got = await refusal(broker_stub.Heartbeat(pb.HeartbeatRequest(leases=[_ref()])))
    assert (got.code, got.field) == (INVALID, "worker_id")


INSPECT_CASES: list[tuple[str, str, Any, str]] = [
    ("get task bad queue", "GetTask", ipb.GetTaskRequest(queue="", task_id="t"), "queue"),
    ("get task bad id", "GetTask", ipb.GetTaskRequest(queue="q", task_id=""), "task_id"),
    ("stats bad queue", "GetQueueStats", ipb.GetQueueStatsRequest(queue="{q}"), "queue"),
    ("list without state", "ListTasks", ipb.ListTasksRequest(queue="q"), "state"),
    ("list page too big", "ListTasks", ipb.ListTasksRequest(
        queue="q", state=task_pb2.TASK_STATE_PENDING, page_size=1001), "page_size"),
    ("list forged token", "ListTasks", ipb.ListTasksRequest(
        queue="q", state=task_pb2.TASK_STATE_PENDING, page_token="nope"), "page_token"),
    ("pause bad queue", "PauseQueue", ipb.PauseQueueRequest(queue=""), "queue"),
    ("cancel bad id", "CancelTask", ipb.CancelTaskRequest(queue="q", task_id="x y"), "task_id"),
]


@pytest.mark.parametrize(("case", "method", "request_", "field"), INSPECT_CASES,
                         ids=[c[0] for c in INSPECT_CASES])
async def test_inspect_calls_refuse_bad_input_naming_the_field(
    shared_channel: grpc.aio.Channel, case: str, method: str, request_: Any, field: str
) -> None:
    inspect_stub = inspect_service_pb2_grpc.InspectServiceStub(shared_channel)
    got = await refusal(getattr(inspect_stub, method)(request_))
    assert (got.code, got.field) == (INVALID, field)


async def test_unknown_tasks_are_not_found(inspect_stub: Any, broker_stub: Any) -> None:
    got = await refusal(inspect_stub.GetTask(ipb.GetTaskRequest(queue="q", task_id="nope")))
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    got = await refusal(broker_stub.Ack(pb.AckRequest(worker_id="w", items=[pb.AckItem(
        lease=_ref(task_id="nope"))])))
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")


async def test_an_unreachable_redis_answers_unavailable(
    broker_factory: Any, tmp_path: Any
) -> None:
    doomed = RedisProcess(tmp_path)
    broker = broker_factory(redis_url=doomed.start())
    doomed.stop()
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        got = await refusal(stub.Enqueue(pb.EnqueueRequest(task=spec())))
        assert (got.code, got.reason) == (grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
        got = await refusal(stub.Lease(lease_request("q")))
        assert got.code == grpc.StatusCode.UNAVAILABLE
