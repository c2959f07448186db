"""The shared engine of the bidirectional calls that carry one request per message.

EnqueueStream and SettleStream exist because a message on an open stream costs both sides
about half of what a whole unary call costs. Each message is served in a task of its own, as a
unary call would be, so the messages of a pipelining client run side by side; each answer is
written as soon as its task is done, tagged with the request's id. At most
:data:`MAX_IN_FLIGHT` messages of a stream are worked on at once: past that the stream stops
reading, and HTTP/2 flow control holds the client back.

The stream ends when the client stops sending (answers to everything read go out first). A
message that is not valid protobuf and a broker shutdown end the input likewise; the handler
registered by :mod:`leasq_broker.edge.decoding` then ends the call with INVALID_ARGUMENT or
UNAVAILABLE. If the client goes away, the messages already read are still served; their
answers have nowhere to go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
import structlog

from leasq_broker.edge.status import domain_error
from leasq_broker.errors import LeasqError
from leasq_broker.observability import rpc

log = structlog.get_logger(__name__)

#: Messages of one stream served at once; the stream reads no more until one is answered.
MAX_IN_FLIGHT = 256

Context = grpc.aio.ServicerContext[Any, Any]


class Request(Protocol):
    """A stream's request: the client's id for it, echoed in the answer."""

    @property
    def id(self) -> int: ...


#: Serves one request: its answer, with the refusal (if any) in the answer's ``error`` field.
#: It does not raise: a refusal is an answer (see :func:`refusal`).
Answer = Callable[[Any], Awaitable[Any]]


class Method:
    """A streaming method's name as the access log and the metrics give it, and its counter."""

    def __init__(self, full_name: str) -> None:
        self.name = full_name
        self.record = rpc.message_recorder(full_name)


async def serve(requests: AsyncIterator[Any], context: Context, method: Method,
                answer: Answer) -> None:  # fmt: skip
    """Serve every request of the stream and write each answer; returns once all are answered.

    The response headers go out at once: a client that waits for them before its first message
    never writes into a stream the broker refused (grpc answers a refusal that races the
    client's first message INTERNAL now and then, instead of PERMISSION_DENIED)."""
    await context.send_initial_metadata(())
    stream = _Stream(context, method, answer)
    async for request in requests:
        await stream.submit(request)
    await stream.drain()


def refusal(error: Exception, **context: Any) -> LeasqError:
    """The domain error to answer a message with; an unexpected one is logged with
    ``context`` and answered INTERNAL."""
    known = domain_error(error)
    if known is not None:
        return known
    log.error("stream message failed unexpectedly", error=repr(error), exc_info=error, **context)
    return LeasqError(f"internal error: {error.__class__.__name__}")


class _Stream:
    """The messages of one stream being served, and the one writer of their answers."""

    def __init__(self, context: Context, method: Method, answer: Answer) -> None:
        self._context = context
        self._method = method
        self._answer = answer
        self._working: set[asyncio.Task[None]] = set()
        self._writing = asyncio.Lock()  # grpc takes one write of a call at a time
        self._gone = False

    async def submit(self, request: Request) -> None:
        while len(self._working) >= MAX_IN_FLIGHT:
            await asyncio.wait(self._working, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.get_running_loop().create_task(self._serve(request))
        self._working.add(task)
        task.add_done_callback(self._working.discard)

    async def drain(self) -> None:
        """Wait until every message read so far is answered."""
        while self._working:
            await asyncio.wait(set(self._working))

    async def _serve(self, request: Request) -> None:
        started = time.perf_counter()
        response = await self._answer(request)
        code = self._method.record(response.error.code)
        log.debug("rpc", method=self._method.name, message_id=request.id, code=code,
                  duration_ms=round((time.perf_counter() - started) * 1000, 3))  # fmt: skip
        if self._gone:
            return
        try:
            async with self._writing:
                await self._context.write(response)
        except Exception:  # the client went away: nobody to answer
            self._gone = True
