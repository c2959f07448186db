"""Ack and Nack calls as messages on one long-lived ``SettleStream`` call.

A busy worker settles a batch of outcomes, leasing its next tasks in the same round trip,
every few milliseconds; a message on an open stream costs the broker and the worker about half
of a whole unary call. :class:`SettleCalls` gives the settler ``ack`` and ``nack`` with the
shape of the stub's unary methods, and what they give back or raise is what the unary call
would have: the response, or an ``AioRpcError`` with the call's code and details. So the
settler's rules (retry a transient failure without ``lease_next``, drop a lease that is gone)
hold unchanged. A call goes out unary instead when:

- streams are off: the broker refused the stream (an older broker without it, or a token
  limited to queue patterns, which may not open it), or ``settle_stream=False``;
- its message never reached the broker (the stream ended before it went out, or was refused
  before reading anything).

A stream that ended after the message went out, without its answer, fails the call with the
stream's status (UNAVAILABLE when it ended cleanly): the settler retries it, as it would a
unary call that failed in flight.
"""

from __future__ import annotations

from typing import Any

import grpc

from leasq.v1 import broker_service_pb2 as pb
from leasq_sdk.enqueue_stream import NOT_READ, Ended
from leasq_sdk.errors import status_code
from leasq_sdk.message_stream_aio import StreamCalls
from leasq_worker.rpc import Metadata


class SettleCalls:
    """The settler's Ack and Nack calls, on the stream while it can carry them."""

    def __init__(self, stub: Any, metadata: Metadata, *, stream: bool = True) -> None:
        self._stub = stub
        self._metadata = metadata
        self._stream = StreamCalls(self._open) if stream else None

    def _open(self, requests: Any) -> Any:
        return self._stub.SettleStream(requests, metadata=self._metadata)

    async def ack(self, request: pb.AckRequest, *, timeout: float,  # noqa: ASYNC109 (stub's)
                  metadata: Metadata) -> pb.AckResponse:  # fmt: skip
        """As ``stub.Ack``."""
        answer = await self._exchange(pb.SettleStreamRequest(ack=request), timeout)
        if answer is not None:
            return answer.ack
        unary: pb.AckResponse = await self._stub.Ack(request, timeout=timeout, metadata=metadata)
        return unary

    async def nack(self, request: pb.NackRequest, *, timeout: float,  # noqa: ASYNC109
                   metadata: Metadata) -> pb.NackResponse:  # fmt: skip
        """As ``stub.Nack``."""
        answer = await self._exchange(pb.SettleStreamRequest(nack=request), timeout)
        if answer is not None:
            return answer.nack
        unary: pb.NackResponse = await self._stub.Nack(request, timeout=timeout, metadata=metadata)
        return unary

    async def close(self) -> None:
        """End the stream (calls waiting on it fail as at a broken stream)."""
        if self._stream is not None:
            await self._stream.close()

    async def _exchange(self, request: pb.SettleStreamRequest,
                        wait_s: float) -> pb.SettleStreamResponse | None:  # fmt: skip
        """The stream's answer; None when the call is to go out unary. Raises the call's
        error as the unary call would."""
        if self._stream is None:
            return None
        try:
            answer = await self._stream.exchange(request, wait_s)
        except TimeoutError:
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED,
                         "no answer on the settle stream within the call's deadline") from None
        if answer is None:
            return None
        if isinstance(answer, Ended):
            if not answer.sent or answer.code in NOT_READ:
                return None
            if isinstance(answer.error, grpc.aio.AioRpcError):
                raise answer.error
            raise _error(grpc.StatusCode.UNAVAILABLE,
                         "the settle stream ended before this call was answered")
        if answer.HasField("error"):
            raise _error(status_code(answer.error.code), answer.error.message)
        reply: pb.SettleStreamResponse = answer
        return reply


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """An error as a failed unary call raises it."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
