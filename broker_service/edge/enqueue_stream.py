"""One EnqueueStream call: tasks arrive one message at a time and are answered one by one.

A producer enqueuing from request handlers, one task awaited at a time, pays for every unary
Enqueue a whole gRPC call on both sides; a message on an open stream costs about half. Each
message is enqueued in a task of its own, as the unary Enqueue would be, so the messages of a
pipelining client run side by side (and the producer's batcher merges them into shared Redis
round trips); each answer is written as soon as its task is done, tagged with the request's
id. At most :data:`MAX_IN_FLIGHT` messages of a stream are worked on at once: past that the
stream stops reading, and HTTP/2 flow control holds the client back.

The stream ends when the client stops sending (answers to everything read go out first). A
message that is not valid protobuf and a broker shutdown end the input likewise; the handler
registered by :mod:`leasq_broker.edge.decoding` then ends the call with INVALID_ARGUMENT or
UNAVAILABLE. If the client goes away, the messages already read are still enqueued; their
answers have nowhere to go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq_broker.edge import converters as conv
from leasq_broker.edge.status import domain_error, item_error
from leasq_broker.errors import InvalidField, LeasqError
from leasq_broker.models import Enqueued, NewTask
from leasq_broker.observability import rpc

log = structlog.get_logger(__name__)

#: Messages of one stream enqueued at once; the stream reads no more until one is answered.
MAX_IN_FLIGHT = 256
#: As the access log and the metrics name it (each message is logged at debug level, as a
#: unary call is: one line per task).
METHOD = "/leasq.v1.BrokerService/EnqueueStream"
_record = rpc.message_recorder(METHOD)

Enqueue = Callable[[NewTask], Awaitable[Enqueued]]
Context = grpc.aio.ServicerContext[Any, Any]


async def serve(requests: AsyncIterator[broker_pb.EnqueueStreamRequest], context: Context,
                enqueue: Enqueue) -> None:  # fmt: skip
    """Enqueue every request of the stream and answer each; returns once all are answered.

    The response headers go out at once: a client that waits for them before its first message
    never writes into a stream the broker refused (grpc answers a refusal that races the
    client's first message INTERNAL now and then, instead of PERMISSION_DENIED)."""
    await context.send_initial_metadata(())
    stream = _Stream(context, enqueue)
    async for request in requests:
        await stream.submit(request)
    await stream.drain()


class _Stream:
    """The messages of one stream being enqueued, and the one writer of their answers."""

    def __init__(self, context: Context, enqueue: Enqueue) -> None:
        self._context = context
        self._enqueue = enqueue
        self._working: set[asyncio.Task[None]] = set()
        self._writing = asyncio.Lock()  # grpc takes one write of a call at a time
        self._gone = False

    async def submit(self, request: broker_pb.EnqueueStreamRequest) -> None:
        while len(self._working) >= MAX_IN_FLIGHT:
            await asyncio.wait(self._working, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.get_running_loop().create_task(self._answer(request))
        self._working.add(task)
        task.add_done_callback(self._working.discard)

    async def drain(self) -> None:
        """Wait until every message read so far is answered."""
        while self._working:
            await asyncio.wait(set(self._working))

    async def _answer(self, request: broker_pb.EnqueueStreamRequest) -> None:
        started = time.perf_counter()
        response = broker_pb.EnqueueStreamResponse(id=request.id)
        try:
            if not request.HasField("task"):
                raise InvalidField("task", "is required")
            result = await self._enqueue(conv.new_task(request.task))
            response.task.CopyFrom(conv.enqueued(result))
        except Exception as error:  # every message gets an answer
            response.error.CopyFrom(item_error(_refusal(error, request.task.queue)))
        code = _record(response.error.code)
        log.debug("rpc", method=METHOD, message_id=request.id, code=code,
                  duration_ms=round((time.perf_counter() - started) * 1000, 3))  # fmt: skip
        if self._gone:
            return
        try:
            async with self._writing:
                await self._context.write(response)
        except Exception:  # the client went away: nobody to answer
            self._gone = True


def _refusal(error: Exception, queue: str) -> LeasqError:
    """The domain error to answer with; an unexpected one is logged and answered INTERNAL."""
    known = domain_error(error)
    if known is not None:
        return known
    log.error("enqueue failed unexpectedly", queue=queue, error=repr(error), exc_info=error)
    return LeasqError(f"internal error: {error.__class__.__name__}")
