"""One real broker on a private Redis for the fuzz tests, and what counts as a failure there.

A call fails the fuzz when it answers a status outside :data:`DELIBERATE` (INTERNAL and UNKNOWN
above all), when it hangs (DEADLINE_EXCEEDED on a call that did not ask to wait that long), when
the broker process exits, or when the broker logs a traceback or an error-level line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from broker_process import BrokerHandle, RedisProcess, broker_environment, overrides_to_flags
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import leasq.v1
from leasq.v1 import broker_service_pb2, inspect_service_pb2, schedule_service_pb2

# Importing the generated modules registers their services in the default pool.
CONTRACT_MODULES = (broker_service_pb2, inspect_service_pb2, schedule_service_pb2)

# Statuses a broker gives on purpose: refusals the contract names, and OK.
DELIBERATE = frozenset({
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.PERMISSION_DENIED,
})  # fmt: skip

CALL_TIMEOUT = 5.0
WAITING_CALL_TIMEOUT = 3.0  # for a call that asks to long-poll
MAX_WAIT_SECONDS = 60.0  # the contract's limit of LeaseRequest.wait
ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})


def contract_services() -> list[ServiceDescriptor]:
    """Every service of package leasq.v1, found in the generated modules' descriptors."""
    pool = descriptor_pool.Default()
    services: list[ServiceDescriptor] = []
    for module in CONTRACT_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            services.append(pool.FindServiceByName(service.full_name))
    assert leasq.v1 is not None
    return services


def contract_methods() -> list[MethodDescriptor]:
    return [method for service in contract_services() for method in service.methods]


def method_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass(frozen=True)
class Outcome:
    """How a call ended: its status, details, and the answer when OK."""

    code: grpc.StatusCode
    details: str
    response: Any = None


def wait_seconds(request: Message) -> float:
    """The long-poll this request asks for (its top-level ``wait`` Duration), else 0."""
    field = request.DESCRIPTOR.fields_by_name.get("wait")
    if field is None or not request.HasField("wait"):
        return 0.0
    wait: Any = request.wait  # type: ignore[attr-defined]
    return float(wait.seconds) + float(wait.nanos) / 1e9


def verdict(outcome: Outcome, request_wait: float, timeout: float) -> str | None:
    """Why this outcome is a failure, or None when it is a deliberate answer."""
    if outcome.code in DELIBERATE:
        return None
    if outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if timeout - 0.5 <= request_wait <= MAX_WAIT_SECONDS:
            return None  # a valid long poll longer than our deadline
        return f"hang: no answer within {timeout}s (asked to wait {request_wait}s)"
    return f"undeliberate status {outcome.code.name}: {outcome.details!r}"


class LogWatch:
    """Reads the broker's log from where it last stopped; returns traceback and error lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_errors(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        return [summary for summary in map(error_summary, lines) if summary]


def error_summary(line: str) -> str | None:
    """For a traceback or error-level line: its event and the exception's last line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line[:500] if "Traceback (most recent call last)" in line else None
    if not isinstance(record, dict):
        return None
    level = str(record.get("level", "")).lower()
    if level not in ERROR_LEVELS and "exception" not in record:
        return None
    exception = str(record.get("exception", "")).strip().splitlines()
    return f"{level} {record.get('event')!r}: {exception[-1][:400] if exception else ''}"


class FuzzBroker:
    """A broker on a Redis of its own, a channel to it, and typed or raw calls to any method."""

    def __init__(self, workdir: Path) -> None:
        self.redis = RedisProcess(workdir / "redis")
        (workdir / "redis").mkdir()
        url = self.redis.start()
        flags = overrides_to_flags({"redis_url": url, "log_format": "json", "grace": 1})
        self.handle = BrokerHandle(flags, workdir=workdir, redis_url=url, data_dir=None,
                                   env=broker_environment())  # fmt: skip
        self.handle.start()
        self.logs = LogWatch(self.handle.log_path)
        self.channel = grpc.insecure_channel(self.handle.address)

    def close(self) -> None:
        self.channel.close()
        self.handle.stop()
        self.redis.stop()

    def call(self, method: MethodDescriptor, request: Message, timeout: float) -> Outcome:
        """Call ``method`` with a typed request; the outcome, never an exception."""
        response_type = GetMessageClass(method.output_type)
        stub: Any = self.channel.unary_unary(
            method_path(method), request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )  # fmt: skip
        return self._outcome(stub, request, timeout)

    def call_raw(self, path: str, body: bytes, timeout: float = CALL_TIMEOUT) -> Outcome:
        """Send ``body`` as the request bytes of ``path`` (no serialization at all)."""
        return self._outcome(self.channel.unary_unary(path), body, timeout)

    @staticmethod
    def _outcome(stub: Any, request: Any, timeout: float) -> Outcome:
        try:
            response = stub(request, timeout=timeout)
        except grpc.RpcError as error:
            return Outcome(error.code(), str(error.details()))
        return Outcome(grpc.StatusCode.OK, "", response)

    def problems(self) -> Iterator[str]:
        """Broker exit and new error lines in its log since the last look."""
        if not self.handle.running:
            yield f"broker exited: {self.handle.log_text()[-2000:]}"
        yield from (f"broker log: {summary}" for summary in self.logs.new_errors())
