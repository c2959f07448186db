"""Task options as Python values, and their conversion to a ``leasq.v1.TaskSpec``.

Options left at ``None`` are not sent, so the broker applies its documented defaults (queue
"default", max_retry 25, timeout 30 minutes, ...). The SDK checks nothing the broker checks:
the broker is the one place the rules live, and its refusals come back as
:class:`~leasq_sdk.errors.InvalidTask` naming the field.

Payload encoding (:func:`encode_payload`):

- ``bytes`` (or ``bytearray``/``memoryview``) is sent as given;
- ``str`` is sent as UTF-8;
- anything else is sent as compact JSON with the header ``content-type: application/json``
  (unless the caller set a content-type header): dicts, lists and scalars as they are,
  dataclass instances through :func:`dataclasses.asdict`, pydantic-style models through their
  ``model_dump_json()``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypedDict

from leasq.v1 import task_pb2
from leasq_sdk.convert import Seconds, to_duration, to_timestamp
from leasq_sdk.errors import InvalidTask
from leasq_sdk.tracing import inject as inject_trace_context

JSON_CONTENT_TYPE = "application/json"
# One encoder for every call: json.dumps with non-default options builds a new one each time.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_CONTENT_TYPE = "content-type"
#: Read only (copied into each task's header map).
_JSON_HEADERS: Mapping[str, str] = MappingProxyType({_CONTENT_TYPE: JSON_CONTENT_TYPE})
_PLAIN_JSON = frozenset({dict, list, int, float, bool, type(None)})


class TaskOptions(TypedDict, total=False):
    """Per-task options, as keyword arguments (see :meth:`Client.enqueue` for their meaning)."""

    max_retry: int
    timeout: Seconds
    deadline: datetime
    process_at: datetime
    process_in: Seconds
    unique: Seconds
    unique_key: str
    task_id: str
    retention: Seconds
    group: str
    concurrency_key: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """One task to enqueue with :meth:`Client.enqueue_many`; fields as in :meth:`Client.enqueue`."""

    type: str
    payload: Any = b""
    queue: str | None = None
    max_retry: int | None = None
    timeout: Seconds | None = None
    deadline: datetime | None = None
    process_at: datetime | None = None
    process_in: Seconds | None = None
    unique: Seconds | None = None
    unique_key: str | None = None
    task_id: str | None = None
    retention: Seconds | None = None
    group: str | None = None
    concurrency_key: str | None = None
    headers: Mapping[str, str] | None = None

    def to_spec(self) -> task_pb2.TaskSpec:
        """The wire form of this request."""
        return build_spec(
            self.type,
            self.payload,
            queue=self.queue,
            max_retry=self.max_retry,
            timeout=self.timeout,
            deadline=self.deadline,
            process_at=self.process_at,
            process_in=self.process_in,
            unique=self.unique,
            unique_key=self.unique_key,
            task_id=self.task_id,
            retention=self.retention,
            group=self.group,
            concurrency_key=self.concurrency_key,
            headers=self.headers,
        )


def build_spec(
    type: str,
    payload: Any,
    *,
    queue: str | None = None,
    max_retry: int | None = None,
    timeout: Seconds | None = None,
    deadline: datetime | None = None,
    process_at: datetime | None = None,
    process_in: Seconds | None = None,
    unique: Seconds | None = None,
    unique_key: str | None = None,
    task_id: str | None = None,
    retention: Seconds | None = None,
    group: str | None = None,
    headers: Mapping[str, str] | None = None,
    concurrency_key: str | None = None,
    into: task_pb2.TaskSpec | None = None,
) -> task_pb2.TaskSpec:
    """A TaskSpec holding exactly the options that were given (filled into ``into``, an empty
    spec, when given: e.g. the ``task`` of a request, which copying a spec into would cost
    as much again).

    Raises :class:`InvalidTask` only for what cannot be put on the wire at all (a negative
    max_retry, a payload that cannot be JSON-encoded); everything else is the broker's call.
    """
    data, headers = encode_payload(payload, headers)
    # Set only the options given: this is the per-task cost of every enqueue, and unset
    # options are the common case.
    spec = task_pb2.TaskSpec() if into is None else into
    spec.type = type
    if data:
        spec.payload = data
    if headers:
        spec.headers.update(headers)
    inject_trace_context(spec.headers)  # the caller's current span, when OpenTelemetry is used
    if queue is not None:
        spec.queue = queue
    if task_id is not None:
        spec.task_id = task_id
    if max_retry is not None:
        if max_retry < 0:
            raise InvalidTask(f"must be >= 0 (got {max_retry})", field="task.max_retry")
        spec.max_retry = max_retry
    if unique_key is not None:
        spec.unique_key = unique_key
    if group is not None:
        spec.group = group
    if concurrency_key is not None:
        spec.concurrency_key = concurrency_key
    if timeout is not None or deadline is not None or process_at is not None:
        _set_instants(spec, timeout, deadline, process_at)
    if process_in is not None:
        spec.process_in.CopyFrom(to_duration(process_in))
    if unique is not None:
        spec.unique_ttl.CopyFrom(to_duration(unique))
    if retention is not None:
        spec.retention.CopyFrom(to_duration(retention))
    return spec


def _set_instants(
    spec: task_pb2.TaskSpec,
    timeout: Seconds | None,
    deadline: datetime | None,
    process_at: datetime | None,
) -> None:
    """The time limits and the start time of a task, when given."""
    if timeout is not None:
        spec.timeout.CopyFrom(to_duration(timeout))
    if deadline is not None:
        spec.deadline.CopyFrom(to_timestamp(deadline))
    if process_at is not None:
        spec.process_at.CopyFrom(to_timestamp(process_at))


def encode_payload(
    payload: Any, headers: Mapping[str, str] | None
) -> tuple[bytes, Mapping[str, str] | None]:
    """Payload bytes, and the headers to send (with a JSON content-type added when encoded)."""
    if type(payload) is bytes:  # the common case first, without isinstance chains
        return payload, headers
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload), headers
    if isinstance(payload, str):
        return payload.encode(), headers
    return to_json(payload), _with_json_content_type(headers)


def to_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of a JSON-like value, a dataclass instance or a pydantic-style model."""
    if type(value) not in _PLAIN_JSON:  # models and dataclasses; plain values skip the probes
        dump = getattr(value, "model_dump_json", None)
        if callable(dump):
            text = dump()
            return text.encode() if isinstance(text, str) else bytes(text)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
    try:
        return _JSON.encode(value).encode()
    except (TypeError, ValueError) as err:
        raise InvalidTask(f"cannot be encoded as JSON: {err}", field="task.payload") from err


def _with_json_content_type(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    if not headers:
        return _JSON_HEADERS
    if any(key.lower() == _CONTENT_TYPE for key in headers):
        return headers
    return {**headers, _CONTENT_TYPE: JSON_CONTENT_TYPE}
