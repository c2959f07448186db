"""Lone enqueues as messages on one long-lived ``EnqueueStream`` call (:class:`AsyncClient`).

The rules are those of :mod:`leasq_sdk.enqueue_stream`; here the callers are coroutines of
one event loop, and the stream's mechanics are those of :mod:`leasq_sdk.message_stream_aio`.
"""

from __future__ import annotations

from leasq.v1 import broker_service_pb2, task_pb2
from leasq_sdk.enqueue_stream import outcome, timed_out
from leasq_sdk.message_stream_aio import OpenStream, StreamCalls
from leasq_sdk.models import EnqueuedTask

__all__ = ["AsyncEnqueueStream", "OpenStream"]


class AsyncEnqueueStream(StreamCalls):
    """The async client's enqueue stream; see :mod:`leasq_sdk.enqueue_stream`."""

    async def send(self, task: task_pb2.TaskSpec, call_timeout: float | None,
                   idempotent: bool) -> EnqueuedTask | None:  # fmt: skip
        """Enqueue ``task`` on the stream: its result, its typed error raised, or ``None``
        when it is to go out as a unary Enqueue."""
        try:
            answer = await self.exchange(broker_service_pb2.EnqueueStreamRequest(task=task),
                                         call_timeout)  # fmt: skip
        except TimeoutError:
            raise timed_out() from None
        if answer is None:
            return None
        return outcome(answer, idempotent)
