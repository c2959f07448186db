"""The lease loop: long-poll for exactly as many tasks as there are free slots.

It leases only when slots are free and the settler is idle: a busy worker gets its next tasks
through the settler's ``lease_next`` (one round trip per batch), and this loop takes over when
that runs dry, waiting in the broker (long poll) rather than sleeping or spinning. On shutdown
the outstanding long poll is cancelled; tasks that arrive anyway are handed back by the worker.

While the broker is unreachable a Lease waits for the connection (``wait_for_ready``) up to its
deadline, so it is sent the moment the broker is back. A broker at its cap of waiting Lease
calls answers RESOURCE_EXHAUSTED: the loop then pauses (0.5 s doubling to 5 s, with jitter)
instead of asking again at once.

An answer that carries an operator's command (QUIET or STOP, and then no tasks) is handed to
``on_command``; once told :meth:`quiet`, the loop leases no more but keeps running (the worker
stays up), so it never ends a worker by returning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from leasq.v1 import broker_service_pb2 as pb
from leasq_worker.leases import Slots, lease_anchor
from leasq_worker.rpc import Backoff, Metadata, is_transient
from leasq_worker.settler import OnLeased

# Pauses after RESOURCE_EXHAUSTED (the broker holds as many long polls as it takes).
BUSY_BACKOFF = (0.5, 5.0)
# Pauses after a transient failure (the broker or its Redis is briefly away).
TRANSIENT_BACKOFF = (0.05, 1.0)

_SLACK = 5.0  # call deadline beyond the long-poll wait


class Leaser:
    """Runs the lease loop for one worker."""

    def __init__(
        self,
        stub: Any,
        *,
        metadata: Metadata,
        slots: Slots,
        settler_busy: Callable[[], bool],
        request: pb.LeaseRequest,
        on_leased: OnLeased,
        on_command: Callable[[int], None],
        log: Any,
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._slots = slots
        self._settler_busy = settler_busy
        self._request = request
        self._timeout = request.wait.ToTimedelta().total_seconds() + _SLACK
        self._on_leased = on_leased
        self._on_command = on_command
        self._log = log
        self._call: Any = None
        self._quiet = False

    def stop(self) -> None:
        """Lease nothing more and abandon the long poll in flight."""
        self._slots.close()
        if self._call is not None:
            self._call.cancel()

    def quiet(self) -> None:
        """Lease nothing more, but keep the loop (and so the worker) alive. The long poll in
        flight is left to answer: the broker ends it at once with the command."""
        self._quiet = True
        self._slots.notify()

    async def run(self) -> None:
        """Lease until :meth:`stop`; backs off while the broker is unreachable."""
        backoff = Backoff(*TRANSIENT_BACKOFF)
        busy = Backoff(*BUSY_BACKOFF)
        while True:
            await self._slots.wait_until(self._may_lease)
            if self._slots.closed:
                return
            count = self._slots.reserve()
            loop = asyncio.get_running_loop()
            sent = loop.time()
            try:
                response = await self._lease(count)
            except grpc.aio.AioRpcError as exc:
                if self._slots.closed:
                    return
                exhausted = exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                if not exhausted and not is_transient(exc):
                    raise  # a refusal (bad queue name, wrong token): retrying cannot help
                pause = busy.delay() if exhausted else backoff.delay()
                self._log.warning(
                    "lease failed",
                    code=exc.code().name,
                    error=exc.details(),
                    retry_in=round(pause, 3),
                )
                await asyncio.sleep(pause)
                continue
            finally:
                self._slots.unreserve(count)
            backoff.reset()
            busy.reset()
            if response.command:
                self._on_command(response.command)
            if response.tasks:
                self._on_leased(response.tasks, lease_anchor(sent, loop.time()))
                # Let the new attempts reach their handlers before the next Lease call is
                # built and sent: on an idle worker that call is not on the task's path.
                await asyncio.sleep(0)

    def _may_lease(self) -> bool:
        if self._slots.closed:
            return True
        return not self._quiet and self._slots.free > 0 and not self._settler_busy()

    async def _lease(self, count: int) -> pb.LeaseResponse:
        request = pb.LeaseRequest()
        request.CopyFrom(self._request)
        request.max_tasks = count
        self._call = self._stub.Lease(
            request, timeout=self._timeout, metadata=self._metadata, wait_for_ready=True
        )
        try:
            response: pb.LeaseResponse = await self._call
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._slots.closed and not (task is not None and task.cancelling()):
                return pb.LeaseResponse()  # stop() abandoned the long poll
            raise
        finally:
            self._call = None
        return response
