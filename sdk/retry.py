"""Retrying idempotent calls until their deadline, with exponential backoff and jitter.

gRPC's own retry policy stops at 5 attempts (its cap), about 1.5 s with its backoff: a Redis
failover or a broker restart outlasts that while the caller gave the call 10 s. The client
interceptors here retry a call of a named method for as long as its deadline allows instead:
each attempt gets what is left of the deadline, and a pause from :func:`compute_backoff` comes
between attempts. The last failure is raised when the next pause would pass the deadline, so
the caller learns why (e.g. storage unavailable), not just that time ran out. A call without a
deadline is retried until it succeeds or fails for another reason.

Retried: UNAVAILABLE (the broker or its Redis is away) and CANCELLED (a broker going away drops
calls that it had received but not started; the SDK itself never cancels a call, so a CANCELLED
answer comes from the broker's side). Only idempotent calls are given to these interceptors
(see :mod:`leasq_sdk.channel`): the same call twice must do no harm.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import grpc
import grpc.aio

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0


def compute_backoff(
    attempt: int,
    *,
    first: float = FIRST_BACKOFF,
    cap: float = MAX_BACKOFF,
    rng: Callable[[float, float], float] = random.uniform,
) -> float:
    """The pause after failed attempt number ``attempt`` (0-based): the ceiling doubles from
    ``first`` up to ``cap``, and the pause is drawn from [ceiling / 2, ceiling] so that
    clients that failed together do not retry together."""
    ceiling = min(cap, first * 2 ** min(attempt, 32))
    return rng(ceiling / 2, ceiling)


def _method_name(method: str | bytes) -> str:
    """``/leasq.v1.BrokerService/Enqueue`` (str or bytes) -> ``leasq.v1.BrokerService/Enqueue``."""
    text = method.decode() if isinstance(method, bytes) else method
    return text.lstrip("/")


class _Budget:
    """What is left of a call's deadline, and whether one more pause fits in it."""

    def __init__(self, timeout: float | None) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self.attempt = 0

    def remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def next_pause(self) -> float | None:
        """The pause before the next attempt, or None when it would end past the deadline."""
        pause = compute_backoff(self.attempt)
        self.attempt += 1
        left = self.remaining()
        return None if left is not None and pause >= left else pause


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class RetryInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Sync channels: retries the calls of ``methods`` (``service/method`` names)."""

    def __init__(self, methods: Collection[str]) -> None:
        self._methods = frozenset(methods)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any
                              ) -> Any:  # fmt: skip
        if _method_name(client_call_details.method) not in self._methods:
            return continuation(client_call_details, request)
        budget = _Budget(client_call_details.timeout)
        while True:
            details = _CallDetails(
                client_call_details.method, budget.remaining(), client_call_details.metadata,
                client_call_details.credentials, client_call_details.wait_for_ready,
                getattr(client_call_details, "compression", None),
            )  # fmt: skip
            outcome = continuation(details, request)
            if outcome.code() not in RETRYABLE:
                return outcome
            pause = budget.next_pause()
            if pause is None:
                return outcome
            time.sleep(pause)


class AioRetryInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """``grpc.aio`` channels: retries the calls of ``methods`` (``service/method`` names)."""

    def __init__(self, methods: Collection[str]) -> None:
        self._methods = frozenset(methods)

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any,
                                    request: Any) -> Any:  # fmt: skip
        if _method_name(client_call_details.method) not in self._methods:
            return await continuation(client_call_details, request)
        budget = _Budget(client_call_details.timeout)
        while True:
            details = grpc.aio.ClientCallDetails(
                client_call_details.method, budget.remaining(), client_call_details.metadata,
                client_call_details.credentials, client_call_details.wait_for_ready,
            )  # fmt: skip
            call = await continuation(details, request)
            if await call.code() not in RETRYABLE:
                return call
            pause = budget.next_pause()
            if pause is None:
                return call
            await asyncio.sleep(pause)
