"""Runs a handler where it belongs: on the loop, in the thread pool, or in the process pool.

The worker builds one :class:`Executor` and asks it for each handler's call chain once
(middleware included), so dispatching a task is a dict read plus one await. Cancelling the
awaiting coroutine is how every kind of handler is stopped: an async handler is cancelled, a
sync handler's thread runs on but its late result is discarded (and its task's cancel signal is
set), a process-pool handler's process is killed. A thread that runs on is reported through
``on_linger`` (+1, then -1 when it ends), so that the worker leases no task for it meanwhile:
the pool has no thread to run that task on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from leasq_worker.middleware import CallNext, build_chain
from leasq_worker.procpool import ProcessPool
from leasq_worker.registry import Handler, Mode, Registry
from leasq_worker.task import Task


class Executor:
    """Owns the thread and process pools and the composed call chain of every handler."""

    def __init__(
        self,
        registry: Registry,
        *,
        threads: int,
        processes: int,
        on_linger: Callable[[int], None] = lambda change: None,
    ) -> None:
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="leasq-sync")
        self._on_linger = on_linger
        self._processes = ProcessPool(processes) if registry.uses_processes else None
        self._busy_threads = 0
        self._busy_lock = threading.Lock()
        self._chains: dict[str, CallNext] = {
            name: build_chain(registry.middlewares, self._terminal(handler))
            for name, handler in registry.handlers.items()
        }

    def chain(self, handler: Handler) -> CallNext:
        """The middleware-wrapped call of ``handler``."""
        return self._chains[handler.name]

    @property
    def busy_threads(self) -> int:
        """Sync handlers still running in threads (they cannot be stopped from outside)."""
        return self._busy_threads

    def close(self) -> None:
        """Kill process-pool children; let threads finish on their own without waiting."""
        if self._processes is not None:
            self._processes.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _terminal(self, handler: Handler) -> CallNext:
        func = handler.func
        if handler.mode is Mode.ASYNC:
            return func
        if handler.mode is Mode.PROCESS:
            assert self._processes is not None
            return functools.partial(self._processes.run, func)
        return functools.partial(self._in_thread, func)

    async def _in_thread(self, func: Any, task: Task) -> Any:
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, self._counted, func, task)
        running = self._threads.submit(call)
        try:
            return await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            if not running.done():  # the thread runs on: its slot stays taken until it ends
                self._on_linger(1)
                running.add_done_callback(functools.partial(self._unlinger, loop))
            raise

    def _unlinger(self, loop: asyncio.AbstractEventLoop, _: Future[Any]) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._on_linger, -1)

    def _counted(self, func: Any, task: Task) -> Any:
        with self._busy_lock:
            self._busy_threads += 1
        try:
            return func(task)
        finally:
            with self._busy_lock:
                self._busy_threads -= 1


def encode_result(value: Any) -> bytes:
    """Bytes to store as the task's result: bytes as is, str as UTF-8, None as empty, else JSON."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()
