"""Requests the broker cannot read: bodies that are not protobuf, and Timestamps/Durations
outside the ranges of google.protobuf, refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rpc_testing import lease_request, refusal

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2, schedule_service_pb2, task_pb2
from leasq.v1 import schedule_service_pb2 as spb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SERVICES = [
    pb.DESCRIPTOR.services_by_name["BrokerService"],
    inspect_service_pb2.DESCRIPTOR.services_by_name["InspectService"],
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"],
]
METHODS = [f"/{service.full_name}/{method.name}" for service in SERVICES
           for method in service.methods]
# Field 1 announced as 5 bytes long with 1 byte present; a varint that never ends.
GARBAGE = [b"\x0a\x05x", b"\x08" + b"\xff" * 11]


@pytest.mark.parametrize("body", GARBAGE, ids=["truncated", "endless varint"])
async def test_a_body_that_is_not_protobuf_is_invalid_argument_on_every_method(
    broker: Any, grpc_channel: grpc.aio.Channel, body: bytes
) -> None:
    for path in METHODS:
        call = grpc_channel.unary_unary(path, request_serializer=lambda b: b,
                                        response_deserializer=lambda b: b)
        got = await refusal(call(body))
        assert (got.code, got.reason, got.field) == (INVALID, "INVALID_FIELD", "request"), path
        assert "not a valid leasq.v1." in got.message
    log = broker.log_text()
    assert "Unexpected" not in log and "Traceback" not in log
    warnings = [json.loads(line) for line in log.splitlines()
                if "requests that are not valid protobuf refused" in line]
    assert len(warnings) == 1, "at most one warning per interval"
    assert warnings[0]["level"] == "warning"


async def test_a_valid_body_still_reaches_the_method(broker_stub: Any) -> None:
    answer = await broker_stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(type="t:x")))
    assert answer.task.state == task_pb2.TASK_STATE_PENDING


MAX_S = 9_223_372_036_854_775_807
BAD_TIMESTAMPS = {
    "year 10000": Timestamp(seconds=253_402_300_800),
    "before year 1": Timestamp(seconds=-62_135_596_801),
    "negative nanos": Timestamp(seconds=1_900_000_000, nanos=-1),
    "nanos of a whole second": Timestamp(seconds=1_900_000_000, nanos=1_000_000_000),
    "int64 max seconds": Timestamp(seconds=MAX_S),
    "int64 min seconds": Timestamp(seconds=-MAX_S - 1),
}
BAD_DURATIONS = {
    "over 10000 years": Duration(seconds=315_576_000_001),
    "under -10000 years": Duration(seconds=-315_576_000_001),
    "nanos of a whole second": Duration(seconds=5, nanos=1_000_000_000),
    "positive seconds, negative nanos": Duration(seconds=5, nanos=-1),
    "negative seconds, positive nanos": Duration(seconds=-5, nanos=1),
    "int64 max seconds": Duration(seconds=MAX_S),
    "int64 min seconds": Duration(seconds=-MAX_S - 1),
}


def _ref() -> pb.LeaseRef:
    return pb.LeaseRef(queue="q", task_id="t1", lease_token="tok")


def _schedule(template: dict[str, Any] | None = None, **fields: Any) -> spb.UpsertScheduleRequest:
    return spb.UpsertScheduleRequest(schedule=spb.Schedule(
        name="s", spec="@every 1h", template=spb.TaskTemplate(type="t:x", **(template or {})),
        **fields))


# (method, field path the broker must name, request built around one bad value)
TIMESTAMP_FIELDS: list[tuple[str, str, Any]] = [
    ("Enqueue", "task.deadline", lambda t: pb.EnqueueRequest(task=task_pb2.TaskSpec(
        type="t:x", deadline=t))),
    ("Enqueue", "task.process_at", lambda t: pb.EnqueueRequest(task=task_pb2.TaskSpec(
        type="t:x", process_at=t))),
]
DURATION_FIELDS: list[tuple[str, str, Any]] = [
    *[("Enqueue", f"task.{name}", lambda d, name=name: pb.EnqueueRequest(
        task=task_pb2.TaskSpec(type="t:x", **{name: d})))
      for name in ("timeout", "process_in", "unique_ttl", "retention")],
    ("Lease", "lease_duration", lambda d: lease_request("q", lease_duration=d)),
    ("Lease", "wait", lambda d: lease_request("q", wait=d)),
    ("Heartbeat", "lease_duration", lambda d: pb.HeartbeatRequest(
        worker_id="w", leases=[_ref()], lease_duration=d)),
    ("Ack", "lease_next.lease_duration", lambda d: pb.AckRequest(
        worker_id="w", items=[pb.AckItem(lease=_ref())],
        lease_next=lease_request("q", worker_id="", lease_duration=d))),
    ("Nack", "lease_next.wait", lambda d: pb.NackRequest(
        worker_id="w", items=[pb.NackItem(lease=_ref())],
        lease_next=lease_request("q", worker_id="", wait=d))),
    ("Nack", "items[0].retry_after", lambda d: pb.NackRequest(
        worker_id="w", items=[pb.NackItem(lease=_ref(), retry_after=d)])),
    *[("UpsertSchedule", f"schedule.template.{name}",
       lambda d, name=name: _schedule({name: d}))
      for name in ("timeout", "deadline_after", "retention", "unique_ttl")],
    ("UpsertSchedule", "schedule.jitter", lambda d: _schedule(jitter=d)),
    ("UpsertSchedule", "schedule.catch_up_window", lambda d: _schedule(catch_up_window=d)),
]
CASES = [(method, field, build, name, value)
         for method, field, build in TIMESTAMP_FIELDS for name, value in BAD_TIMESTAMPS.items()]
CASES += [(method, field, build, name, value)
          for method, field, build in DURATION_FIELDS for name, value in BAD_DURATIONS.items()]


@pytest.mark.parametrize(("method", "field", "build", "case", "value"), CASES,
                         ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES])
async def test_out_of_range_times_are_refused_naming_the_field(
    shared_channel: grpc.aio.Channel, method: str, field: str, build: Any, case: str,
    value: Any,
) -> None:
    service = "ScheduleService" if method == "UpsertSchedule" else "BrokerService"
    request = build(value)
    call = shared_channel.unary_unary(
        f"/leasq.v1.{service}/{method}", request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=lambda b: b)
    got = await refusal(call(request))
    assert (got.code, got.reason, got.field) == (INVALID, "INVALID_FIELD", field)
    assert "not a valid" in got.message


async def test_a_batch_item_with_an_out_of_range_time_is_refused_alone(
    shared_channel: grpc.aio.Channel,
) -> None:
    stub = broker_service_pb2_grpc.BrokerServiceStub(shared_channel)
    answer = await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[
        task_pb2.TaskSpec(type="t:x", queue="shapes"),
        task_pb2.TaskSpec(type="t:x", queue="shapes", deadline=BAD_TIMESTAMPS["year 10000"]),
        task_pb2.TaskSpec(type="t:x", queue="shapes", timeout=BAD_DURATIONS["int64 max seconds"]),
    ]))
    assert answer.enqueued_count == 1
    assert answer.results[0].task.state == task_pb2.TASK_STATE_PENDING
    assert [(r.error.code, r.error.reason, r.error.field) for r in answer.results[1:]] == [
        (INVALID.value[0], "INVALID_FIELD", "tasks[1].deadline"),
        (INVALID.value[0], "INVALID_FIELD", "tasks[2].timeout"),
    ]


async def test_the_edges_of_the_ranges_are_read_as_valid(shared_channel: grpc.aio.Channel) -> None:
    stub = broker_service_pb2_grpc.BrokerServiceStub(shared_channel)
    far = await refusal(stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
        type="t:x", process_at=Timestamp(seconds=253_402_300_799, nanos=999_999_999)))))
    assert (far.code, far.field) == (INVALID, "task.process_at")
    assert "10 years" in far.message  # the field's own bound, not the Timestamp range
    negative = await refusal(stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
        type="t:x", process_in=Duration(seconds=-5, nanos=-1)))))
    assert (negative.code, negative.field) == (INVALID, "task.process_in")
    assert "not a valid" not in negative.message
