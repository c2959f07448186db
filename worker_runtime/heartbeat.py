"""One heartbeat loop renews every lease the worker holds, in one call per interval.

Each answer is acted on per lease: EXTENDED moves the local expiry, LOST stops the attempt and
forgets it, CANCEL_REQUESTED stops the attempt (the runtime then archives the task as canceled).
Leases whose local expiry passes without a successful heartbeat (the broker was unreachable, or
the process was paused) are given up the same way as LOST: another worker may have the task now.

A beat is sent even when no lease is held: it tells the broker the worker is alive (ListWorkers)
and brings back an operator's command (a quiet worker leases nothing, so its beats are how it
hears STOP), which goes to ``on_command``. Every beat carries the worker's ``WorkerMeta``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from leasq.v1 import broker_service_pb2 as pb
from leasq_worker.leases import CANCELED, EXPIRED, LOST, HeldLease, LeaseBook
from leasq_worker.rpc import Metadata, duration

_MAX_LEASES = 10_000


class Heartbeater:
    """Runs the heartbeat loop for one worker."""

    def __init__(
        self,
        stub: Any,
        *,
        worker_id: str,
        metadata: Metadata,
        book: LeaseBook,
        interval: float,
        lease_seconds: float,
        meta: pb.WorkerMeta,
        on_command: Callable[[int], None],
        log: Any,
    ) -> None:
        self._stub = stub
        self._worker_id = worker_id
        self._metadata = metadata
        self._book = book
        self._interval = interval
        self._lease_seconds = lease_seconds
        self._duration = duration(lease_seconds)
        self._meta = meta
        self._on_command = on_command
        self._log = log

    async def run(self) -> None:
        """Beat every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.beat()

    async def beat(self) -> None:
        """Renew all held leases once (one empty call when none is held), then give up those
        that expired locally."""
        held = list(self._book)
        loop = asyncio.get_running_loop()
        for start in range(0, max(1, len(held)), _MAX_LEASES):
            chunk = held[start : start + _MAX_LEASES]
            sent = loop.time()
            request = pb.HeartbeatRequest(
                worker_id=self._worker_id,
                leases=[h.ref for h in chunk],
                lease_duration=self._duration,
                worker=self._meta,
            )
            try:
                response = await self._stub.Heartbeat(
                    request, timeout=self._lease_seconds / 2, metadata=self._metadata,
                    wait_for_ready=True,
                )
            except grpc.aio.AioRpcError as exc:
                self._log.warning("heartbeat failed", code=exc.code().name, error=exc.details())
                continue
            if response.command:
                self._on_command(response.command)
            for lease, state in zip(chunk, response.leases, strict=False):
                self._apply(lease, state.status, sent)
        self._expire(loop.time())

    def _apply(self, held: HeldLease, status: int, sent: float) -> None:
        if status == pb.LEASE_STATUS_EXTENDED:
            held.expires = max(held.expires, sent + self._lease_seconds)
        elif status == pb.LEASE_STATUS_CANCEL_REQUESTED:
            held.expires = max(held.expires, sent + self._lease_seconds)
            if held.runner is not None and not held.runner.done():
                self._log.info("task cancel requested", task_id=held.task_id, queue=held.queue)
                held.stop(CANCELED)
        elif status == pb.LEASE_STATUS_LOST:
            self._give_up(held, LOST)

    def _expire(self, now: float) -> None:
        for held in self._book:
            if held.expires <= now:
                self._give_up(held, EXPIRED)

    def _give_up(self, held: HeldLease, reason: str) -> None:
        self._book.remove(held)
        if held.runner is not None and not held.runner.done():
            held.stop(reason)
        else:
            held.stop_reason = reason  # an outcome may be waiting: the settler skips it
