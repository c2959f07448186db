"""Reports outcomes to the broker in batches, leasing the freed slots in the same round trip.

Outcomes collect while the event loop has other ready work (every handler that finished in the
same loop turn), then go out as one Ack and/or one Nack whose ``lease_next`` asks for the freed
slots. A large batch goes out as two flushes, and up to two flushes are in flight at once: the
worker runs the tasks of one answer while the broker settles the other half, instead of the two
processes taking turns. While flushes are in flight the next outcomes collect, so batches grow
with load by themselves. A call that fails with a transient status is retried with backoff until
the leases in it have expired locally; after that the broker redelivers the tasks anyway.

Slots: a lease keeps its slot until its outcome is settled. An Ack or a Nack asks (lease_next)
for the slots of the leases it settles plus free ones; the broker settles before it leases, so
the worker never holds more leases than its concurrency. Acks and Nacks go as separate calls,
so each asks only for its own items' slots (the Ack also for the free ones). A retried call asks
for nothing: the first attempt may have leased tasks whose answer was lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, cast

import grpc

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_worker.leases import EXPIRED, HeldLease, LeaseBook, Slots
from leasq_worker.outcome import Outcome, failure
from leasq_worker.rpc import GONE, GONE_REASONS, Backoff, Metadata, duration, is_transient
from leasq_worker.settle_stream import SettleCalls

Pending = tuple[HeldLease, Outcome]
OnLeased = Callable[[Sequence[task_pb2.LeasedTask], float], None]
_BATCH = 1000
_CALL_TIMEOUT = 10.0
_MAX_FLUSHES = 2
_SPLIT = 50  # a batch of at least twice this many outcomes goes out as two flushes


class ResultRefused(Exception):
    """The broker refused an Ack item for a reason other than a lost lease."""


class Settler:
    """Batches Ack/Nack for one worker; see the module docstring."""

    def __init__(
        self,
        stub: Any,
        *,
        worker_id: str,
        metadata: Metadata,
        book: LeaseBook,
        slots: Slots,
        lease_next: pb.LeaseRequest,
        on_leased: OnLeased,
        log: Any,
        stream: bool = True,
    ) -> None:
        self._calls = SettleCalls(stub, metadata, stream=stream)
        self._worker_id = worker_id
        self._metadata = metadata
        self._book = book
        self._slots = slots
        self._lease_next = lease_next
        self._on_leased = on_leased
        self._log = log
        self._pending: list[Pending] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Semaphore(_MAX_FLUSHES)
        self._flushes: set[asyncio.Task[None]] = set()
        self._starting = False

    @property
    def busy(self) -> bool:
        """True while outcomes wait or a flush is in flight (it will lease freed slots)."""
        return self._starting or bool(self._flushes) or bool(self._pending)

    def add(self, held: HeldLease, outcome: Outcome) -> None:
        """Queue one outcome for the next flush."""
        self._pending.append((held, outcome))
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Return once nothing waits to be reported and no flush is in flight."""
        await self._idle.wait()

    async def run(self) -> None:
        """Flush forever (until cancelled)."""
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(0)  # let handlers finishing in this loop turn join the batch
                self._wake.clear()
                batch, self._pending = self._live(self._pending), []
                self._starting = True  # busy, though the batch is neither pending nor in flight
                for part, most in _parts(batch):
                    await self._room.acquire()
                    self._start(part, self._slots.reserve(most, transfer=len(part)))
                self._starting = False
                self._check_idle()
                self._slots.notify()  # the leaser waits for the settler to be idle
        finally:
            for flush in self._flushes:
                flush.cancel()
            await self._calls.close()

    def _start(self, part: list[Pending], count: int) -> None:
        flush = asyncio.create_task(self._flush(part, count))
        self._flushes.add(flush)
        flush.add_done_callback(self._finished)

    def _finished(self, flush: asyncio.Task[None]) -> None:
        self._flushes.discard(flush)
        self._room.release()
        self._check_idle()
        self._slots.notify()

    def _check_idle(self) -> None:
        if not self.busy:
            self._idle.set()

    def _live(self, batch: list[Pending]) -> list[Pending]:
        now = asyncio.get_running_loop().time()
        live = []
        for held, outcome in batch:
            if held.expires <= now and not held.gone:
                held.stop_reason = EXPIRED
            if held.gone:
                self._drop(held, held.stop_reason or EXPIRED)
            else:
                live.append((held, outcome))
        return live

    async def _flush(self, batch: list[Pending], count: int) -> None:
        """Report ``batch``, leasing ``count`` tasks (reserved by the caller) on the way."""
        acks = [item for item in batch if item[1].ack]
        nacks = [item for item in batch if not item[1].ack]
        sent = asyncio.get_running_loop().time()
        try:
            leased = await self._send(acks, nacks, count)
        except Exception:
            # A bug, not the broker: forget these leases, so the broker redelivers the tasks
            # when they expire instead of this worker renewing them forever.
            self._log.exception("settle failed", tasks=len(batch))
            for held, _ in batch:
                self._book.remove(held)
            return
        finally:
            self._slots.unreserve(count)
        if leased:
            self._on_leased(leased, sent)

    async def _send(
        self, acks: list[Pending], nacks: list[Pending], count: int
    ) -> list[task_pb2.LeasedTask]:
        calls = []
        # The Nack call asks for its own items' slots only, the Ack call for the rest.
        for_nacks = min(count, len(nacks[:_BATCH])) if acks else count
        lease_next = self._lease_request(count - for_nacks)
        for start in range(0, len(acks), _BATCH):
            calls.append(self._ack(acks[start : start + _BATCH], lease_next))
            lease_next = None
        lease_next = self._lease_request(for_nacks)
        for start in range(0, len(nacks), _BATCH):
            calls.append(self._nack(nacks[start : start + _BATCH], lease_next))
            lease_next = None
        if len(calls) == 1:  # the usual case: no task (and no loop turn) for a gather
            return list(await calls[0])
        leased: list[task_pb2.LeasedTask] = []
        for tasks in await asyncio.gather(*calls):
            leased.extend(tasks)
        return leased

    def _lease_request(self, count: int) -> pb.LeaseRequest | None:
        if count <= 0:
            return None
        request = pb.LeaseRequest()
        request.CopyFrom(self._lease_next)
        request.max_tasks = count
        return request

    async def _ack(
        self, items: list[Pending], lease_next: pb.LeaseRequest | None
    ) -> Sequence[task_pb2.LeasedTask]:
        # Items as dicts: protobuf builds them about twice as fast as AckItem messages.
        request = pb.AckRequest(
            worker_id=self._worker_id,
            items=[_ack_item(held, out) for held, out in items],
            lease_next=lease_next,
        )
        return await self._settle(self._calls.ack, request, items, refusable=True)

    async def _nack(
        self, items: list[Pending], lease_next: pb.LeaseRequest | None
    ) -> Sequence[task_pb2.LeasedTask]:
        request = pb.NackRequest(
            worker_id=self._worker_id,
            items=[_nack_item(h, o) for h, o in items],
            lease_next=lease_next,
        )
        return await self._settle(self._calls.nack, request, items, refusable=False)

    async def _settle(
        self, method: Any, request: Any, items: list[Pending], *, refusable: bool
    ) -> Sequence[task_pb2.LeasedTask]:
        """One Ack or Nack call; the tasks its lease_next leased. The items' slots pass on to
        those tasks (or free up) whatever the outcome."""
        try:
            response = await self._call(method, request, items, refusable=refusable)
            if response is not None:
                self._settled(items, response.results, refusable=refusable)
                leased: Sequence[task_pb2.LeasedTask] = response.next_tasks
                return leased
            return ()
        finally:
            self._slots.transferred(len(items))

    async def _call(
        self, method: Any, request: Any, items: list[Pending], *, refusable: bool
    ) -> Any:
        """The response, or None when the call cannot succeed (items already dealt with)."""
        backoff = Backoff()
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await method(request, timeout=_CALL_TIMEOUT, metadata=self._metadata)
            except grpc.aio.AioRpcError as exc:
                if not is_transient(exc):
                    self._refused(items, exc, refusable)
                    return None
                pause = backoff.delay()
                if loop.time() + pause >= max(held.expires for held, _ in items):
                    self._give_up(items, exc)
                    return None
                request.ClearField("lease_next")
                self._log.warning(
                    "settle failed, retrying",
                    code=exc.code().name,
                    tasks=len(items),
                    retry_in=round(pause, 3),
                )
                await asyncio.sleep(pause)

    def _settled(self, items: list[Pending], results: Sequence[Any], *, refusable: bool) -> None:
        for (held, _), result in zip(items, results, strict=False):
            if not result.HasField("error"):
                self._book.remove(held)
            elif result.error.reason in GONE_REASONS:
                self._drop(held, result.error.reason, refused=True)
            elif refusable:
                self._retry_as_failure(held, result.error.message)
            else:
                reason = result.error.reason or "refused"
                self._drop(held, reason, error=result.error.message, refused=True)

    def _refused(self, items: list[Pending], exc: grpc.aio.AioRpcError, refusable: bool) -> None:
        """A non-transient failure of a whole call: a single item that is gone or refused."""
        for held, _ in items:
            if exc.code() in GONE:
                self._drop(held, exc.code().name, refused=True)
            elif refusable and len(items) == 1:
                self._retry_as_failure(held, exc.details() or exc.code().name)
            else:
                self._drop(held, exc.code().name, error=exc.details(), refused=True)

    def _retry_as_failure(self, held: HeldLease, message: str) -> None:
        """An Ack the broker will not take (e.g. a result over its limit) becomes a failure."""
        self.add(held, failure(ResultRefused(f"result refused by the broker: {message}")))

    def _give_up(self, items: list[Pending], exc: grpc.aio.AioRpcError) -> None:
        for held, _ in items:
            self._drop(held, "broker unreachable until lease expiry", error=exc.details())

    def _drop(
        self, held: HeldLease, reason: str, error: str | None = None, *, refused: bool = False
    ) -> None:
        """Forget a lease; ``refused``: the broker turned the report down (else never sent)."""
        self._book.remove(held)
        event = "outcome refused" if refused else "outcome not reported"
        log = self._log.warning if error is not None else self._log.info
        log(event, task_id=held.task_id, queue=held.queue, reason=reason, error=error)


def _parts(batch: list[Pending]) -> list[tuple[list[Pending], int | None]]:
    """Split a large batch in two; each part with the most slots its lease_next may ask for.

    The last part may take every free slot, so none stays idle while the settler is busy.
    """
    if not batch:
        return []
    if len(batch) < 2 * _SPLIT:
        return [(batch, None)]
    half = len(batch) // 2
    return [(batch[:half], half), (batch[half:], None)]


def _ack_item(held: HeldLease, outcome: Outcome) -> pb.AckItem:
    """An AckItem as a dict (for the AckRequest constructor only; see ``HeldLease.ref``)."""
    if outcome.result:
        return cast(pb.AckItem, {"lease": held.ref, "result": outcome.result})
    return cast(pb.AckItem, {"lease": held.ref})


def _nack_item(held: HeldLease, outcome: Outcome) -> pb.NackItem:
    item = pb.NackItem(
        lease=held.ref,
        action=outcome.action,  # type: ignore[arg-type]
        error=outcome.error[:16384],
        error_type=outcome.error_type[:256],
    )
    if outcome.retry_after is not None:
        item.retry_after.CopyFrom(duration(outcome.retry_after))
    return item
