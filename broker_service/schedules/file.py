"""The declarative schedules file (``leasq serve --schedules schedules.toml``).

::

    [[schedule]]
    name = "monthly-report"
    spec = "0 9 1 * *"
    time_zone = "Europe/Berlin"
    type = "report:monthly"
    queue = "reports"
    payload = { month = "previous" }   # a table or array is sent as JSON, a string as UTF-8
    timeout = "10m"                    # durations: "90s", "1h30m", "7d", or seconds as a number

Each ``[[schedule]]`` table holds a schedule's fields and its task template's fields side by
side (see :data:`FIELDS`). Errors name the file, the line and the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from leasq_broker.errors import InvalidField
from leasq_broker.schedules.models import CatchUp, Overlap, ScheduleDef, Template
from leasq_broker.schedules.ticks import SpecError, parse_duration_ms
from leasq_broker.toml_tables import header_lines, read_tables

DURATIONS = ("timeout", "deadline_after", "retention", "unique_ttl", "jitter", "catch_up_window")
TEXTS = ("name", "spec", "time_zone", "type", "queue", "unique_key", "catch_up", "overlap")
FIELDS = (*TEXTS, *DURATIONS, "payload", "headers", "max_retry", "paused")
E = TypeVar("E", CatchUp, Overlap)


class ScheduleFileError(ValueError):
    """A schedules file that cannot be applied; the message names file, line and reason."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``[[schedule]]`` table, read into a definition, with where it starts."""

    definition: ScheduleDef
    line: int


class _Locator:
    """Line numbers of ``[[schedule]]`` tables and of fields inside them."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.headers = header_lines(self.lines, "schedule")

    def line(self, index: int, field: str = "") -> int:
        start = self.headers[index] if index < len(self.headers) else 1
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        if field:
            key = re.compile(rf"^\s*{re.escape(field)}\s*=")
            for number in range(start, end):
                if key.match(self.lines[number - 1]):
                    return number
        return start

    def error(self, index: int, field: str, reason: str) -> ScheduleFileError:
        return ScheduleFileError(
            f"{self.path}:{self.line(index, field)}: schedule #{index + 1}"
            f"{' ' + field if field else ''}: {reason}"
        )


def load(path: Path) -> list[Entry]:
    """Read and shape-check the file; values are checked by the schedules use case."""
    tables, text = read_tables(path, "schedule", "schedules", ScheduleFileError)
    where = _Locator(path, text)
    entries: list[Entry] = []
    names: set[str] = set()
    for index, table in enumerate(tables):
        definition = _definition(table, functools.partial(where.error, index))
        if definition.name in names:
            raise where.error(index, "name", f"the name {definition.name!r} is used twice")
        names.add(definition.name)
        entries.append(Entry(definition, where.line(index)))
    return entries


def refusal(path: Path, index: int, error: InvalidField) -> ScheduleFileError:
    """A use-case refusal of the ``index``-th schedule, pointed at its line in the file."""
    where = _Locator(path, path.read_text(encoding="utf-8"))
    field = error.field.split(".")[-1]
    return where.error(index, field, error.message.split(": ", 1)[-1])


Fail = Callable[[str, str], ScheduleFileError]


def _definition(table: Any, fail: Fail) -> ScheduleDef:
    if not isinstance(table, dict):
        raise fail("", "each schedule must be a table")
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise fail(unknown[0], f"unknown field; known fields: {', '.join(FIELDS)}")
    for field in TEXTS:
        if field in table and not isinstance(table[field], str):
            raise fail(field, "must be a string")
    ms = {field: _duration(table, field, fail) for field in DURATIONS}
    payload, headers = _payload(table, fail)
    template = Template(
        type=table.get("type", ""), payload=payload, headers=headers,
        queue=table.get("queue", ""), max_retry=_max_retry(table, fail),
        timeout_ms=ms["timeout"], deadline_after_ms=ms["deadline_after"],
        retention_ms=ms["retention"], unique_ttl_ms=ms["unique_ttl"],
        unique_key=table.get("unique_key", ""),
    )
    return ScheduleDef(
        name=table.get("name", ""), spec=table.get("spec", ""), template=template,
        time_zone=table.get("time_zone", ""), jitter_ms=ms["jitter"] or 0,
        catch_up=_choice(table, "catch_up", CatchUp, CatchUp.SKIP, fail),
        catch_up_window_ms=ms["catch_up_window"] or 3600 * 1000,
        overlap=_choice(table, "overlap", Overlap, Overlap.ALLOW, fail),
        paused=_flag(table, fail),
    )


def _duration(table: dict[str, Any], field: str, fail: Fail) -> int | None:
    value = table.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(field, "must be a duration like '90s' or '1h30m', or seconds as a number")
    if isinstance(value, str):
        try:
            return parse_duration_ms(value)
        except SpecError as exc:
            raise fail(field, str(exc)) from exc
    if value < 0:
        raise fail(field, "must not be negative")
    return int(value * 1000)


def _payload(table: dict[str, Any], fail: Fail) -> tuple[bytes, dict[str, str]]:
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise fail("headers", "must be a table of strings")
    value = table.get("payload")
    if value is None:
        return b"", dict(headers)
    if isinstance(value, str):
        return value.encode(), dict(headers)
    if not any(k.lower() == "content-type" for k in headers):
        headers = {**headers, "content-type": "application/json"}
    return json.dumps(value, separators=(",", ":"), default=str).encode(), dict(headers)


def _max_retry(table: dict[str, Any], fail: Fail) -> int | None:
    value = table.get("max_retry")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise fail("max_retry", "must be a whole number >= 0")
    return value


def _choice(
    table: dict[str, Any], field: str, kind: type[E], default: E, fail: Fail
) -> E:
    value = table.get(field)
    if value is None:
        return default
    names = {member.name.lower(): member for member in kind}
    if value.lower() not in names:
        raise fail(field, f"must be one of {', '.join(names)}")
    return names[value.lower()]


def _flag(table: dict[str, Any], fail: Fail) -> bool:
    value = table.get("paused", False)
    if not isinstance(value, bool):
        raise fail("paused", "must be true or false")
    return value
