"""Between protobuf messages and domain values: the only module that knows both.

Validation of request shapes that the domain cannot see (durations, enums, list sizes) happens
here as the fields are read, through :mod:`leasq_broker.validation`, so every error names the
field as the caller spelled it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq.v1 import inspect_service_pb2 as inspect_pb
from leasq.v1 import task_pb2
from leasq_broker import validation as v
from leasq_broker.edge.envelope import encode_envelope as encode_envelope  # handed to Producer
from leasq_broker.edge.envelope import encode_group_parts as encode_group_parts
from leasq_broker.edge.envelope import (
    length_delimited,
    member_envelope,
    ms_fields,
    varint,
)
from leasq_broker.edge.status import item_error
from leasq_broker.errors import InvalidField, LeasqError
from leasq_broker.models import (
    Enqueued,
    LeaseAsk,
    LeaseGrant,
    LeaseRef,
    NackAction,
    NewTask,
    QueueCounts,
    Settlement,
    StoredTask,
)
from leasq_broker.observability import trace_context
from leasq_broker.patterns.matching import validate_pattern
from leasq_broker.settings.blocked import Block

STATE_NAMES: dict[int, str] = {
    task_pb2.TASK_STATE_PENDING: "pending",
    task_pb2.TASK_STATE_SCHEDULED: "scheduled",
    task_pb2.TASK_STATE_ACTIVE: "active",
    task_pb2.TASK_STATE_RETRY: "retry",
    task_pb2.TASK_STATE_ARCHIVED: "archived",
    task_pb2.TASK_STATE_COMPLETED: "completed",
    task_pb2.TASK_STATE_AGGREGATING: "aggregating",
}
STATE_VALUES: dict[str, Any] = {name: value for value, name in STATE_NAMES.items()}


def duration_ms(message: Duration, field: str) -> int:
    """A request's Duration in ms; INVALID_ARGUMENT naming ``field`` outside the protobuf range.
    Every Duration a request carries is read through here."""
    return v.duration(field, message.seconds, message.nanos)


def timestamp_ms(message: Timestamp, field: str) -> int:
    """A request's Timestamp in ms; INVALID_ARGUMENT naming ``field`` outside the protobuf range.
    Every Timestamp a request carries is read through here."""
    return v.timestamp(field, message.seconds, message.nanos)


def _stored_ms(message: Timestamp | Duration) -> int:
    """A Timestamp/Duration the broker wrote itself (an envelope's), unchecked."""
    return message.seconds * 1000 + message.nanos // 1_000_000


def set_ms(target: Timestamp | Duration, ms: int) -> None:
    target.seconds, rest = divmod(ms, 1000)
    target.nanos = rest * 1_000_000


def new_task(spec: task_pb2.TaskSpec, field: str = "task") -> NewTask:
    """Read a TaskSpec; unset optional fields become None (the broker's defaults).

    Runs for every task of every batch: the usual task sets none of the optional fields, so
    each is looked at once (HasField) and read only when set."""
    headers = dict(spec.headers) if spec.headers else {}
    trace_context.apply(headers)  # the call's trace context, unless the task has its own
    task = NewTask(spec.type, spec.payload, headers, spec.queue, spec.task_id,
                   unique_key=spec.unique_key, group=spec.group,
                   concurrency_key=spec.concurrency_key)
    has = spec.HasField
    if has("max_retry"):
        task.max_retry = spec.max_retry
    if has("timeout"):
        task.timeout_ms = duration_ms(spec.timeout, f"{field}.timeout")
    if has("deadline"):
        task.deadline_ms = timestamp_ms(spec.deadline, f"{field}.deadline")
    if has("process_at"):
        task.process_at_ms = timestamp_ms(spec.process_at, f"{field}.process_at")
    if has("process_in"):
        task.process_in_ms = duration_ms(spec.process_in, f"{field}.process_in")
    if has("unique_ttl"):
        task.unique_ttl_ms = duration_ms(spec.unique_ttl, f"{field}.unique_ttl")
    if has("retention"):
        task.retention_ms = duration_ms(spec.retention, f"{field}.retention")
    return task


def new_tasks(specs: Sequence[task_pb2.TaskSpec]) -> list[NewTask | LeasqError]:
    """Read a batch's TaskSpecs; an item that cannot be read becomes its own refusal."""
    out: list[NewTask | LeasqError] = []
    for index, spec in enumerate(specs):
        try:
            out.append(new_task(spec, f"tasks[{index}]"))
        except LeasqError as error:
            out.append(error)
    return out


def enqueued(result: Enqueued) -> task_pb2.EnqueuedTask:
    state = (task_pb2.TASK_STATE_AGGREGATING if result.aggregating
             else task_pb2.TASK_STATE_SCHEDULED if result.scheduled
             else task_pb2.TASK_STATE_PENDING)
    return task_pb2.EnqueuedTask(
        id=result.id, queue=result.queue, state=state,
        next_process_at=ms_fields(result.next_process_at_ms),
    )


def enqueue_batch_response(
    results: Sequence[Enqueued | LeasqError],
) -> broker_pb.EnqueueBatchResponse:
    """The EnqueueBatch answer, assembled as wire bytes and parsed once.

    A batch's accepted tasks differ only in their id, so each result is the id's bytes plus a
    shared, pre-encoded rest; building hundreds of messages field by field cost more than all
    the Redis work of the batch.
    """
    parts: list[bytes] = []
    shared: dict[tuple[str, bool, int, bool], bytes] = {}
    accepted = 0
    for result in results:
        if isinstance(result, LeasqError):
            item = broker_pb.EnqueueBatchResult(error=item_error(result)).SerializeToString()
        else:
            accepted += 1
            key = (result.queue, result.scheduled, result.next_process_at_ms,
                   result.aggregating)
            rest = shared.get(key)
            if rest is None:
                rest = shared[key] = enqueued(Enqueued("", *key)).SerializeToString()
            task = length_delimited(b"\x0a", result.id.encode()) + rest
            item = length_delimited(b"\x0a", task)  # EnqueueBatchResult.task = 1
        parts.append(length_delimited(b"\x0a", item))  # EnqueueBatchResponse.results = 1
    parts.append(b"\x10" + varint(accepted))  # EnqueueBatchResponse.enqueued_count = 2
    return broker_pb.EnqueueBatchResponse.FromString(b"".join(parts))


def lease_ask(request: broker_pb.LeaseRequest, field: str = "") -> LeaseAsk:
    """Validate and read a LeaseRequest (``field`` prefixes names, e.g. "lease_next.")."""
    worker = v.printable(f"{field}worker_id", request.worker_id, required=True)
    if not request.queues:
        raise InvalidField(f"{field}queues", "list at least one queue to lease from")
    if len(request.queues) > v.MAX_LEASE_QUEUES:
        raise InvalidField(f"{field}queues", f"at most {v.MAX_LEASE_QUEUES} queues per call")
    queues: list[tuple[str, int]] = []
    patterns: list[tuple[int, str, int]] = []
    for i, entry in enumerate(request.queues):
        weight = v.in_range(f"{field}queues[{i}].weight", entry.weight, 0, v.MAX_WEIGHT)
        if entry.pattern or not entry.queue:
            patterns.append((i, _pattern(entry, f"{field}queues[{i}]"), weight))
        else:
            queues.append((v.queue_name(f"{field}queues[{i}].queue", entry.queue), weight))
    if len({name for name, _ in queues}) != len(queues):
        raise InvalidField(f"{field}queues", "each queue may be listed once")
    if len({pattern for _, pattern, _ in patterns}) != len(patterns):
        raise InvalidField(f"{field}queues", "each pattern may be listed once")
    max_tasks = v.in_range(f"{field}max_tasks", request.max_tasks or 1, 1, v.MAX_BATCH)
    lease_ms = v.DEFAULT_LEASE_MS
    if request.HasField("lease_duration"):
        lease_ms = duration_ms(request.lease_duration, f"{field}lease_duration")
        v.duration_ms(f"{field}lease_duration", lease_ms, v.MIN_LEASE_MS, v.MAX_LEASE_MS)
    wait_ms = duration_ms(request.wait, f"{field}wait") if request.HasField("wait") else 0
    v.duration_ms(f"{field}wait", wait_ms, 0, v.MAX_WAIT_MS)
    return LeaseAsk(worker, queues, request.strict, max_tasks, lease_ms, wait_ms,
                    tuple(patterns))


def _pattern(entry: broker_pb.QueueWeight, field: str) -> str:
    """The pattern of an entry that names no queue; both or neither is a mistake."""
    if entry.queue and entry.pattern:
        raise InvalidField(f"{field}.pattern", "set queue or pattern, not both")
    if not entry.pattern:
        raise InvalidField(f"{field}.pattern", "set queue (a name) or pattern (e.g. 'tenant.*')")
    return validate_pattern(f"{field}.pattern", entry.pattern)


def leased_task(grant: LeaseGrant) -> task_pb2.LeasedTask:
    """Build the LeasedTask from the stored envelope plus this lease's fields."""
    task = task_pb2.LeasedTask.FromString(grant.envelope)
    task.retried = grant.retried
    task.lease_token = grant.lease_token
    task.lease_lost_count = grant.lease_lost_count
    set_ms(task.lease_expires_at, grant.lease_expires_ms)
    ends: list[int] = []
    if task.HasField("timeout"):
        ends.append(grant.leased_at_ms + _stored_ms(task.timeout))
    if task.HasField("deadline"):
        ends.append(_stored_ms(task.deadline))
    if ends:
        set_ms(task.attempt_deadline, min(ends))
    return task


def lease_refs(refs: Sequence[broker_pb.LeaseRef], field: str) -> list[LeaseRef]:
    return [lease_ref(ref, f"{field}[{i}]") for i, ref in enumerate(refs)]


def lease_ref(ref: broker_pb.LeaseRef, field: str) -> LeaseRef:
    v.queue_name(f"{field}.queue", ref.queue)
    v.task_id(f"{field}.task_id", ref.task_id)
    v.printable(f"{field}.lease_token", ref.lease_token, required=True)
    return LeaseRef(ref.queue, ref.task_id, ref.lease_token)


def acks(request: broker_pb.AckRequest, max_result_bytes: int) -> list[Settlement]:
    v.batch_size("items", len(request.items))
    out = []
    for i, item in enumerate(request.items):
        ref = lease_ref(item.lease, f"items[{i}].lease")
        v.payload(f"items[{i}].result", item.result, max_result_bytes)
        out.append(Settlement(ref, None, item.result))
    return out


def nacks(request: broker_pb.NackRequest) -> list[Settlement]:
    v.batch_size("items", len(request.items))
    out = []
    for i, item in enumerate(request.items):
        ref = lease_ref(item.lease, f"items[{i}].lease")
        if item.action not in (0, 1, 2, 3, 4):
            raise InvalidField(f"items[{i}].action", f"unknown NackAction {item.action}")
        action = NackAction(item.action or broker_pb.NACK_ACTION_RETRY)
        retry_after = None
        if item.HasField("retry_after"):
            retry_after = duration_ms(item.retry_after, f"items[{i}].retry_after")
            v.duration_ms(f"items[{i}].retry_after", retry_after, 0, v.MAX_SCHEDULE_MS)
        out.append(Settlement(ref, action, b"", item.error[: v.MAX_ERROR_TEXT],
                              item.error_type[: v.MAX_SHORT_TEXT], retry_after))
    return out


def lease_next(request: broker_pb.AckRequest | broker_pb.NackRequest) -> LeaseAsk | None:
    if not request.HasField("lease_next"):
        return None
    nxt = request.lease_next
    if nxt.worker_id and nxt.worker_id != request.worker_id:
        raise InvalidField("lease_next.worker_id", "must be empty or equal to worker_id")
    if not nxt.worker_id:
        nxt.worker_id = request.worker_id
    ask = lease_ask(nxt, "lease_next.")
    return LeaseAsk(ask.worker_id, ask.queues, ask.strict, ask.max_tasks, ask.lease_ms, 0,
                    ask.patterns)


def task_block(block: Block) -> task_pb2.TaskBlock:
    """TaskInfo.blocked from the broker's diagnosis."""
    message = task_pb2.TaskBlock(reason=task_pb2.BlockReason.ValueType(block.reason),
                                 message=block.message,
                                 active=block.active, limit=block.limit)
    if block.until_ms is not None:
        set_ms(message.until, block.until_ms)
    if block.last_lease_ms is not None:
        set_ms(message.last_lease_at, block.last_lease_ms)
    return message


def task_info(task: StoredTask) -> task_pb2.TaskInfo:
    """Everything recorded about a task, from its envelope and its hash fields."""
    f = task.fields
    envelope = task.envelope
    if task.state == "aggregating":  # a waiting member's record holds its GroupMember
        envelope = member_envelope(task.queue, f.get("gi", ""), envelope)
    env = task_pb2.LeasedTask.FromString(envelope)
    info = task_pb2.TaskInfo(
        id=task.id, queue=task.queue, type=env.type, payload=env.payload, headers=env.headers,
        state=STATE_VALUES.get(task.state, task_pb2.TASK_STATE_UNSPECIFIED),
        max_retry=int(f.get("mr", env.max_retry)), retried=int(f.get("r", 0)),
        lease_lost_count=int(f.get("ll", 0)), last_error=f.get("e", ""),
        last_error_type=f.get("et", ""), result=task.result, group=f.get("g") or env.group,
        worker_id=f.get("w", ""), cancel_requested=f.get("cx") == "1",
        released_count=int(f.get("rc", 0)), concurrency_key=env.concurrency_key,
    )
    info.enqueued_at.CopyFrom(env.enqueued_at)
    if env.members:
        info.members.extend(env.members)
    if env.HasField("timeout"):
        info.timeout.CopyFrom(env.timeout)
    if env.HasField("deadline"):
        info.deadline.CopyFrom(env.deadline)
    for name, target in (("ef", info.last_failed_at), ("na", info.next_process_at),
                         ("ca", info.completed_at), ("lx", info.lease_expires_at),
                         ("aa", info.archived_at), ("xa", info.expires_at),
                         ("ut", info.unique_ttl), ("rt", info.retention)):
        if name in f:
            set_ms(target, int(f[name]))
    return info


def queue_stats(counts: QueueCounts, now_ms: int) -> inspect_pb.QueueStats:
    stats = inspect_pb.QueueStats(
        queue=counts.queue, paused=counts.paused, pending=counts.pending,
        scheduled=counts.scheduled, active=counts.active, retry=counts.retry,
        archived=counts.archived, completed=counts.completed,
        processed_today=counts.processed_today, failed_today=counts.failed_today,
        processed_total=counts.processed_total, failed_total=counts.failed_total,
        aggregating=counts.aggregating, memory_bytes=counts.memory_bytes,
    )
    if counts.oldest_pending_ms is not None:
        set_ms(stats.latency, max(0, now_ms - counts.oldest_pending_ms))
    return stats


def state_name(value: int) -> str:
    if value not in STATE_NAMES:
        raise InvalidField("state", "choose a TaskState other than TASK_STATE_UNSPECIFIED")
    return STATE_NAMES[value]
