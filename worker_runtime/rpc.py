"""gRPC plumbing shared by the lease, heartbeat and settle loops: stub, durations, errors.

The channel itself (TLS, token, keepalive) comes from the SDK's ``leasq_sdk.channel``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import grpc
from google.protobuf import duration_pb2

from leasq.v1 import broker_service_pb2_grpc

# Codes worth retrying: the broker or its Redis is briefly away, or the call was cut. CANCELLED
# reaches a worker only from the broker's side (a broker going away drops calls it had not
# started): the runtime's own cancellations surface as asyncio.CancelledError.
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.ABORTED,
    }
)
# Codes that say "this lease is not yours any more": drop the task, report nothing.
GONE = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})
GONE_REASONS = frozenset({"LEASE_LOST", "TASK_NOT_FOUND"})

Metadata = Sequence[tuple[str, str]]


def broker_stub(channel: grpc.aio.Channel) -> broker_service_pb2_grpc.BrokerServiceStub:
    """The BrokerService stub over ``channel``."""
    return broker_service_pb2_grpc.BrokerServiceStub(channel)


def duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration of ``seconds``."""
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def status_code(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, or None for any other exception."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code()
    return None


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same call later may succeed."""
    return status_code(exc) in TRANSIENT


class Backoff:
    """Exponential backoff with full jitter for reconnect loops: 50 ms doubling to ``cap``."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def delay(self) -> float:
        """The next pause; each call doubles the ceiling up to the cap."""
        ceiling = self._next
        self._next = min(self._cap, self._next * 2)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Back to the first, short pause (after a call succeeded)."""
        self._next = self._first
