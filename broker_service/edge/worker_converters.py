"""Conversion between the worker messages of the contract and the registry's values, with the
input rules of the worker fields."""

from __future__ import annotations

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq.v1 import inspect_service_pb2 as inspect_pb
from leasq.v1 import task_pb2
from leasq_broker import validation as v
from leasq_broker.edge import converters as conv
from leasq_broker.models import LeaseAsk
from leasq_broker.workers.models import Command, HeldTask, Sighting, WorkerMeta, WorkerRecord

MAX_HOST = 255
MAX_SDK = 128

_COMMAND_NUMBERS: dict[Command, broker_pb.WorkerCommand.ValueType] = {
    Command.NONE: broker_pb.WORKER_COMMAND_UNSPECIFIED,
    Command.QUIET: broker_pb.WORKER_COMMAND_QUIET,
    Command.STOP: broker_pb.WORKER_COMMAND_STOP,
}


def command_number(command: Command) -> broker_pb.WorkerCommand.ValueType:
    """The contract's number of a command."""
    return _COMMAND_NUMBERS[command]


def worker_id(value: str, field: str = "worker_id") -> str:
    """A worker id as Lease and Heartbeat accept it (1-256 printable ASCII characters)."""
    return v.printable(field, value, required=True)


def meta(request: broker_pb.LeaseRequest | broker_pb.HeartbeatRequest) -> WorkerMeta | None:
    """The request's WorkerMeta, validated; None when the caller sent none."""
    if not request.HasField("worker"):
        return None
    m = request.worker
    started = (conv.timestamp_ms(m.started_at, "worker.started_at")
               if m.HasField("started_at") else None)
    return WorkerMeta(
        host=v.printable("worker.host", m.host, MAX_HOST, required=False),
        pid=m.pid,
        concurrency=m.concurrency,
        started_at_ms=started,
        sdk=v.printable("worker.sdk", m.sdk, MAX_SDK, required=False),
    )


def lease_sighting(request: broker_pb.LeaseRequest, ask: LeaseAsk) -> Sighting:
    """What a (validated) Lease call tells the registry."""
    return Sighting(ask.worker_id, meta(request), tuple(ask.queues), ask.strict)


def heartbeat_sighting(request: broker_pb.HeartbeatRequest) -> Sighting:
    """What a Heartbeat call tells the registry (its worker_id validated by the caller)."""
    return Sighting(request.worker_id, meta(request))


def worker_info(record: WorkerRecord) -> inspect_pb.WorkerInfo:
    """One live worker."""
    info = inspect_pb.WorkerInfo(
        worker_id=record.worker_id,
        queues=[broker_pb.QueueWeight(queue=q, weight=w) for q, w in record.queues],
        strict=record.strict,
        command=command_number(record.command),
        tasks=[worker_task(t) for t in record.tasks],
    )
    if record.meta is not None:
        m = record.meta
        info.meta.host, info.meta.pid, info.meta.sdk = m.host, m.pid, m.sdk
        info.meta.concurrency = m.concurrency
        if m.started_at_ms is not None:
            conv.set_ms(info.meta.started_at, m.started_at_ms)
    if record.first_seen_ms:
        conv.set_ms(info.first_seen_at, record.first_seen_ms)
    if record.last_seen_ms:
        conv.set_ms(info.last_seen_at, record.last_seen_ms)
    return info


def worker_task(task: HeldTask) -> inspect_pb.WorkerTask:
    """One held task; its type read from the stored envelope."""
    message = inspect_pb.WorkerTask(queue=task.queue, task_id=task.task_id,
                                    type=_task_type(task.envelope))
    if task.leased_at_ms is not None:
        conv.set_ms(message.leased_at, task.leased_at_ms)
    if task.lease_expires_ms is not None:
        conv.set_ms(message.lease_expires_at, task.lease_expires_ms)
    return message


def _task_type(envelope: bytes) -> str:
    return task_pb2.LeasedTask.FromString(envelope).type if envelope else ""
