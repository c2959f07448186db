"""Per-call RPC metrics: a counter by status code and a latency histogram per method.

:func:`recorder` is called once per method when the handlers are registered and returns the
function each call of that method runs when it ends; the histogram child is resolved then, and
the counter children are kept per status code, so a call costs two clock reads, one histogram
observation and one counter add.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from leasq_broker.observability.metrics import RPC_DURATION, RPC_REQUESTS, RPC_STREAM_MESSAGES

Recorder = Callable[["grpc.aio.ServicerContext[Any, Any]", float, "BaseException | None"], None]


def split_method(full_name: str) -> tuple[str, str]:
    """``/leasq.v1.BrokerService/Enqueue`` or ``leasq.v1.BrokerService.Enqueue`` ->
    ``("BrokerService", "Enqueue")``."""
    name = full_name.strip("/").replace("/", ".")
    service, _, method = name.rpartition(".")
    return service.rpartition(".")[2], method


def code_name(
    context: grpc.aio.ServicerContext[Any, Any], failed: BaseException | None
) -> str:
    """The status a call ended with: the one set by abort, else OK, CANCELLED or UNKNOWN."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions keep the raw number
        return _code_from_number(code)
    if failed is None:
        return "OK"
    return "CANCELLED" if isinstance(failed, asyncio.CancelledError) else "UNKNOWN"


def recorder(full_name: str) -> Recorder:
    """The end-of-call hook of one method: ``record(context, started, failed)``, where
    ``started`` is a :func:`time.perf_counter` reading and ``failed`` the exception the handler
    ended with (an abort included), if any."""
    service, method = split_method(full_name)
    durations: list[Any] = []  # the histogram child, made at the first call (no empty series)
    counters: dict[str, Any] = {}

    def record(context: grpc.aio.ServicerContext[Any, Any], started: float,
               failed: BaseException | None) -> None:  # fmt: skip
        elapsed = time.perf_counter() - started
        if not durations:
            durations.append(RPC_DURATION.labels(service, method))
        durations[0].observe(elapsed)
        code = "OK" if failed is None and context.code() is None else code_name(context, failed)
        counter = counters.get(code)
        if counter is None:
            counter = counters[code] = RPC_REQUESTS.labels(service, method, code)
        counter.inc()

    return record


def message_recorder(full_name: str) -> Callable[[int], str]:
    """The per-message hook of a streaming method: ``record(code)`` counts one answered
    message with its google.rpc code number (0: OK) and returns the code's name."""
    service, method = split_method(full_name)
    counters: dict[int, Any] = {}

    def record(code: int) -> str:
        name = _code_from_number(code)
        counter = counters.get(code)
        if counter is None:
            counter = counters[code] = RPC_STREAM_MESSAGES.labels(service, method, name)
        counter.inc()
        return name

    return record


def count_refusal(full_name: str, code: grpc.StatusCode | int) -> None:
    """Count a call refused before its handler ran (authentication, roles), with its code."""
    service, method = split_method(full_name)
    name = code.name if isinstance(code, grpc.StatusCode) else _code_from_number(code)
    RPC_REQUESTS.labels(service, method, name).inc()


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _code_from_number(number: int) -> str:
    return _CODE_NAMES.get(number, "UNKNOWN")
