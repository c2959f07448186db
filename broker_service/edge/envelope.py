"""The stored forms of an enqueued task: its envelope, and a grouped task's two parts.

The envelope is the immutable part of a task (a serialized ``LeasedTask``), written once at
enqueue and handed to every lease as-is. EnqueueBatch encodes one per task, so its cost is per
task: the common task (no headers, no deadline) is assembled from wire pieces, the parts that
a queue's tasks share (queue, type, max_retry, timeout, concurrency key) encoded once by
protobuf and cached, the parts that differ (id, payload, enqueue instant) appended as bytes, in
field-number order, so the result is byte for byte what ``SerializeToString`` gives. Other
tasks go through protobuf.
"""

from __future__ import annotations

import functools
from typing import Any

from leasq.v1 import task_pb2
from leasq_broker.groups.models import parse_group_id
from leasq_broker.models import NewTask

# LeasedTask field tags (field number << 3 | wire type 2, length-delimited).
_ID = b"\x0a"  # 1
_PAYLOAD = b"\x22"  # 4
_ENQUEUED_AT = b"\x6a"  # 13


_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))


def varint(value: int) -> bytes:
    """A non-negative integer in protobuf's base-128 varint encoding."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field (string, bytes, sub-message) with its tag."""
    return tag + varint(len(body)) + body


def ms_fields(ms: int) -> Any:
    """Keyword form of a Timestamp/Duration: cheaper than filling a sub-message field by field."""
    seconds, rest = divmod(ms, 1000)
    return {"seconds": seconds, "nanos": rest * 1_000_000}


@functools.lru_cache(maxsize=64)
def _enqueued_at(ms: int) -> bytes:
    """Field 13, a Timestamp (seconds = 1, nanos = 2; zero fields omitted) of a non-negative
    instant: the same for every task of a batch, hence cached."""
    seconds, rest = divmod(ms, 1000)
    body = b"\x08" + varint(seconds) if seconds else b""
    if rest:
        body += b"\x10" + varint(rest * 1_000_000)
    return length_delimited(_ENQUEUED_AT, body)


def encode_envelope(task: NewTask, task_id: str, enqueued_at_ms: int) -> bytes:
    """The immutable part of a task, stored once and returned as-is by every lease."""
    if task.headers or task.deadline_ms is not None or enqueued_at_ms < 0:
        return _encode_envelope(task, task_id, enqueued_at_ms)
    head, middle, tail = _shared_parts(task.queue, task.type, task.max_retry or 0,
                                       task.timeout_ms, task.concurrency_key)
    payload = length_delimited(_PAYLOAD, task.payload) if task.payload else b""
    return b"".join((length_delimited(_ID, task_id.encode()), head, payload, middle,
                     _enqueued_at(enqueued_at_ms), tail))


@functools.lru_cache(maxsize=4096)
def _shared_parts(queue: str, task_type: str, max_retry: int, timeout_ms: int | None,
                  concurrency_key: str) -> tuple[bytes, bytes, bytes]:
    """The envelope fields a queue's tasks of one type and options share, encoded by protobuf:
    fields 2-3 (queue, type), 7-12 (max_retry, timeout) and 17 (concurrency key)."""
    middle: dict[str, Any] = {"max_retry": max_retry}
    if timeout_ms is not None:
        middle["timeout"] = ms_fields(timeout_ms)
    return (task_pb2.LeasedTask(queue=queue, type=task_type).SerializeToString(),
            task_pb2.LeasedTask(**middle).SerializeToString(),
            task_pb2.LeasedTask(concurrency_key=concurrency_key).SerializeToString())


def _encode_envelope(task: NewTask, task_id: str, enqueued_at_ms: int) -> bytes:
    """:func:`encode_envelope` through protobuf, for any task."""
    fields: dict[str, Any] = {
        "id": task_id, "queue": task.queue, "type": task.type, "payload": task.payload,
        "max_retry": task.max_retry or 0, "enqueued_at": ms_fields(enqueued_at_ms),
    }
    if task.headers:
        fields["headers"] = task.headers
    if task.deadline_ms is not None:
        fields["deadline"] = ms_fields(task.deadline_ms)
    if task.timeout_ms is not None:
        fields["timeout"] = ms_fields(task.timeout_ms)
    if task.concurrency_key:
        fields["concurrency_key"] = task.concurrency_key
    return task_pb2.LeasedTask(**fields).SerializeToString()


def encode_group_parts(task: NewTask, task_id: str, enqueued_at_ms: int) -> tuple[bytes, bytes]:
    """A grouped task as a GroupMember, and the envelope its group's flushed task starts from
    (the flush appends group, id, enqueued_at and the members). A waiting member is stored as
    its GroupMember only: it has no envelope of its own."""
    member = task_pb2.GroupMember(id=task_id, payload=task.payload, headers=task.headers,
                                  enqueued_at=ms_fields(enqueued_at_ms))
    base = _flush_base(task.queue, task.type, task.max_retry or 0, task.deadline_ms,
                       task.timeout_ms)
    return member.SerializeToString(), base


@functools.lru_cache(maxsize=4096)
def _flush_base(queue: str, task_type: str, max_retry: int, deadline_ms: int | None,
                timeout_ms: int | None) -> bytes:
    """The flushed task's envelope before group, id, enqueued_at and members: the same for
    every group of a type with the same options, so a batch sends it once, not per task."""
    fields: dict[str, Any] = {"queue": queue, "type": task_type, "max_retry": max_retry}
    if deadline_ms is not None:
        fields["deadline"] = ms_fields(deadline_ms)
    if timeout_ms is not None:
        fields["timeout"] = ms_fields(timeout_ms)
    return task_pb2.LeasedTask(**fields).SerializeToString()


def member_envelope(queue: str, group_id: str, member: bytes) -> bytes:
    """The envelope a waiting member would have, built from its GroupMember and group id, so
    that the Inspect calls show members like any task (a member keeps no envelope: its
    group's flush builds the task that runs)."""
    task_type, group = parse_group_id(group_id)
    gm = task_pb2.GroupMember.FromString(member)
    env = task_pb2.LeasedTask(id=gm.id, queue=queue, type=task_type, payload=gm.payload,
                              headers=gm.headers, group=group)
    env.enqueued_at.CopyFrom(gm.enqueued_at)
    return env.SerializeToString()
