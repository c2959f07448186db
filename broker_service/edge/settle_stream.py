"""One SettleStream call: a worker's Ack and Nack calls, one message each.

A busy worker settles a batch of outcomes, and leases its next tasks through ``lease_next``,
every few milliseconds; as a unary call each batch pays a whole gRPC call on both sides, as a
message on an open stream about half. Each message is served exactly as its unary call (the
servicer's own Ack or Nack behaviour), and a failure that would have ended the call answers the
message with the call's code and reason instead; the stream goes on. The stream's mechanics are
those of :mod:`leasq_broker.edge.message_stream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq_broker.edge import message_stream
from leasq_broker.edge.status import item_error
from leasq_broker.errors import InvalidField

METHOD = message_stream.Method("/leasq.v1.BrokerService/SettleStream")

Ack = Callable[[broker_pb.AckRequest], Awaitable[broker_pb.AckResponse]]
Nack = Callable[[broker_pb.NackRequest], Awaitable[broker_pb.NackResponse]]
Context = grpc.aio.ServicerContext[Any, Any]


async def serve(requests: AsyncIterator[broker_pb.SettleStreamRequest], context: Context,
                ack: Ack, nack: Nack) -> None:  # fmt: skip
    """Serve every Ack and Nack of the stream and answer each; returns once all are
    answered."""

    async def answer(request: broker_pb.SettleStreamRequest
                     ) -> broker_pb.SettleStreamResponse:  # fmt: skip
        response = broker_pb.SettleStreamResponse(id=request.id)
        call = request.WhichOneof("call")
        try:
            if call == "ack":
                response.ack.CopyFrom(await ack(request.ack))
            elif call == "nack":
                response.nack.CopyFrom(await nack(request.nack))
            else:
                raise InvalidField("call", "set ack or nack")
        except Exception as error:  # every message gets an answer
            worker_id = getattr(request, call).worker_id if call else ""
            failure = message_stream.refusal(error, method=METHOD.name, call=call,
                                             worker_id=worker_id)  # fmt: skip
            response.error.CopyFrom(item_error(failure))
        return response

    await message_stream.serve(requests, context, METHOD, answer)
