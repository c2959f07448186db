"""One EnqueueStream call: tasks arrive one message at a time and are answered one by one.

A producer enqueuing from request handlers, one task awaited at a time, pays for every unary
Enqueue a whole gRPC call on both sides; a message on an open stream costs about half. Each
message is enqueued as the unary Enqueue would be (the producer's batcher merges the messages
of a pipelining client into shared Redis round trips); the stream's mechanics are those of
:mod:`leasq_broker.edge.message_stream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq_broker.edge import converters as conv
from leasq_broker.edge import message_stream
from leasq_broker.edge.status import item_error
from leasq_broker.errors import InvalidField
from leasq_broker.models import Enqueued, NewTask

METHOD = message_stream.Method("/leasq.v1.BrokerService/EnqueueStream")

Enqueue = Callable[[NewTask], Awaitable[Enqueued]]
Context = grpc.aio.ServicerContext[Any, Any]


async def serve(requests: AsyncIterator[broker_pb.EnqueueStreamRequest], context: Context,
                enqueue: Enqueue) -> None:  # fmt: skip
    """Enqueue every request of the stream and answer each; returns once all are answered."""

    async def answer(request: broker_pb.EnqueueStreamRequest
                     ) -> broker_pb.EnqueueStreamResponse:  # fmt: skip
        response = broker_pb.EnqueueStreamResponse(id=request.id)
        try:
            if not request.HasField("task"):
                raise InvalidField("task", "is required")
            result = await enqueue(conv.new_task(request.task))
            response.task.CopyFrom(conv.enqueued(result))
        except Exception as error:  # every message gets an answer
            failure = message_stream.refusal(error, method=METHOD.name, queue=request.task.queue)
            response.error.CopyFrom(item_error(failure))
        return response

    await message_stream.serve(requests, context, METHOD, answer)
