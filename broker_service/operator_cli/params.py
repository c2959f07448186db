"""Click parameter types of the operator commands: spans (``10s``, ``1h30m``), ``k=v`` headers,
task states, and payloads (inline JSON or ``@file``), each refusing bad input as a usage error
that names the option."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from leasq_sdk.models import TaskState

_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_span(text: str) -> timedelta:
    """``"90"`` or ``"90s"``, ``"500ms"``, ``"1h30m"``, ``"2d"`` as a timedelta."""
    text = text.strip().lower()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    position, seconds = 0, 0.0
    for match in _SPAN_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise ValueError(f"{text!r} is not a span like 30s, 500ms, 1h30m or 2d")
    return timedelta(seconds=seconds)


class Span(click.ParamType):  # type: ignore[type-arg, unused-ignore]  # generic from click 8.2
    """A span of time: seconds, or with units (``ms``, ``s``, ``m``, ``h``, ``d``)."""

    name = "span"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_span(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Header(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A header as ``key=value``."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not key=value", param, ctx)
        return key, text


#: The states a task can be listed, searched or moved in.
STATES = tuple(s.value for s in TaskState if s is not TaskState.UNSPECIFIED)
STATE = click.Choice(STATES, case_sensitive=False)


def read_payload(value: str, *, raw: bool) -> Any:
    """The payload to enqueue: ``value`` itself, ``@path`` for a file's content, ``@-`` for
    standard input. JSON unless ``raw`` (then bytes as given): it is checked here so that a
    typo is refused before anything is sent."""
    if value.startswith("@"):
        source = value[1:]
        try:
            data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {source}: {exc.strerror or exc}",
                                     param_hint="--payload") from exc
    else:
        data = value.encode()
    if raw:
        return data
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(f"not JSON ({exc}); add --raw to send it as it is",
                                 param_hint="--payload") from exc
