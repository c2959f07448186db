"""The declarative queue-settings file (``leasq serve --queue-settings-file settings.toml``).

::

    [[queue]]
    name = "email"
    max_active = 5
    rate_limit = { per_second = 100, burst = 20 }

    [[queue]]
    name = "digests"
    groups = { grace_period = "2s", max_delay = "1m", max_size = 500 }
    concurrency_keys = { per_key_limit = 2 }

Each ``[[queue]]`` table names a queue and holds fields of ``QueueSettings`` (the message of
``UpdateQueueSettings``) under the same names: tables for message fields, durations as
``"90s"``, ``"1h30m"``, ``"7d"`` or seconds as a number. The file is read into one
``UpdateQueueSettingsRequest`` per queue whose update mask names exactly the fields present,
and goes through the RPC's own converter and use case: a field the contract gains is
understood here without a change. A field absent from the file is left as it is; the value
``"default"`` (for any field) returns it to its default, e.g. ``rate_limit = "default"``
removes the rate limit. Errors name the file, the line, the queue and the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker.errors import InvalidField
from leasq_broker.schedules.ticks import SpecError, parse_duration_ms
from leasq_broker.toml_tables import header_lines, read_tables

DEFAULT = "default"
_INTEGER_TYPES = (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
                  FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64)
_FLOAT_TYPES = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


class QueueSettingsFileError(ValueError):
    """A queue-settings file that cannot be applied; the message names file, line, queue and
    field."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``[[queue]]`` table as the request UpdateQueueSettings would receive, and its line."""

    request: pb.UpdateQueueSettingsRequest
    index: int


class Locator:
    """Line numbers of ``[[queue]]`` tables and of fields inside them, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.headers = header_lines(self.lines, "queue")
        self.names: dict[int, str] = {}

    def line(self, index: int, field: str = "") -> int:
        start = self.headers[index] if index < len(self.headers) else 1
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        for part in reversed(field.split(".")) if field else ():
            key = re.compile(rf"(^|[{{,\s]){re.escape(part)}\s*=")
            for number in range(start, end):
                if key.search(self.lines[number - 1]):
                    return number
        return start

    def error(self, index: int, field: str, reason: str) -> QueueSettingsFileError:
        name = self.names.get(index)
        queue = f"queue {name!r}" if name else f"queue #{index + 1}"
        return QueueSettingsFileError(
            f"{self.path}:{self.line(index, field)}: {queue}"
            f"{' ' + field if field else ''}: {reason}"
        )


def load(path: Path) -> tuple[list[Entry], Locator]:
    """Read and shape-check the file; values are checked by the settings use case."""
    tables, text = read_tables(path, "queue", "queues", QueueSettingsFileError)
    where = Locator(path, text)
    entries: list[Entry] = []
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise where.error(index, "", "each queue must be a table")
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise where.error(index, "name", "give the queue's name as a string")
        if name in where.names.values():
            raise where.error(index, "name", f"the queue {name!r} is listed twice")
        where.names[index] = name
        request = pb.UpdateQueueSettingsRequest(queue=name)
        fields = {k: v for k, v in table.items() if k != "name"}
        paths = _fill(request.settings, fields, "", functools.partial(where.error, index))
        if not paths:
            raise where.error(index, "", "sets nothing: add fields of QueueSettings")
        request.update_mask.paths.extend(paths)
        entries.append(Entry(request, index))
    return entries, where


def refusal(where: Locator, index: int, error: InvalidField) -> QueueSettingsFileError:
    """A use-case refusal of the ``index``-th queue, pointed at its line in the file."""
    field = error.field.removeprefix("settings.")
    reason = error.message.removeprefix(f"{error.field}: ")
    return where.error(index, "name" if field == "queue" else field, reason)


Fail = Callable[[str, str], QueueSettingsFileError]


def _fill(message: Message, table: dict[str, Any], prefix: str, fail: Fail) -> list[str]:
    """Set ``message`` from ``table``; the update-mask paths of what it names."""
    descriptor = message.DESCRIPTOR
    paths: list[str] = []
    for key, value in table.items():
        path = prefix + key
        field = descriptor.fields_by_name.get(key)
        if field is None:
            known = ", ".join(f.name for f in descriptor.fields)
            raise fail(path, f"unknown field; known fields: {known}")
        if value == DEFAULT:  # named in the mask and left unset: back to the default
            paths.append(path)
        elif field.message_type is not None and field.message_type.full_name == (
                "google.protobuf.Duration"):
            getattr(message, key).FromMilliseconds(_duration(value, path, fail))
            paths.append(path)
        elif field.message_type is not None:
            if not isinstance(value, dict):
                raise fail(path, "must be a table, e.g. { field = value }")
            inner = _fill(getattr(message, key), value, path + ".", fail)
            # A message without nested paths of its own (rate_limit) is named as a whole.
            paths.extend(inner if _has_path(path + ".") else [path])
        else:
            _set_scalar(message, field, value, path, fail)
            paths.append(path)
    return paths


# The update paths UpdateQueueSettings names below a message (its leaves are named one by one);
# any other message (e.g. rate_limit) is named as a whole.
_NESTED_PATHS = ("groups.", "concurrency_keys.")


def _has_path(prefix: str) -> bool:
    return prefix in _NESTED_PATHS


def _set_scalar(message: Message, field: Any, value: Any, path: str,
                fail: Fail) -> None:
    if field.type in _INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(path, "must be a whole number >= 0")
    elif field.type in _FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(path, "must be a number")
        value = float(value)
    elif field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise fail(path, "must be true or false")
    elif field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise fail(path, "must be a string")
    else:
        raise fail(path, "this kind of field cannot be set from the file")
    try:
        setattr(message, field.name, value)
    except (ValueError, TypeError) as exc:
        raise fail(path, f"out of range: {exc}") from exc


def _duration(value: Any, path: str, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(path, "must be a duration like '90s' or '1h30m', or seconds as a number")
    if isinstance(value, str):
        try:
            return parse_duration_ms(value)
        except SpecError as exc:
            raise fail(path, str(exc)) from exc
    if value < 0:
        raise fail(path, "must not be negative")
    return int(value * 1000)
