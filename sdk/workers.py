"""Live workers as typed values, and their conversion from the contract.

The broker records every worker from the Lease and Heartbeat calls it makes (its id, the
``WorkerMeta`` it sends, the queues of its latest Lease) and forgets it 60 s after its last
call. An operator can ask a worker to go quiet (lease no more, finish what it holds, stay up)
or to stop (the same, then exit)::

    for worker in client.list_workers():
        print(worker.worker_id, worker.host, worker.pid, len(worker.tasks), worker.command)
    client.quiet_worker("billing-7")      # before a deploy: drain it
    client.stop_worker("billing-7")       # then let it exit cleanly
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq.v1 import inspect_service_pb2 as pb
from leasq_sdk.convert import from_timestamp


class WorkerCommand(enum.StrEnum):
    """What an operator asked of a worker."""

    #: No command: the worker carries on.
    NONE = "none"
    #: Lease no more tasks, finish those held, stay up.
    QUIET = "quiet"
    #: Lease no more tasks, finish those held within the shutdown grace, exit.
    STOP = "stop"


_COMMANDS: dict[int, WorkerCommand] = {
    broker_pb.WORKER_COMMAND_UNSPECIFIED: WorkerCommand.NONE,
    broker_pb.WORKER_COMMAND_QUIET: WorkerCommand.QUIET,
    broker_pb.WORKER_COMMAND_STOP: WorkerCommand.STOP,
}


@dataclass(frozen=True, slots=True)
class WorkerTask:
    """A task a worker holds now (ACTIVE under its worker id)."""

    queue: str
    task_id: str
    type: str
    #: When the current lease was granted: the attempt's start.
    leased_at: datetime | None
    #: When the lease runs out unless the worker extends it.
    lease_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker as the broker knows it. Fields the worker did not send are empty
    (``""``, 0, None): a client that sends no ``WorkerMeta`` is listed with its id only."""

    worker_id: str
    host: str
    pid: int
    concurrency: int
    started_at: datetime | None
    #: Runtime and version, e.g. ``"leasq-python/0.5.0"``.
    sdk: str
    #: The queues of its latest Lease call, with their weights.
    queues: list[tuple[str, int]]
    #: Whether its latest Lease call was strict (queues served in listed order).
    strict: bool
    first_seen_at: datetime | None
    #: Its latest Lease or Heartbeat call, to within a couple of seconds.
    last_seen_at: datetime | None
    #: The tasks it holds now, oldest lease first.
    tasks: list[WorkerTask] = field(default_factory=list)
    command: WorkerCommand = WorkerCommand.NONE


def worker_command(number: int) -> WorkerCommand:
    """The SDK command of a proto ``WorkerCommand`` number (unknown numbers: NONE)."""
    return _COMMANDS.get(number, WorkerCommand.NONE)


def _instant(message: Any, name: str) -> datetime | None:
    """An optional Timestamp field as a datetime (None when unset)."""
    return from_timestamp(getattr(message, name)) if message.HasField(name) else None


def worker_task(message: pb.WorkerTask) -> WorkerTask:
    """One held task."""
    return WorkerTask(queue=message.queue, task_id=message.task_id, type=message.type,
                      leased_at=_instant(message, "leased_at"),
                      lease_expires_at=_instant(message, "lease_expires_at"))


def worker_info(message: pb.WorkerInfo) -> WorkerInfo:
    """One worker."""
    meta = message.meta
    return WorkerInfo(
        worker_id=message.worker_id,
        host=meta.host,
        pid=meta.pid,
        concurrency=meta.concurrency,
        started_at=_instant(meta, "started_at"),
        sdk=meta.sdk,
        queues=[(q.queue, q.weight) for q in message.queues],
        strict=message.strict,
        first_seen_at=_instant(message, "first_seen_at"),
        last_seen_at=_instant(message, "last_seen_at"),
        tasks=[worker_task(t) for t in message.tasks],
        command=worker_command(message.command),
    )


def worker_infos(message: pb.ListWorkersResponse) -> list[WorkerInfo]:
    """Every live worker, sorted by id."""
    return [worker_info(w) for w in message.workers]
