"""Helpers for tests that talk to a real broker over gRPC."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2


@dataclass(frozen=True)
class Refusal:
    """A failed call's status code, ErrorInfo reason and BadRequest field (if any)."""

    code: grpc.StatusCode
    reason: str
    field: str
    message: str


async def refusal(call: Awaitable[Any]) -> Refusal:
    """Await a call that must fail and read its rich status."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        reason = field = ""
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                field = bad.field_violations[0].field
        return Refusal(error.code(), reason, field, error.details() or "")
    raise AssertionError("the call succeeded but a refusal was expected")


def spec(task_type: str = "t:x", **fields: Any) -> task_pb2.TaskSpec:
    return task_pb2.TaskSpec(type=task_type, **fields)


def lease_request(*queues: str, **fields: Any) -> pb.LeaseRequest:
    fields.setdefault("worker_id", "w1")
    return pb.LeaseRequest(queues=[pb.QueueWeight(queue=q) for q in queues or ("default",)],
                           **fields)


def ref(task: task_pb2.LeasedTask, token: str | None = None) -> pb.LeaseRef:
    return pb.LeaseRef(queue=task.queue, task_id=task.id,
                       lease_token=task.lease_token if token is None else token)
