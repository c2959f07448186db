"""Values as an operator reads them: durations, instants, sizes and payloads as short text, and
every SDK value as JSON with stable keys.

JSON rules (``--json``): dataclass fields keep their SDK names; instants are ISO 8601 UTC
strings; durations are seconds (float); enums are their lower-case value; bytes are base64,
and a task's ``payload`` and ``result`` also come parsed under ``payload_json`` /
``result_json`` (null when they are not JSON).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from leasq_sdk.models import TaskInfo

_BINARY_PREVIEW = 64


def duration(span: timedelta | float | None) -> str:
    """``"850ms"``, ``"12.5s"``, ``"4m05s"``, ``"2h03m"``, ``"3d04h"``; ``"-"`` for None."""
    if span is None:
        return "-"
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f}s".replace(".0s", "s")
    whole = int(seconds)
    for unit, size, small, small_size in (("d", 86_400, "h", 3_600), ("h", 3_600, "m", 60),
                                          ("m", 60, "s", 1)):
        if whole >= size:
            return f"{sign}{whole // size}{unit}{(whole % size) // small_size:02d}{small}"
    return f"{sign}{whole}s"  # pragma: no cover - the loop ends at minutes


def instant(value: datetime | None, now: datetime | None = None) -> str:
    """UTC time to the second, with how long ago or ahead it is when ``now`` is given."""
    if value is None:
        return "-"
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if now is None:
        return text
    delta = (value - now).total_seconds()
    relative = f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"
    return f"{text} ({relative})"


def size(count: int) -> str:
    """Bytes as ``"512 B"``, ``"1.5 KiB"``, ``"23.4 MiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def parse_json(data: bytes) -> tuple[bool, Any]:
    """(True, value) when ``data`` is JSON, else (False, None)."""
    if not data:
        return False, None
    try:
        return True, json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return False, None


def payload_text(data: bytes, *, limit: int | None = None) -> str:
    """A payload for reading: indented JSON when it is JSON, else escaped text for UTF-8 or
    hex for binary data; ``limit`` shortens it to one line of at most that many characters."""
    if not data:
        return "(empty)"
    is_json, value = parse_json(data)
    if is_json:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":") if limit else None,
                          indent=None if limit else 2)
    else:
        try:
            text = data.decode("utf-8").encode("unicode_escape").decode("ascii")
        except UnicodeDecodeError:
            shown = data[:_BINARY_PREVIEW].hex(" ")
            more = f" ... ({len(data)} bytes)" if len(data) > _BINARY_PREVIEW else ""
            text = f"hex: {shown}{more}"
    if limit is not None and len(text) > limit:
        return text[: limit - 3] + "..."
    return text


def jsonable(value: Any) -> Any:
    """``value`` (SDK dataclasses, lists, dicts, enums, instants, spans, bytes) as JSON data."""
    if isinstance(value, TaskInfo):
        return task_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def task_json(task: TaskInfo) -> dict[str, Any]:
    """A task as JSON: every field, plus its payload and result parsed when they are JSON."""
    fields = {f.name: jsonable(getattr(task, f.name)) for f in dataclasses.fields(task)}
    fields["payload_json"] = parse_json(task.payload)[1]
    fields["result_json"] = parse_json(task.result)[1]
    return fields


def dumps(value: Any) -> str:
    """Indented JSON of ``value`` with sorted keys: the ``--json`` output."""
    return json.dumps(jsonable(value), indent=2, sort_keys=True, ensure_ascii=False)
