"""The worker: wires the lease, heartbeat and settle loops around a registry, and stops well.

``await Worker(registry, queues={"critical": 6, "default": 3}).run()`` (or ``await worker``)
serves until :meth:`Worker.stop` or SIGTERM/SIGINT. Shutdown stops leasing, lets running
attempts finish for up to ``shutdown_timeout`` seconds, gives the rest back to the broker with a
Nack REQUEUE (no attempt spent) and returns once every outcome is reported. A second signal
exits the process at once; the broker redelivers its tasks when their leases expire.

Operators. Every Lease and Heartbeat tells the broker who the worker is (``WorkerMeta``: host,
pid, concurrency, start time, runtime), which ``leasq worker ls`` / ListWorkers shows. An
operator's QUIET (QuietWorker) stops leasing: held tasks finish and are reported, heartbeats go
on, and the worker stays up until stopped. STOP (StopWorker) is handled as SIGTERM: a graceful
shutdown, after which ``run`` returns (the ``leasq worker`` command exits 0).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from importlib import metadata
from typing import Any

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_sdk.channel import ChannelSettings, call_metadata, open_aio_channel
from leasq_worker.attempt import AttemptRunner
from leasq_worker.deadlines import Deadlines
from leasq_worker.executor import Executor
from leasq_worker.heartbeat import Heartbeater
from leasq_worker.leaser import Leaser
from leasq_worker.leases import SHUTDOWN, TIMEOUT, HeldLease, LeaseBook, Slots
from leasq_worker.outcome import REQUEUED
from leasq_worker.queue_weights import queue_weight
from leasq_worker.registry import Handler, Registry
from leasq_worker.rpc import broker_stub, duration
from leasq_worker.settler import Settler
from leasq_worker.task import Task

Queues = Mapping[str, int] | Sequence[str | tuple[str, int]]
_STOP_GRACE = 5.0  # seconds a cancelled attempt gets to unwind at shutdown


class Worker:
    """Leases tasks from ``queues`` and runs them with ``registry``'s handlers."""

    def __init__(
        self,
        registry: Registry,
        *,
        broker: str = "127.0.0.1:50051",
        queues: Queues = ("default",),
        concurrency: int = 10,
        strict: bool = False,
        lease_duration: float = 15.0,
        heartbeat_interval: float | None = None,
        poll_wait: float = 5.0,
        shutdown_timeout: float = 10.0,
        processes: int | None = None,
        worker_id: str | None = None,
        token: str | None = None,
        tls: bool | grpc.ChannelCredentials = False,
        root_certificates: bytes | None = None,
        handle_signals: bool = True,
        settle_stream: bool = True,
    ) -> None:
        """``settle_stream``: send Acks and Nacks as messages on one long-lived SettleStream
        call (about half the cost of a call each) rather than as unary calls."""
        if not 1 <= lease_duration <= 12 * 3600:
            raise ValueError("lease_duration must be between 1 s and 12 h")
        self.registry = registry
        self.id = worker_id or default_worker_id()
        self.queues = normalize_queues(queues)
        self.concurrency = concurrency
        self.strict = strict
        self.lease_duration = lease_duration
        self.heartbeat_interval = heartbeat_interval or lease_duration / 3
        self.poll_wait = poll_wait
        self.shutdown_timeout = shutdown_timeout
        self._address = broker
        self._channel = ChannelSettings(
            target=broker, tls=tls, root_certificates=root_certificates, token=token
        )
        self._processes = processes or os.cpu_count() or 1
        self._metadata = call_metadata(token) or ()
        self._handle_signals = handle_signals
        self._settle_stream = settle_stream
        self._stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signals = 0
        self._finished = asyncio.Event()
        self._log = structlog.get_logger("leasq.worker").bind(worker_id=self.id)
        self._slots = Slots(concurrency)
        self._book = LeaseBook(self._slots)
        self.busy_threads = 0
        self.started_at = time.time()
        self._quiet = False
        self._leaser: Leaser | None = None

    def __await__(self) -> Generator[Any, None, None]:
        return self.run().__await__()

    def stop(self) -> None:
        """Ask for a graceful shutdown (thread-safe, idempotent)."""
        self._stopping.set()
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def leases_held(self) -> int:
        """Leases this worker holds now: running, or finished and not yet settled. Never more
        than ``concurrency``."""
        return len(self._book)

    async def stopped(self) -> None:
        """Return once :meth:`run` has finished (every outcome reported or given up)."""
        await self._finished.wait()

    async def run(self) -> None:
        """Serve until stopped; returns after a graceful shutdown."""
        try:
            await self._run()
        finally:
            self._finished.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stopping.is_set():
            return
        channel = open_aio_channel(self._channel)
        executor = Executor(self.registry, threads=self.concurrency, processes=self._processes,
                            on_linger=self._slots.linger)  # fmt: skip
        self._install_signals()
        try:
            await self._serve(broker_stub(channel), executor)
        finally:
            self._remove_signals()
            executor.close()
            self.busy_threads = executor.busy_threads
            await channel.close()

    async def _serve(self, stub: Any, executor: Executor) -> None:
        leaser, heart = self._assemble(stub, executor)
        loops = [asyncio.create_task(part.run()) for part in (self._settler, leaser, heart)]
        self._log.info(
            "worker started",
            broker=self._address,
            queues=dict(self.queues),
            strict=self.strict,
            concurrency=self.concurrency,
        )
        assert self._wake is not None
        waiter = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait([waiter, *loops], return_when=asyncio.FIRST_COMPLETED)
            leaser.stop()
            await asyncio.wait([loops[1]], timeout=self.poll_wait + 5)
            await self._drain()
        finally:
            self._deadlines.close()
            for task in [waiter, *loops]:
                task.cancel()
            await asyncio.gather(waiter, *loops, return_exceptions=True)
        for task in loops:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        self._log.info("worker stopped")

    def _assemble(self, stub: Any, executor: Executor) -> tuple[Leaser, Heartbeater]:
        """Build the attempt runner, deadline timer, settler, leaser and heartbeater."""
        self._runner = AttemptRunner(self.registry, executor, self._log)
        self._deadlines = Deadlines(lambda held: held.stop(TIMEOUT))
        common = {"metadata": self._metadata, "log": self._log}
        self._settler = Settler(
            stub, worker_id=self.id, book=self._book, slots=self._slots,
            lease_next=self._lease_request(wait=0, meta=False), on_leased=self._dispatch,
            stream=self._settle_stream, **common,
        )  # fmt: skip
        leaser = self._leaser = Leaser(
            stub, slots=self._slots, settler_busy=lambda: self._settler.busy,
            request=self._lease_request(self.poll_wait), on_leased=self._dispatch,
            on_command=self._on_command, **common,
        )  # fmt: skip
        heart = Heartbeater(
            stub, worker_id=self.id, book=self._book, interval=self.heartbeat_interval,
            lease_seconds=self.lease_duration, meta=self._meta(),
            on_command=self._on_command, **common,
        )  # fmt: skip
        return leaser, heart

    def _on_command(self, command: int) -> None:
        """An operator's command from a Lease or Heartbeat answer (each acted on once)."""
        if command == pb.WORKER_COMMAND_STOP and not self._stopping.is_set():
            self._log.info("stop requested by an operator: shutting down")
            self.stop()
        elif command == pb.WORKER_COMMAND_QUIET and not self._quiet:
            self._quiet = True
            self._log.info("quieted by an operator: leasing stopped, held tasks finish",
                           tasks=len(self._book))
            if self._leaser is not None:
                self._leaser.quiet()

    @property
    def quiet(self) -> bool:
        """True once an operator told this worker to go quiet (it leases no more)."""
        return self._quiet

    def _meta(self) -> pb.WorkerMeta:
        """What this worker tells the broker about itself with every Lease and Heartbeat."""
        started = Timestamp()
        started.FromNanoseconds(int(self.started_at * 1e9))
        return pb.WorkerMeta(host=socket.gethostname(), pid=os.getpid(),
                             concurrency=self.concurrency, started_at=started,
                             sdk=f"leasq-python/{_version()}")

    async def _drain(self) -> None:
        """Let running attempts finish, requeue the rest, then wait for every report."""
        running = {h.runner for h in self._book if h.runner is not None and not h.runner.done()}
        if running:
            self._log.info(
                "waiting for running tasks", tasks=len(running), timeout=self.shutdown_timeout
            )
            _, late = await asyncio.wait(running, timeout=self.shutdown_timeout)
            for held in self._book:
                if held.runner in late:
                    held.stop(SHUTDOWN)
            if late:
                self._log.info("requeueing unfinished tasks", tasks=len(late))
                _, stuck = await asyncio.wait(late, timeout=_STOP_GRACE)
                if stuck:  # handlers that ignore cancellation: their leases will expire
                    self._log.warning("handlers ignored cancellation", tasks=len(stuck))
        try:
            await asyncio.wait_for(self._settler.drained(), self.lease_duration + 1)
        except TimeoutError:
            self._log.warning("outcomes left unreported at shutdown", tasks=len(self._book))

    def _dispatch(self, leased: Sequence[task_pb2.LeasedTask], sent: float) -> None:
        """Start an attempt for each newly leased task (or give it back when stopping)."""
        loop = asyncio.get_running_loop()
        lookup = self.registry.lookup
        for item in leased:
            handler = lookup(item.type)
            task = Task(item, handler.decoder if handler is not None else None)
            held = HeldLease(item, task, sent, self.lease_duration)
            self._book.add(held)
            if self._slots.closed:
                self._settler.add(held, REQUEUED)
                continue
            held.runner = loop.create_task(self._attempt(held, handler))
            self._deadlines.watch(held)

    async def _attempt(self, held: HeldLease, handler: Handler | None) -> None:
        outcome = None
        try:
            outcome = await self._runner.run(held, handler)
        finally:
            # The slot stays taken until the broker has the outcome (see LeaseBook).
            if outcome is None:
                self._book.remove(held)
            else:
                self._settler.add(held, outcome)

    def _lease_request(self, wait: float, *, meta: bool = True) -> pb.LeaseRequest:
        """The Lease call's request; ``meta=False`` for an Ack's or Nack's ``lease_next``: the
        broker records the worker's self-description from Lease and Heartbeat only, so an
        Ack need not carry (nor the broker parse) it with every batch."""
        return pb.LeaseRequest(
            worker_id=self.id,
            queues=[queue_weight(name, weight) for name, weight in self.queues],
            strict=self.strict,
            lease_duration=duration(self.lease_duration),
            wait=duration(wait) if wait else None,
            worker=self._meta() if meta else None,
        )

    def _install_signals(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            self._handle_signals = False
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self) -> None:
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            self._log.warning("second signal: exiting now", signal=sig.name)
            os._exit(128 + sig)
        self._log.info("shutting down", signal=sig.name)
        self.stop()


def _version() -> str:
    try:
        return metadata.version("leasq")
    except metadata.PackageNotFoundError:
        return "unknown"


def default_worker_id() -> str:
    """``host:pid:random``: names the machine and process an operator would look at."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def normalize_queues(queues: Queues) -> list[tuple[str, int]]:
    """Queue names with weights from a mapping or a list of names / (name, weight) pairs."""
    pairs = (
        list(queues.items())
        if isinstance(queues, Mapping)
        else [(q, 1) if isinstance(q, str) else q for q in queues]
    )
    names = [name for name, _ in pairs]
    if not pairs or len(set(names)) != len(names):
        raise ValueError("give at least one queue, each at most once")
    for name, weight in pairs:
        if not 1 <= weight <= 1000:
            raise ValueError(f"queue {name!r}: weight must be 1-1000")
    return pairs
