"""A task as the queue and task pages show it: plain values (instants in Unix ms) decoded once
from the stored record, and its payload as highlighted JSON, text or a hex dump.

Decoding goes through the gRPC edge's :func:`~leasq_broker.edge.converters.task_info`, the one
place that knows both the stored envelope and the record's hash fields, so the pages show
exactly what GetTask answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from markupsafe import Markup, escape

from leasq_broker.edge.converters import task_info
from leasq_broker.models import StoredTask

#: Most payload bytes a page shows (as JSON, text or hex); the rest is cut with a note.
SHOWN_BYTES = 64 * 1024
PREVIEW_CHARS = 80
_JSON_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*")(?=\s*:)|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<lit>\btrue\b|\bfalse\b|\bnull\b)")
_CSS = {"key": "k", "str": "s", "num": "n", "lit": "b"}


@dataclass(frozen=True, slots=True)
class TaskFields:
    """Everything recorded about a task; instants in ms (0: none), durations in ms (None:
    none)."""

    id: str
    queue: str
    type: str
    state: str
    payload: bytes
    headers: dict[str, str]
    result: bytes
    max_retry: int
    retried: int
    lease_lost_count: int
    released_count: int
    last_error: str
    last_error_type: str
    last_failed_at: int
    enqueued_at: int
    next_process_at: int
    completed_at: int
    archived_at: int
    expires_at: int
    lease_expires_at: int
    leased_at: int
    deadline: int
    timeout_ms: int | None
    unique_ttl_ms: int | None
    retention_ms: int | None
    unique_key: str
    concurrency_key: str
    group: str
    worker_id: str
    cancel_requested: bool
    members: int = 0

    @property
    def preview(self) -> str:
        """The payload's start on one line: its text, or hex when it is binary."""
        head = self.payload[:PREVIEW_CHARS * 4]
        try:
            text = head.decode()
        except UnicodeDecodeError:
            return "0x" + self.payload[:PREVIEW_CHARS // 2].hex()
        text = " ".join(text.split())
        return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def _ms(message: Timestamp) -> int:
    return message.seconds * 1000 + message.nanos // 1_000_000


def _span(message: Duration, present: bool) -> int | None:
    return message.seconds * 1000 + message.nanos // 1_000_000 if present else None


def task_fields(task: StoredTask) -> TaskFields:
    """The task's fields as the pages show them."""
    info = task_info(task)
    f = task.fields
    return TaskFields(
        id=info.id, queue=info.queue, type=info.type, state=task.state, payload=info.payload,
        headers=dict(info.headers), result=info.result, max_retry=info.max_retry,
        retried=info.retried, lease_lost_count=info.lease_lost_count,
        released_count=info.released_count, last_error=info.last_error,
        last_error_type=info.last_error_type, last_failed_at=_ms(info.last_failed_at),
        enqueued_at=_ms(info.enqueued_at), next_process_at=_ms(info.next_process_at),
        completed_at=_ms(info.completed_at), archived_at=_ms(info.archived_at),
        expires_at=_ms(info.expires_at), lease_expires_at=_ms(info.lease_expires_at),
        leased_at=int(f.get("la", 0)), deadline=_ms(info.deadline),
        timeout_ms=_span(info.timeout, info.HasField("timeout")),
        unique_ttl_ms=_span(info.unique_ttl, info.HasField("unique_ttl")),
        retention_ms=_span(info.retention, info.HasField("retention")),
        unique_key=f.get("uk", ""), concurrency_key=info.concurrency_key, group=info.group,
        worker_id=info.worker_id, cancel_requested=info.cancel_requested,
        members=len(info.members),
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """Bytes as a page shows them: ``kind`` is json, text, hex or empty; ``cut`` is how many
    bytes were left out."""

    kind: str
    body: Markup
    size: int
    cut: int


def shown(data: bytes) -> Shown:
    """``data`` as highlighted JSON, as text, or as a hex dump, at most SHOWN_BYTES of it."""
    if not data:
        return Shown("empty", Markup(""), 0, 0)
    cut = max(0, len(data) - SHOWN_BYTES)
    if not cut:
        try:
            pretty = json.dumps(json.loads(data.decode()), indent=2, ensure_ascii=False)
            return Shown("json", highlight_json(pretty), len(data), 0)
        except (UnicodeDecodeError, ValueError):
            pass
    head = data[:SHOWN_BYTES]
    try:
        return Shown("text", escape(head.decode()), len(data), cut)
    except UnicodeDecodeError:
        return Shown("hex", escape(hex_dump(head)), len(data), cut)


def highlight_json(pretty: str) -> Markup:
    """Indented JSON text with keys, strings, numbers and literals in spans of classes k, s,
    n and b (app.css colours them); everything escaped."""
    out: list[str] = []
    last = 0
    for match in _JSON_TOKEN.finditer(pretty):
        out.append(str(escape(pretty[last:match.start()])))
        kind = match.lastgroup or "str"
        out.append(f'<span class="{_CSS[kind]}">{escape(match.group())}</span>')
        last = match.end()
    out.append(str(escape(pretty[last:])))
    return Markup("".join(out))


def hex_dump(data: bytes) -> str:
    """16 bytes a line: offset, hex bytes, printable ASCII (``.`` for the rest)."""
    lines = []
    for start in range(0, len(data), 16):
        chunk = data[start:start + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)
